"""Organizers' batch: results store semantics, a real ``kill -9`` and restart, fairness
(identical uploads, identical scores), and the Ray backend against the local one.

Every unit really runs in the evaluator's sandboxed worker; the benchmark is a tiny two-task
file (8 architectures each) so that the whole file stays around two minutes on two cores.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from evaluator import Limits
from evaluator.batch import BatchBusy, BatchSummary, batch_lock, run_batch
from evaluator.leaderboard import write_leaderboard
from evaluator.store import STORE_NAME, ConfigMismatch, ResultsStore, UnitKey
from zcproxies.benchdata import BenchmarkTask, write_benchmark
from zcproxies.measure import count_params
from zcproxies.spaces import get_space

N = 8
LIMITS = Limits(task_timeout=30, memory_mb=3072, max_processes=32, max_restarts=1)
TASKS = ("nasbench201_mini/digits", "nasbench201/cifar10")
# Depends on the weights and on torch's global generator: equal only if seeding is identical.
NOISY = """import torch

def score(model, batch):
    weights = sum(float(p.abs().sum()) for p in model.parameters())
    return weights + float(torch.rand(()))
"""
RAISER = "def score(model, batch):\n    raise RuntimeError('no idea')\n"
PARAMS = "def score(model, batch):\n    return sum(p.numel() for p in model.parameters())\n"
REQUIRE_RAY = os.environ.get("ZCP_REQUIRE_RAY") == "1" or os.environ.get("CI") == "true"


def table(space: str, task: str, n: int) -> BenchmarkTask:
    """``n`` seeded architectures of ``space`` ranked by parameter count (a known ranking)."""
    obj = get_space(space)
    rng = np.random.default_rng(0)
    keys: list[str] = []
    while len(keys) < n:
        key = obj.encode(obj.sample(rng))
        keys += [] if key in keys else [key]
    params = [float(count_params(obj.build(k, task))) for k in keys]
    frame = pd.DataFrame({"arch": keys, "val_accuracy": params})
    return BenchmarkTask(space, task, frame, source="test: parameter count")


def native(path: Path, code: str) -> Path:
    """A native-form upload directory holding ``proxy.py``."""
    path.mkdir(parents=True)
    (path / "proxy.py").write_text(code)
    return path


def zipped(path: Path, code: str) -> Path:
    """A zip upload whose ``proxy.py`` sits in one folder (``zip -r x.zip x/``, unwrapped)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inner/proxy.py", code)
    return path


def batch(uploads: Path, out: Path, bench: Path, **options: Any) -> BatchSummary:
    """``run_batch`` quietly with the test's sample size and limits."""
    options.setdefault("workers", 2)
    return run_batch(
        uploads, out, benchmark=bench, n_archs=N, limits=LIMITS, progress=False, **options
    )


def rows(out: Path) -> dict[UnitKey, dict]:
    """Every recorded unit of ``out``, by key, with its architectures."""
    with ResultsStore(out / STORE_NAME) as store:
        return {
            UnitKey(u["upload"], u["sha256"], u["task"]): {**u, "archs": store.archs(u["id"])}
            for u in store.units()
        }


