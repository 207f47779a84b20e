"""One hostile upload among honest ones: every unit gets its precise status, and the honest
units are recorded EQUAL (status, scores, metrics, minibatch) to a clean run of the honest ones
alone. Then faults injected into each stage of the batch machinery (scan, launch, parse, judge,
metrics, report, store): the unit hit is ``internal_error``, the others equal the clean run.
Also ``zcp batch``'s exit statuses and Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from test_adversarial_boundary import UNSAFE, UPLOADS
from test_adversarial_evaluate import interruptible
from test_batch import NOISY, PARAMS, alive, count_rows, descendants, native, rows, table
from test_evaluator import SUBMISSIONS
from test_evaluator_sandbox import TREE_CAPPED

from evaluator import Limits, policy
from evaluator.batch import BatchSummary, run_batch
from evaluator.batch_cli import cli
from evaluator.leaderboard import write_leaderboard
from evaluator.protocol import INTERNAL_ERROR, ArchResult, upload_key
from evaluator.store import STORE_NAME, ResultsStore
from zcproxies.benchdata import write_benchmark

N = 4
LIMITS = Limits(task_timeout=8, memory_mb=3072, max_processes=32, max_restarts=1)
HONEST = {"honest_params": PARAMS, "honest_noisy": NOISY}
# A cgroup's process cap ends the task at the first refused fork; under the fallback,
# RLIMIT_NPROC refuses forks the upload sees (the bomb raises, the counter handles it).
FORK_BOMB = ("processes", ["processes"] * 4) if TREE_CAPPED else ("error", ["error"] * 4)
FORK_COUNT = ("processes", ["processes"] * 4) if TREE_CAPPED else ("ok", ["ok"] * 4)
# upload file name -> (what it is, unit status, architecture statuses or None)
HOSTILE: dict[bytes, tuple[str, str, list[str] | None]] = {
    b"values": ("submissions/values", "invalid_score", ["ok"] + ["invalid_score"] * 3),
    b"raising": ("submissions/raising", "ok", ["ok", "error", "ok", "ok"]),
    b"segfault": ("submissions/segfault", "crash", ["crash"] * 4),
    b"memory_hog": ("submissions/memory_hog", "memory", ["ok"] + ["memory"] * 3),
    b"sleeper": ("submissions/sleeper", "timeout", ["ok"] + ["timeout"] * 3),
    b"infinite_loop": ("submissions/infinite_loop", "timeout", ["ok"] * 2 + ["timeout"] * 2),
    b"fork_bomb": ("submissions/fork_bomb", *FORK_BOMB),
    b"fork_count": ("submissions/fork_count", *FORK_COUNT),
    b"init_error": ("submissions/init_error", "error", ["error"] * 4),
    b"preprocess_error": ("submissions/preprocess_error", "error", ["error"] * 4),
    b"missing_class": ("submissions/missing_class", "rejected", ["rejected"] * 4),
    b"competition": ("submissions/competition", "ok", ["ok"] * 4),
    b"lone_surrogate": ("uploads/lone_surrogate", "error", ["error"] * 4),
    b"control_chars": ("uploads/control_chars", "error", ["error"] * 4),
    b"forger": ("uploads/forger", "ok", ["ok"] * 4),  # garbage on the protocol pipe
    b"extreme_scores": ("uploads/extreme_scores", "ok", ["ok"] * 4),
    b"not_a_zip.zip": ("junk", "rejected", ["rejected"] * 4),
    b"inner_bad_name": ("params + a file named x\\xff.py", "rejected", ["rejected"] * 4),
    b"bad\xff\xfe name": ("params", "ok", ["ok"] * 4),  # not valid UTF-8
    b"evil\n| `name`": ("params", "ok", ["ok"] * 4),
    b'=HYPERLINK("x")': ("params", "ok", ["ok"] * 4),
    b"<img src=x onerror=alert(1)>": ("params", "ok", ["ok"] * 4),
    b"hex:ff": ("params", "ok", ["ok"] * 4),  # a clean name that looks like a store key
}
COMPARED = (  # what must be equal between an honest unit here and in the clean run
    "status",
    "message",
    "kendall_tau",
    "kendall_tau_ci_low",
    "kendall_tau_ci_high",
    "kendall_tau_scored",
    "spearman",
    "precision_top10",
    "n_ok",
    "n_archs",
    "batch_fingerprint",
    "sha256",
)


def make_upload(uploads: Path, name: bytes, what: str) -> None:
    """Create upload ``name`` (any bytes) in ``uploads`` as ``what`` describes."""
    path = Path(os.fsdecode(bytes(uploads) + b"/" + name))
    if what.startswith(("submissions/", "uploads/")):
        base = SUBMISSIONS.parent if what.startswith("submissions/") else UPLOADS.parent
        shutil.copytree(base / what, path)
    elif what == "junk":
        path.write_bytes(b"this is not a zip archive")
    else:
        native(path, PARAMS)
        if "x\\xff.py" in what:
            Path(os.fsdecode(bytes(path) + b"/x\xff.py")).write_text("X = 1\n")


def honest(uploads: Path) -> None:
    for name, code in HONEST.items():
        native(uploads / name, code)


def batch(uploads: Path, out: Path, bench: Path, **options: Any) -> BatchSummary:
    return run_batch(
        uploads,
        out,
        benchmark=bench,
        n_archs=N,
        limits=LIMITS,
        workers=2,
        progress=False,
        **options,
    )


def by_name(out: Path) -> dict[str, dict]:
    """Recorded units by upload key (one task, one content per name)."""
    return {key.upload: unit for key, unit in rows(out).items()}


def assert_equal_to_clean(units: dict[str, dict], clean: dict[str, dict]) -> None:
    """Every honest unit equals its clean-run twin: statuses, metrics, per-arch scores."""
    for name in HONEST:
        a, b = units[name], clean[name]
        for column in COMPARED:
            assert a[column] == b[column], (name, column)
        assert [(r["arch"], r["seed"], r["status"], r["score"]) for r in a["archs"]] == [
            (r["arch"], r["seed"], r["status"], r["score"]) for r in b["archs"]
        ], name


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small task: four of six architectures are sampled."""
    path = tmp_path_factory.mktemp("bench") / "bench.h5"
    return write_benchmark(path, [table("nasbench201_mini", "digits", 6)])


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, bench: Path) -> dict[str, dict]:
    """The honest uploads alone."""
    root = tmp_path_factory.mktemp("clean")
    honest(root / "uploads")
    summary = batch(root / "uploads", root / "results", bench)
    assert summary.statuses == {"ok": 2}
    return by_name(root / "results")


