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


def test_zcp_help_lists_every_command_without_importing_torch() -> None:
    """``zcp --help`` answers from a fresh process without torch (it takes seconds to import);
    the lazy commands' static help is their own docstring's first line."""
    code = (
        "import sys; from click.testing import CliRunner; from zcproxies.cli import main; "
        "out = CliRunner().invoke(main, ['--help']).output; "
        "print('torch' in sys.modules, all(n in out for n in ('evaluate', 'batch', 'proxies')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    data = (  # the data group's commands import their modules when they run, not for help
        "import sys; from click.testing import CliRunner; from zcproxies.cli import main; "
        "out = CliRunner().invoke(main, ['data', '--help']).output; "
        "sub = CliRunner().invoke(main, ['data', 'download', '--help']).output; "
        "print('torch' in sys.modules, all(n in out for n in ('download', 'list', 'pin')), "
        "'NAMES' in sub)"
    )
    out = subprocess.run([sys.executable, "-c", data], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]
    from zcproxies.cli import LAZY_COMMANDS, LAZY_HELP, ZcpGroup, main

    for name in LAZY_COMMANDS:
        command = ZcpGroup.get_command(main, None, name)
        assert command.help.strip().splitlines()[0] == LAZY_HELP[name], name
