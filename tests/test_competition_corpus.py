"""The competition-form corpus (``tests/submissions/corpus``), run through the command line.

Every submission must be ``ok`` on every architecture, on the embedded benchmark and on
NAS-Bench-201 CIFAR-10 from the shared data; one that computes a built-in proxy's quantity must
reach the built-in's Kendall-Tau (``zcp evaluate --proxy``, same architectures, seeds and batch).
The sweep uses ``zcp batch`` (the same runner as ``zcp evaluate``, one process for the whole
corpus, two workers: the suite's time budget); the comparisons use ``zcp evaluate``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from zcproxies.benchdata import import_file, write_benchmark

pytestmark = pytest.mark.slow
CORPUS = Path(__file__).parent / "submissions" / "corpus"
SUBMISSIONS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
# Submissions that compute a built-in proxy's quantity (the built-in's name).
SAME_AS_BUILTIN = {
    "zerocost_synflow": "synflow",
    "pruners_snip": "snip",
    "develop_pruners_jacov": "jacov",
    "kwargs_query": "jacov",
    "grad_norm_manual": "grad_norm",
    "one_element_tensor": "l2_norm",
    "numpy_array_params": "params",
    "clone_parse_params": "params",
    "predictor_entry": "synflow",
    "ss_type_dispatch": "synflow",  # its choice for nasbench201 (the NB201-cell spaces)
}
N_EMBEDDED = 12
N_SHARED = 12
ZCP = [sys.executable, "-m", "zcproxies.cli"]


def test_corpus_is_large_and_written_like_the_kit() -> None:
    assert len(SUBMISSIONS) >= 15
    for name in SUBMISSIONS:
        files = {p.name for p in (CORPUS / name).iterdir()}
        assert "metadata" in files and files & {"submission.py", "predictor.py"}, name


def batch(
    uploads: Path, out: Path, n: int, benchmark: Path | None
) -> tuple[list[sqlite3.Row], sqlite3.Connection]:
    """``zcp batch`` of every upload; the stored units."""
    extra = ["--benchmark", str(benchmark)] if benchmark else []
    command = [*ZCP, "batch", str(uploads), "--out", str(out), "--n", str(n), "--workers", "2"]
    done = subprocess.run(
        [*command, "--no-progress", *extra], capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-3000:]
    conn = sqlite3.connect(out / "results.sqlite")
    conn.row_factory = sqlite3.Row
    return list(conn.execute("SELECT * FROM units")), conn


def copy_corpus(root: Path) -> Path:
    uploads = root / "uploads"
    for name in SUBMISSIONS:
        shutil.copytree(CORPUS / name, uploads / name)
    return uploads


def evaluate_tau(source: list[str], out: Path, n: int, benchmark: Path | None) -> float:
    """``zcp evaluate`` (a submission directory, or ``--proxy NAME``): the task's Kendall-Tau."""
    extra = ["--benchmark", str(benchmark)] if benchmark else []
    done = subprocess.run(
        [*ZCP, "evaluate", *source, "--n", str(n), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (task,) = json.loads((out / "results.json").read_text())["tasks"]
    assert task["status"] == "ok", task["message"]
    return task["metrics"]["kendall_tau"]


def check_sweep(tmp_path: Path, n: int, benchmark: Path | None) -> dict[str, float]:
    """Every submission ok on every architecture; their Kendall-Taus."""
    units, conn = batch(copy_corpus(tmp_path), tmp_path / "results", n, benchmark)
    assert sorted(u["upload"] for u in units) == SUBMISSIONS
    taus = {}
    for unit in units:
        archs = conn.execute("SELECT status, message FROM archs WHERE unit_id = ?", (unit["id"],))
        statuses = [a["status"] for a in archs]
        assert unit["status"] == "ok" and statuses == ["ok"] * n, (unit["upload"], unit["message"])
        assert unit["form"] == "competition"
        assert json.loads(unit["submission_json"])["model_flavor"] == "naslib"
        taus[unit["upload"]] = unit["kendall_tau"]
    return taus


def check_builtins(taus: dict[str, float], tmp_path: Path, n: int, bench: Path | None) -> None:
    """The same Kendall-Tau as the built-in through ``--proxy`` (within .01)."""
    for name in sorted(set(SAME_AS_BUILTIN.values())):
        builtin = evaluate_tau(["--proxy", name], tmp_path / f"builtin_{name}", n, bench)
        for sub in (s for s, proxy in SAME_AS_BUILTIN.items() if proxy == name):
            assert abs(taus[sub] - builtin) <= 0.01, (sub, taus[sub], name, builtin)


def test_corpus_on_the_embedded_benchmark(tmp_path: Path) -> None:
    taus = check_sweep(tmp_path, N_EMBEDDED, None)
    check_builtins(taus, tmp_path, N_EMBEDDED, None)
    # one of them through `zcp evaluate` itself: the same number as in the sweep
    alone = evaluate_tau([str(CORPUS / "zerocost_synflow")], tmp_path / "one", N_EMBEDDED, None)
    assert alone == pytest.approx(taus["zerocost_synflow"], abs=1e-12)


@pytest.mark.shared
def test_corpus_on_nb201_cifar10(tmp_path: Path, shared_dir: Path) -> None:
    (table,) = [
        t
        for t in import_file(shared_dir / "nas_bench_suite_zero" / "zc_nasbench201.json")
        if t.task == "cifar10"
    ]
    bench = write_benchmark(tmp_path / "nb201_cifar10.h5", [table])
    taus = check_sweep(tmp_path, N_SHARED, bench)
    check_builtins(taus, tmp_path, N_SHARED, bench)