def by_upload(recorded: dict[UnitKey, dict]) -> dict[tuple[str, str], dict]:
    """Units keyed by (upload name, task) (one content per name)."""
    return {(k.upload, k.task): v for k, v in recorded.items()}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-task benchmark file (small NB201 networks and full NB201 ones)."""
    path = tmp_path_factory.mktemp("bench") / "bench.h5"
    return write_benchmark(
        path, [table("nasbench201_mini", "digits", 10), table("nasbench201", "cifar10", 10)]
    )


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory, bench: Path) -> tuple[Path, Path, BatchSummary]:
    """One batch over four uploads: (uploads dir, results dir, summary)."""
    root = tmp_path_factory.mktemp("first")
    uploads = root / "uploads"
    native(uploads / "alpha", NOISY)
    zipped(uploads / "alpha_copy.zip", NOISY)
    native(uploads / "raiser", RAISER)
    (uploads / "broken.zip").write_bytes(b"this is not a zip archive")
    summary = batch(uploads, root / "results", bench)
    return uploads, root / "results", summary


def test_every_upload_on_every_task_recorded_with_provenance(first: tuple) -> None:
    _, out, summary = first
    assert (summary.planned, summary.skipped) == (8, 0)
    assert summary.statuses == {"ok": 4, "error": 2, "rejected": 2}
    units = by_upload(rows(out))
    assert sorted(units) == sorted(
        (u, t) for u in ("alpha", "alpha_copy.zip", "raiser", "broken.zip") for t in TASKS
    )
    for (upload, task), unit in units.items():
        expected = {"alpha": "ok", "alpha_copy.zip": "ok", "raiser": "error"}.get(upload)
        assert unit["status"] == (expected or "rejected")
        assert (unit["seed"], unit["n_archs"], unit["batch_size"]) == (0, N, 64)
        assert unit["limits"] == LIMITS.to_dict()
        assert len(unit["batch_fingerprint"]) == 64 and unit["uploaded_at"]
        assert unit["environment"]["torch"] and unit["config_fingerprint"]
        assert (unit["space"] + "/" + unit["task_name"], unit["attempts"]) == (task, 1)
        assert len(unit["archs"]) == N
        if expected:  # really scored in a sandboxed worker pinned to its slot's single CPU
            assert unit["launches"] >= 1 and len(unit["environment"]["cpus"]) == 1
            assert unit["environment"]["isolation"]["mode"] in ("bwrap", "none")
    assert units[("raiser", TASKS[0])]["message"]  # why it failed
    assert "not a zip" in units[("broken.zip", TASKS[0])]["message"]
    # Same minibatch (fingerprint) for every upload of a task.
    for task in TASKS:
        assert len({u["batch_fingerprint"] for (_, t), u in units.items() if t == task}) == 1


def test_identical_uploads_get_identical_scores(first: tuple) -> None:
    _, out, _ = first
    units = by_upload(rows(out))
    for task in TASKS:
        a, b = units[("alpha", task)], units[("alpha_copy.zip", task)]
        assert a["sha256"] == b["sha256"]  # same files: same content hash, dir or zip
        assert a["kendall_tau"] == b["kendall_tau"]
        scores = [r["score"] for r in a["archs"]]
        assert scores == [r["score"] for r in b["archs"]]
        assert len(set(scores)) == N  # real, distinct values (the proxy is not constant)
    board, _ = write_leaderboard(out)
    ranks = {e["upload"]: e["rank"] for e in board["entries"]}
    assert ranks["alpha"] == ranks["alpha_copy.zip"]  # a tie shares the rank


@pytest.mark.slow
def test_rerun_skips_retries_only_when_asked_and_follows_content(
    first: tuple, bench: Path, tmp_path: Path
) -> None:
    uploads0, out0, _ = first
    uploads, out = tmp_path / "uploads", tmp_path / "results"
    shutil.copytree(uploads0, uploads)
    shutil.copytree(out0, out)
    before = rows(out)

    again = batch(uploads, out, bench)
    assert (again.planned, again.skipped) == (0, 8)
    assert rows(out) == before  # nothing touched

    retried = batch(uploads, out, bench, retry_failed=True)  # only the units that are not ok
    assert (retried.planned, retried.skipped) == (4, 4)
    after = rows(out)
    for key, unit in after.items():
        failed = key.upload in ("raiser", "broken.zip")
        assert unit["attempts"] == (2 if failed else 1)
        if failed:
            assert unit["run_id"] == retried.run_id
            assert unit["history"][0]["status"] == before[key]["status"]
        else:
            assert unit == before[key]

    (uploads / "raiser" / "proxy.py").write_text(PARAMS)  # the author fixed the upload
    changed = batch(uploads, out, bench)
    assert (changed.planned, changed.skipped) == (2, 6)
    final = rows(out)
    assert set(after) < set(final)  # the old content's rows are kept
    new = [u for k, u in final.items() if k.upload == "raiser" and k not in after]
    assert [u["status"] for u in new] == ["ok", "ok"]
    assert all(u["kendall_tau"] == pytest.approx(1.0) for u in new)  # params ranks exactly
    board, _ = write_leaderboard(out)
    raiser = next(e for e in board["entries"] if e["upload"] == "raiser")
    assert raiser["sha256"] == new[0]["sha256"]
    assert raiser["mean_kendall_tau"] == pytest.approx(1.0)


def test_other_configuration_or_concurrent_batch_is_refused(first: tuple, bench: Path) -> None:
    uploads, out, _ = first
    with pytest.raises(ConfigMismatch, match="n_archs: 8 -> 9"):
        run_batch(uploads, out, benchmark=bench, n_archs=9, limits=LIMITS, progress=False)
    with batch_lock(out), pytest.raises(BatchBusy, match="another zcp batch"):
        batch(uploads, out, bench)


@pytest.mark.slow
def test_machinery_failure_is_an_internal_error_retried_on_request(
    bench: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads, out = tmp_path / "uploads", tmp_path / "results"
    native(uploads / "p", PARAMS)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("evaluator.unit.run_tasks", broken)
    summary = batch(uploads, out, bench, workers=1)
    assert summary.statuses == {"internal_error": 2}
    units = list(rows(out).values())
    assert all("No space left" in u["message"] and "OSError" in u["error"] for u in units)
    board, _ = write_leaderboard(out)
    assert board["entries"][0]["status"] == "internal_error x2"
    assert batch(uploads, out, bench).planned == 0  # recorded: skipped without the flag
    monkeypatch.undo()
    retried = batch(uploads, out, bench, retry_failed=True)
    assert retried.statuses == {"ok": 2}
    assert all(u["attempts"] == 2 and u["status"] == "ok" for u in rows(out).values())


# ---- kill -9 ------------------------------------------------------------------------------------
def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid`` (host view, sandboxes included): pid -> command line."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            todo.append(child)
    return {p: c.decode(errors="replace") for p, c in found.items()}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def count_rows(store: Path) -> int:
    """Units recorded so far (read while the batch writes: WAL readers do not block it)."""
    if not store.exists():
        return 0
    with sqlite3.connect(store, timeout=30) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM units").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            return 0


@pytest.mark.slow
def test_kill_9_loses_nothing_and_a_restart_finishes_exactly_once(
    bench: Path, tmp_path: Path
) -> None:
    uploads, out = tmp_path / "uploads", tmp_path / "results"
    for name in ("p1", "p2", "p3"):
        native(uploads / name, PARAMS + f"# {name}\n")
    argv = [
        sys.executable,
        "-m",
        "evaluator.batch_cli",
        "batch",
        str(uploads),
        "--out",
        str(out),
        "--benchmark",
        str(bench),
        "--n",
        str(N),
        "--workers",
        "2",
        "--task-timeout",
        "30",
        "--memory-mb",
        "3072",
        "--no-progress",
    ]
    # Every run directory (and so every sandbox's command line) lies under this test's TMPDIR.
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env, start_new_session=True)
    store = out / STORE_NAME
    deadline = time.monotonic() + 120
    try:
        while True:  # until units are recorded AND others are being scored right now
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the batch recorded nothing in time"
            tree = descendants(proc.pid)
            workers = [p for p, cmd in tree.items() if "evaluator.worker" in cmd]
            if count_rows(store) >= 2 and workers:
                break
            time.sleep(0.2)
        tree.update(descendants(proc.pid))
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()

    def survivors() -> list[str]:
        """The tree's processes still alive, and any sandbox of this batch (one may have been
        started between the snapshot and the kill: it dies with its parent too, a moment later)."""
        alive_tree = [cmd for p, cmd in tree.items() if alive(p)]
        return alive_tree + [c for c in descendants(0).values() if str(tmp_path / "tmp") in c]

    until = time.monotonic() + 15  # sandboxes die with their parent (bwrap / PDEATHSIG)
    while survivors() and time.monotonic() < until:
        time.sleep(0.2)
    assert not survivors(), "orphans survived the kill"

    recorded = rows(out)
    assert 2 <= len(recorded) < 6
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert f"{6 - len(recorded)} unit(s) evaluated" in done.stdout
    assert f"{len(recorded)} already recorded" in done.stdout
    final = rows(out)
    assert sorted((k.upload, k.task) for k in final) == sorted(
        (u, t) for u in ("p1", "p2", "p3") for t in TASKS
    )  # every unit exactly once (the store's key is unique)
    assert all(u["status"] == "ok" and u["attempts"] == 1 for u in final.values())
    for key, unit in recorded.items():
        assert final[key] == unit  # rows recorded before the kill are untouched
    with ResultsStore(store) as s:
        runs = s.runs()
    assert runs[0]["finished_at"] is None and runs[1]["finished_at"]
    assert {u["run_id"] for k, u in final.items() if k not in recorded} == {runs[1]["id"]}


# ---- Ray ----------------------------------------------------------------------------------------
@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None and not REQUIRE_RAY,
    reason="ray not installed (pip install 'zcp[ray]'); required when CI=true or ZCP_REQUIRE_RAY=1",
)
@pytest.mark.slow
def test_ray_backend_equals_local(first: tuple, bench: Path, tmp_path: Path) -> None:
    import ray

    uploads0, out0, _ = first
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for name in ("alpha", "raiser", "broken.zip"):
        src = uploads0 / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, uploads / name)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = batch(uploads, tmp_path / "results", bench, backend="ray")
    finally:
        ray.shutdown()
    assert summary.planned == 6
    local, remote = rows(out0), rows(tmp_path / "results")
    assert set(remote) <= set(local)
    for key, unit in remote.items():
        assert unit["backend"] == "ray" and local[key]["backend"] == "local"
        for column in ("status", "kendall_tau", "spearman", "batch_fingerprint", "n_ok"):
            assert unit[column] == local[key][column], (key, column)
        assert [(a["arch"], a["status"], a["score"]) for a in unit["archs"]] == [
            (a["arch"], a["status"], a["score"]) for a in local[key]["archs"]
        ]
        assert unit["environment"]["python"] and unit["environment"]["host"]