@pytest.mark.slow
def test_hostile_uploads_among_honest_ones(
    tmp_path: Path, bench: Path, clean: dict[str, dict]
) -> None:
    uploads, out = tmp_path / "uploads", tmp_path / "results"
    honest(uploads)
    for name, (what, _, _) in HOSTILE.items():
        make_upload(uploads, name, what)
    summary = batch(uploads, out, bench)
    assert summary.planned == len(HOSTILE) + len(HONEST) and not summary.interrupted
    units = by_name(out)
    assert len(units) == summary.planned  # every unit recorded, each under its own key
    for name, (_, status, archs) in HOSTILE.items():
        unit = units[upload_key(os.fsdecode(name))]
        assert unit["status"] == status, (name, unit["message"])
        assert [r["status"] for r in unit["archs"]] == archs, name
    assert_equal_to_clean(units, clean)
    params = units["honest_params"]
    for name in (b"bad\xff\xfe name", b"evil\n| `name`", b"hex:ff"):  # same files, same scores
        twin = units[upload_key(os.fsdecode(name))]
        assert twin["sha256"] == params["sha256"] and twin["kendall_tau"] == params["kendall_tau"]
    assert "valid UTF-8" in units["inner_bad_name"]["message"]
    assert "\\ud800" in units["lone_surrogate"]["archs"][0]["message"]

    board, paths = write_leaderboard(out)  # every output of the leaderboard survives them
    names = {e["name"] for e in board["entries"]}
    assert "bad\\xff\\xfe name" in names and "evil\\x0a| `name`" in names
    page = paths[2].read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    table_csv = pd.read_csv(paths[0])
    assert not table_csv["upload"].str.match(r"[=+\-@]").any()
    assert "'=HYPERLINK" in set(table_csv["upload"].str[:11])
    report = paths[3].read_text()
    assert report.count("\n## ") == len(units)
    for path in paths:
        assert not UNSAFE.search(path.read_text().replace("\n", "").replace("\t", ""))
    listed = CliRunner().invoke(cli, ["leaderboard", str(out)])
    assert listed.exit_code == 0 and "bad\\xff\\xfe name" in listed.output


# ---- fault injection: every stage of the machinery ----------------------------------------------
STAGES = ("scan", "launch", "parse", "judge", "metrics", "report", "store")
MARK = {stage: 1001.0 + i for i, stage in enumerate(STAGES)}  # the score each victim returns


