"""Hostile submissions through ``evaluate`` and ``zcp evaluate``: each case has its precise
status, and every report file stays readable (strict JSON and UTF-8, one Markdown row per task,
CSV without formulas, a plot). Also the exit statuses, the checks made before any work, and
Ctrl-C keeping what was done.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from test_adversarial_boundary import UNSAFE, UPLOADS, forger
from test_batch import PARAMS, descendants, native, table
from test_evaluator import SUBMISSIONS, arch_rows, make_task, run

from evaluator import protocol
from evaluator.cli import cli
from zcproxies.benchdata import write_benchmark

N = 4
GARBAGE_PER_CALL = (
    len(forger().GARBAGE) + len(forger().OUT_OF_SEQUENCE) - forger().DROPPED_BY_READER
)
EXTREMES = [1.7e308, -1.7e308, 1e-320, -5e-324]
# case id: (upload, forger mode, statuses of the N architectures, task status)
CASES = {
    "lone_surrogate": ("lone_surrogate", None, ["error"] * N, "error"),
    "control_chars": ("control_chars", None, ["error"] * N, "error"),
    "forged_garbage": ("forger", "garbage", ["ok"] * N, "ok"),
    "forged_done": ("forger", "done", ["crash"] * N, "crash"),
    "forged_claim": ("forger", "claim", ["ok"] * N, "ok"),
    "extreme_scores": ("extreme_scores", None, ["ok"] * N, "ok"),
    # 2 invalid_score, 2 error: a tie, which error wins (protocol.STATUSES order)
    "huge_names": ("huge_names", None, ["invalid_score", "error"] * 2, "error"),
}


def assert_reports_intact(out: Path, n_tasks: int = 1) -> dict:
    """Every report file of ``out`` is readable and safe; results.json parsed."""
    for path in out.rglob("*"):
        if path.suffix in (".json", ".csv", ".md"):
            text = path.read_bytes().decode("utf-8")  # strict: no surrogate got through
            assert not UNSAFE.search(text.replace("\n", "").replace("\t", "")), path

    def no_constant(value: str) -> None:
        raise AssertionError(f"not strict JSON: {value}")

    results = json.loads((out / "results.json").read_text(), parse_constant=no_constant)
    lines = (out / "summary.md").read_text().splitlines()
    table_rows = [line for line in lines if line.startswith("|")]
    assert len(table_rows) == 2 + n_tasks  # header, separator, one row per task
    pipes = len(re.findall(r"(?<!\\)\|", table_rows[0]))  # the header's: 12 (11 columns)
    assert pipes == 12
    for row in table_rows:  # as many unescaped pipes: no cell leaked into another
        assert len(re.findall(r"(?<!\\)\|", row)) == pipes, row
    for name in ("results.csv", "archs.csv"):
        frame = pd.read_csv(out / name)
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                cells = frame[column].dropna().astype(str)
                assert not cells.str.match(r"[=+\-@\t\r]").any(), column
    assert len(pd.read_csv(out / "results.csv")) == n_tasks
    for task in results["tasks"]:
        png = out / "plots" / f"{task['space']}__{task['task']}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_submission_gets_its_status(case: str, tmp_path: Path) -> None:
    upload, mode, archs, status = CASES[case]
    folder = tmp_path / upload
    shutil.copytree(UPLOADS / upload, folder)
    if mode is not None:
        (folder / "mode.txt").write_text(mode)
    frame, _ = run(folder, [make_task(n=N)], tmp_path / "out", n=N)
    results = assert_reports_intact(tmp_path / "out")
    rows = arch_rows(results)
    assert [r["status"] for r in rows] == archs
    assert frame["status"].iloc[0] == status, frame["message"].iloc[0]
    launch = results["tasks"][0]["launches"][0]
    messages = [r["message"] for r in rows]
    if case == "lone_surrogate":
        assert (
            messages == ["ValueError: \\ud800 is half of a character (at proxy.py:5 in score)"] * N
        )
    elif case == "control_chars":
        assert all("NUL\\x00 ESC\\x1b[31m red \\u202e rtl" in m for m in messages)
        assert "NUL\\x00 ESC\\x1b[31m" in launch["stderr_tail"]
    elif case == "forged_garbage":  # the submission's doing: counted, and nothing else changed
        assert launch["garbage_lines"] == N * GARBAGE_PER_CALL
        assert frame["kendall_tau"].iloc[0] == 1.0 and len(results["tasks"][0]["launches"]) == 1
    elif case == "forged_done":
        assert frame["message"].iloc[0] == (
            "the worker said done before every architecture was scored"
        )
        assert launch["end"] == "done" and len(results["tasks"][0]["launches"]) == 1
    elif case == "forged_claim":  # a forged event can only claim a score it could have returned
        assert [r["score"] for r in rows] == [forger().CLAIMED] * N
        assert launch["garbage_lines"] == N  # the worker's own events came second
    elif case == "huge_names":
        assert len(messages[0]) < 1000 and len(messages[1]) < 1000
        assert launch["garbage_lines"] == 0 and len(results["tasks"][0]["launches"]) == 1
    elif case == "extreme_scores":
        assert [r["score"] for r in rows] == EXTREMES
        assert math.isfinite(frame["kendall_tau"].iloc[0])


@pytest.mark.parametrize(
    "name", [b"evil\n| name `x` =cmd <b>", b"bad\xff\xfe name", b"=HYPERLINK(1)"]
)
def test_upload_names_cannot_break_the_reports(name: bytes, tmp_path: Path) -> None:
    folder = native(Path(os.fsdecode(bytes(tmp_path) + b"/" + name)), PARAMS)
    frame, results = run(folder, [make_task(n=2)], tmp_path / "out", n=2)
    assert frame["status"].iloc[0] == "ok"
    assert_reports_intact(tmp_path / "out")
    summary = (tmp_path / "out" / "summary.md").read_text()
    (line,) = [s for s in summary.splitlines() if s.startswith("- submission:")]
    assert "name" in line or "HYPERLINK" in line  # on one line, escaped
    assert results["submission"]["source"].encode("utf-8")


@pytest.mark.slow
def test_a_fault_of_the_evaluator_fails_only_its_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection in ``zcp evaluate``: metrics of one task raise; that task is
    ``internal_error`` with the traceback, the other is scored, every report is written."""
    from evaluator import runner

    real = runner.task_metrics

    def metrics(result: protocol.TaskResult, seed: int) -> protocol.TaskMetrics:
        if result.task.task == "cifar10":
            raise ZeroDivisionError("injected metrics fault")
        return real(result, seed)

    monkeypatch.setattr(runner, "task_metrics", metrics)
    tasks = [make_task(n=N), make_task("nasbench201", "cifar10", n=N)]
    frame, _ = run("proxy:params", tasks, tmp_path / "out", n=N, batch_size=8)
    results = assert_reports_intact(tmp_path / "out", n_tasks=2)
    assert frame["status"].tolist() == ["ok", "internal_error"]
    assert frame["kendall_tau"].tolist() == [1.0, 0.0]
    assert "injected metrics fault" in frame["message"].iloc[1]
    assert "ZeroDivisionError" in results["tasks"][1]["error"]
    assert [r["status"] for r in arch_rows(results, 1)] == ["ok"] * N  # what was scored stays


