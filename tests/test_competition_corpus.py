"""The competition-form corpus (``tests/submissions/corpus``), run through the command line.

Every submission must be ``ok`` on every architecture, on the embedded benchmark's task and on
NAS-Bench-201 CIFAR-10 from the shared data; one that computes a built-in proxy's quantity must
reach the built-in's Kendall-Tau within .01 (``zcp evaluate --proxy``: same architectures, seeds
and batch). With ``N_ARCHS`` = 12 architectures (66 pairs) one discordant pair moves a Kendall-Tau
by at least 2/66 = .03, so "within .01" means the same ranking.

Cost (the suite's CI budget, 15 min on 2 cores): both tasks are in ONE benchmark file, so the
sweep is ONE ``zcp batch`` (two workers, every upload on both tasks) and each built-in ONE
``zcp evaluate`` over both tasks, two of those at a time; a batch of 32 images (the loader then
has 4 batches of 32).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from zcproxies.benchdata import embedded_task, import_file, write_benchmark

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
TASKS = ("nasbench201_mini/shapes", "nasbench201/cifar10")
N_ARCHS = 12
BATCH_SIZE = 32
ZCP = [sys.executable, "-m", "zcproxies.cli"]
COMMON = ["--n", str(N_ARCHS), "--batch-size", str(BATCH_SIZE)]


@pytest.mark.parametrize("name", SUBMISSIONS)
def test_corpus_is_written_like_the_kit(name: str) -> None:
    assert len(SUBMISSIONS) >= 15
    files = {p.name for p in (CORPUS / name).iterdir()}
    assert "metadata" in files and files & {"submission.py", "predictor.py"}, name


def run_all(commands: list[list[str]], parallel: int = 1) -> None:
    """Run ``commands`` through the command line, ``parallel`` at a time; each must exit 0."""
    with ThreadPoolExecutor(parallel) as pool:
        done = list(pool.map(_run, commands))
    for proc in done:
        assert proc.returncode == 0, (proc.args, proc.stdout[-3000:])


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800
    )


def corpus_benchmark(path: Path, shared: Path) -> Path:
    """One file with both tasks: the embedded one and NB201 CIFAR-10 of NAS-Bench-Suite-Zero."""
    (nb201,) = [
        t
        for t in import_file(shared / "nas_bench_suite_zero" / "zc_nasbench201.json")
        if t.task == "cifar10"
    ]
    return write_benchmark(path, [embedded_task(), nb201])


def task_taus(out: Path) -> dict[str, float]:
    """``zcp evaluate``'s Kendall-Tau per task (each task ok)."""
    taus = {}
    for task in json.loads((out / "results.json").read_text())["tasks"]:
        assert task["status"] == "ok", task["message"]
        taus[f"{task['space']}/{task['task']}"] = task["metrics"]["kendall_tau"]
    return taus


@pytest.mark.slow
@pytest.mark.shared
def test_corpus_ok_on_both_tasks_and_as_the_builtins(tmp_path: Path, shared_dir: Path) -> None:
    bench = corpus_benchmark(tmp_path / "corpus.h5", shared_dir)
    uploads = tmp_path / "uploads"
    for name in SUBMISSIONS:
        shutil.copytree(CORPUS / name, uploads / name)
    results = tmp_path / "results"
    batch = [*ZCP, "batch", str(uploads), "--out", str(results), "--benchmark", str(bench)]
    batch += [*COMMON, "--workers", "2", "--no-progress"]
    run_all([batch])

    conn = sqlite3.connect(results / "results.sqlite")
    conn.row_factory = sqlite3.Row
    units = list(conn.execute("SELECT * FROM units"))
    assert sorted((u["upload"], u["task"]) for u in units) == sorted(
        (name, task) for name in SUBMISSIONS for task in TASKS
    )
    taus: dict[tuple[str, str], float] = {}
    for unit in units:
        archs = conn.execute("SELECT status FROM archs WHERE unit_id = ?", (unit["id"],))
        statuses = [a["status"] for a in archs]
        where = (unit["upload"], unit["task"], unit["message"])
        assert unit["status"] == "ok" and statuses == ["ok"] * N_ARCHS, where
        assert unit["form"] == "competition" and unit["model_flavor"] == "naslib"
        taus[unit["upload"], unit["task"]] = unit["kendall_tau"]

    # The same Kendall-Tau as the built-in through --proxy; one submission through `zcp evaluate`
    # itself gives the sweep's number.
    builtins = sorted(set(SAME_AS_BUILTIN.values()))
    evaluate = [*ZCP, "evaluate", "--benchmark", str(bench), *COMMON]
    commands = [[*evaluate, "--proxy", p, "--out", str(tmp_path / p)] for p in builtins]
    alone = tmp_path / "alone"
    commands.append([*evaluate, str(CORPUS / "zerocost_synflow"), "--out", str(alone)])
    run_all(commands, parallel=2)
    for proxy in builtins:
        for task, builtin in task_taus(tmp_path / proxy).items():
            for sub in (s for s, p in SAME_AS_BUILTIN.items() if p == proxy):
                assert abs(taus[sub, task] - builtin) <= 0.01, (sub, task, proxy, builtin)
    for task, tau in task_taus(alone).items():
        assert tau == pytest.approx(taus["zerocost_synflow", task], abs=1e-12)