def inject(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make each stage raise for its victim upload only (``victim_<stage>``)."""
    import evaluator.batch as batch_module
    import evaluator.runner as runner
    import evaluator.unit as unit

    def wrap(owner: Any, name: str, hit: Callable[..., bool]) -> None:
        real = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if hit(*args, **kwargs):
                raise OSError(f"injected {name} fault")
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    def scored(stage: str, archs: list[Any]) -> bool:
        return any(a.score == MARK[stage] for a in archs)

    wrap(batch_module, "open_submission", lambda path, *_: path.name == "victim_scan")
    wrap(
        runner,
        "launch",
        lambda iso, mounts, *_: (mounts.submission_dir / "launch.txt").exists(),
    )

    real_decode = runner.decode_event

    def decode(line: bytes) -> Any:  # parse: the real decoder, then a fault on the victim's event
        event = real_decode(line)
        if isinstance(event, ArchResult) and event.value and event.value.number == MARK["parse"]:
            raise ValueError("injected decode_event fault")
        return event

    monkeypatch.setattr(runner, "decode_event", decode)
    wrap(policy, "judge_arch_event", lambda e: e.value and e.value.number == MARK["judge"])
    wrap(runner, "task_metrics", lambda result, seed: scored("metrics", result.archs))
    wrap(unit, "result_outcome", lambda result, sub: scored("report", result.archs))
    wrap(
        ResultsStore,
        "write_unit",
        lambda self, key, record: key.upload == "victim_store" and record.status != INTERNAL_ERROR,
    )


@pytest.mark.slow
def test_a_fault_at_any_stage_is_recorded_on_its_unit_only(
    tmp_path: Path, bench: Path, clean: dict[str, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads, out = tmp_path / "uploads", tmp_path / "results"
    honest(uploads)
    for stage in STAGES:
        native(uploads / f"victim_{stage}", f"def score(model, batch):\n    return {MARK[stage]}\n")
    (uploads / "victim_launch" / "launch.txt").write_text("")
    inject(monkeypatch)
    summary = batch(uploads, out, bench)
    assert summary.statuses == {"ok": 2, INTERNAL_ERROR: len(STAGES)}
    units = by_name(out)
    for stage in STAGES:
        unit = units[f"victim_{stage}"]
        assert unit["status"] == INTERNAL_ERROR, (stage, unit["message"])
        assert "not the submission's doing" in unit["message"] and "injected" in unit["message"]
        assert "injected" in unit["error"]  # the traceback
    assert_equal_to_clean(units, clean)
    monkeypatch.undo()
    retried = batch(uploads, out, bench, retry_failed=True)  # the machinery works again
    assert retried.statuses == {"ok": len(STAGES)}  # the scan victim now has its real hash
    after = by_name(out)
    for stage in STAGES[1:]:
        assert (after[f"victim_{stage}"]["status"], after[f"victim_{stage}"]["attempts"]) == (
            "ok",
            2,
        )


# ---- zcp batch: exit statuses and Ctrl-C --------------------------------------------------------
def test_batch_exit_statuses(tmp_path: Path, bench: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uploads, out = tmp_path / "uploads", tmp_path / "results"
    native(uploads / "p", PARAMS)
    common = ["--out", str(out), "--benchmark", str(bench), "--n", str(N), "--no-progress"]
    runner = CliRunner()
    missing = runner.invoke(cli, ["batch", str(tmp_path / "nowhere"), *common])
    assert missing.exit_code == 2 and not out.exists()

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.DatabaseError("injected")

    monkeypatch.setattr("evaluator.unit.run_tasks", broken)
    failed = runner.invoke(cli, ["batch", str(uploads), *common])
    assert failed.exit_code == 1 and "internal_error 1" in failed.output
    other = runner.invoke(cli, ["batch", str(uploads), *common[:-1], "--n", "5"])
    assert other.exit_code == 2 and "another configuration" in other.output
    text = runner.invoke(cli, ["batch", "--help"]).output
    assert "internal_error" in text and "130" in text


@pytest.mark.slow
def test_batch_ctrl_c_keeps_recorded_units(tmp_path: Path, bench: Path) -> None:
    uploads, out = tmp_path / "uploads", tmp_path / "results"
    native(uploads / "a_params", PARAMS)
    native(uploads / "b_stalls", "import time\n\ndef score(model, batch):\n    time.sleep(600)\n")
    argv = [sys.executable, "-m", "evaluator.batch_cli", "batch", str(uploads), "--out", str(out)]
    argv += ["--benchmark", str(bench), "--n", str(N), "--workers", "1", "--no-progress"]
    argv += ["--task-timeout", "300"]
    proc = interruptible(argv)
    deadline = time.monotonic() + 120
    while count_rows(out / STORE_NAME) < 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(1.0)  # b_stalls is being scored
    tree = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "INTERRUPTED after 1 of 2" in stdout
    assert [u["upload"] for u in rows(out).values()] == ["a_params"]
    with ResultsStore(out / STORE_NAME) as store:
        assert store.runs()[0]["finished_at"] is None
    until = time.monotonic() + 15  # sandboxes die with their parent (bwrap / PDEATHSIG)
    while any(alive(p) for p in tree) and time.monotonic() < until:
        time.sleep(0.2)
    assert not [cmd for p, cmd in tree.items() if alive(p)], "a worker outlived the batch"