# ---- zcp evaluate: exit statuses and checks before any work -------------------------------------
def invoke(*args: str) -> tuple[int, str]:
    """``zcp evaluate ARGS`` in process: (exit status, output)."""
    done = CliRunner().invoke(cli, ["evaluate", *args])
    assert not isinstance(done.exception, Exception) or isinstance(done.exception, SystemExit), (
        done.output
    )
    return done.exit_code, done.output


def test_usage_and_data_errors_are_found_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello")
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = [
        ([str(tmp_path / "missing")], "no such file or directory"),
        ([str(not_zip)], "not a zip file"),
        (["--proxy", "no_such_proxy"], "unknown proxy"),
        (["--proxy", "params", "--n", "1"], "n_archs must be >= 2"),
        (["--proxy", "params", "--memory-mb", "0"], "memory_mb"),
    ]
    for args, text in cases:
        began = time.monotonic()
        status, output = invoke(*args, "--out", str(out))
        assert status == 2, (args, output)
        assert text in output and not out.exists(), (args, output)
        assert time.monotonic() - began < 5.0  # no worker was started
    status, output = invoke("--proxy", "params", "--out", str(a_file / "sub"))
    assert status == 2 and output.count("error:") == 1 and "give a writable directory" in output


@pytest.mark.slow
def test_exit_status_says_whether_the_submission_failed(tmp_path: Path) -> None:
    bench = write_benchmark(tmp_path / "b.h5", [table("nasbench201_mini", "digits", 4)])
    common = ["--benchmark", str(bench), "--n", "2", "--task-timeout", "30"]
    assert invoke("--proxy", "params", *common, "--out", str(tmp_path / "a"))[0] == 0
    failing = invoke(str(UPLOADS / "lone_surrogate"), *common, "--out", str(tmp_path / "b"))
    assert failing[0] == 1 and "no task is ok" in failing[1]
    rejected = invoke(str(SUBMISSIONS / "missing_class"), *common, "--out", str(tmp_path / "c"))
    assert rejected[0] == 1
    results = json.loads((tmp_path / "c" / "results.json").read_text())
    assert [t["status"] for t in results["tasks"]] == ["rejected"]


