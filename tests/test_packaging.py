"""The wheel ships the embedded benchmark, and the loader finds it in an installed layout."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from zcproxies.benchdata import embedded_path, load_embedded
from zcproxies.benchdata.embedded import FILE_NAME

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "zcproxies", "evaluator", "autodl", "benchmark_data")
# Run in a fresh interpreter with the unpacked wheel first on sys.path (an installed layout).
PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import zcproxies
from zcproxies.benchdata import embedded_path, load_embedded
bench = load_embedded()
print(json.dumps({
    "module": zcproxies.__file__,
    "path": str(embedded_path()),
    "tables": {f"{s}/{t}": len(task.frame) for (s, t), task in bench.tasks.items()},
}))
"""


def build_wheel(tmp_path: Path) -> Path:
    """Build zcp's wheel offline from a copy of the sources (pip builds in the source tree)."""
    src = tmp_path / "src"
    for name in SOURCES:
        path = PROJECT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    dist = tmp_path / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "-q", "-w", str(dist), str(src)], check=True, capture_output=True)
    (wheel,) = dist.glob("zcp-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_ships_the_embedded_benchmark(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    member = f"benchmark_data/{FILE_NAME}"
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read(member)
        zf.extractall(tmp_path / "site")
    site = (tmp_path / "site").resolve()
    assert hashlib.sha256(shipped).digest() == hashlib.sha256(embedded_path().read_bytes()).digest()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(site)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(done.stdout)
    assert Path(found["module"]).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(found["path"]) == site / member
    local = {f"{s}/{t}": len(task.frame) for (s, t), task in load_embedded().tasks.items()}
    assert found["tables"] == local
