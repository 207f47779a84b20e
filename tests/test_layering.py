"""The library layer (zcproxies) never imports the application layers (evaluator, autodl)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
import zcproxies
for info in pkgutil.walk_packages(zcproxies.__path__, "zcproxies."):
    if info.name != "zcproxies.cli":  # the CLI mounts application commands lazily
        importlib.import_module(info.name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("evaluator", "autodl"))
print(",".join(leaked))
"""


def test_zcproxies_does_not_import_applications() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_imports_applications_only_when_invoked() -> None:
    code = (
        "import sys, zcproxies.cli; "
        "print(any(m.startswith(('evaluator', 'autodl')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