def test_help_documents_the_exit_statuses() -> None:
    text = CliRunner().invoke(cli, ["evaluate", "--help"]).output
    for line in ("0    scored", "1    the submission failed", "2    usage or data", "130"):
        assert line in text


def interruptible(argv: list[str]) -> subprocess.Popen[str]:
    """``argv`` started so that SIGINT acts as a terminal's Ctrl-C does (a shell that runs the
    tests in the background makes its children ignore SIGINT)."""
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.slow
def test_ctrl_c_keeps_the_finished_tasks(tmp_path: Path) -> None:
    """SIGINT while the second of three tasks runs: exit 130, the first task written as scored,
    the second and third ``interrupted``, the worker gone."""
    bench = write_benchmark(
        tmp_path / "b.h5",
        [
            table("nasbench201_mini", "digits", 3),
            table("nasbench201", "cifar10", 3),
            table("nasbench201", "cifar100", 3),
        ],
    )
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "evaluator.cli", "evaluate", str(UPLOADS / "stalls")]
    argv += ["--benchmark", str(bench), "--n", "3", "--batch-size", "8", "--out", str(out)]
    proc = interruptible(argv)
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while len(workers) < 2:  # the second task's worker (its Python, not bwrap) has started
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        workers |= {
            pid
            for pid, cmd in descendants(proc.pid).items()
            if cmd.startswith(sys.executable)
            and "evaluator.worker" in cmd
            and "enter.py" not in cmd  # the launch trampoline, before it execs (seen under load)
        }
        time.sleep(0.1)
    time.sleep(2.0)  # inside the stalling architecture
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "final score" in stdout
    results = assert_reports_intact(out, n_tasks=3)
    assert [t["status"] for t in results["tasks"]] == ["ok", "interrupted", "interrupted"]
    assert results["interrupted"] is True
    assert [a["status"] for a in results["tasks"][0]["archs"]] == ["ok"] * 3
    assert [a["status"] for a in results["tasks"][1]["archs"]] == ["interrupted"] * 3
    assert len(results["tasks"][1]["launches"]) == 1 and results["tasks"][2]["launches"] == []
    assert "**interrupted**" in (out / "summary.md").read_text()
    assert not [p for p in workers if Path(f"/proc/{p}").exists()]
