"""Adversarial submissions: each gets a precise status, and nothing is lost for other
architectures or tasks. Limits are short (seconds) so that the file stays fast."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import kendalltau
from test_evaluator import LIMITS, SUBMISSIONS, arch_rows, make_task, needs_bwrap, run

from evaluator import Limits, resolve_isolation
from evaluator.cli import cli
from zcproxies.benchdata import BenchmarkTask, write_benchmark
from zcproxies.paths import shared_data_dir

SHORT = Limits(task_timeout=3, memory_mb=3072, max_processes=32, max_restarts=1)
# Whole-tree limits (tests/test_containment.py) change what some cases below end with.
TREE_CAPPED = resolve_isolation("auto").containment.cgroup != "none"


def statuses(results: dict, task: int = 0) -> list[str]:
    return [r["status"] for r in arch_rows(results, task)]


def leftover_processes(results: dict) -> list[str]:
    """Processes still running under the sandbox uid of each launch (root runs only)."""
    uids = {
        str(launch["worker"]["uid"])
        for task in results["tasks"]
        for launch in task["launches"]
        if launch.get("worker", {}).get("uid_switched")
    }
    left = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if fields["Uid"].split()[0] in uids:
            left.append(status.parent.name)
    return left


def test_unusable_values_are_refused_one_by_one(tmp_path: Path) -> None:
    frame, results = run(SUBMISSIONS / "values", [make_task(n=14)], tmp_path, n=14)
    # the submission returns, in order: 1.5, nan, inf, None, "0.7", tensor(2.5), tensor([1, 2]),
    # True, float32(3), 7, tensor([4.]), 1+1j, -inf, array(0.25); NASLib's evaluator took
    # True and the one-element tensor too (converted, the conversion in the message)
    assert [r["score"] for r in arch_rows(results)] == [
        1.5,
        None,
        None,
        None,
        None,
        2.5,
        None,
        1.0,
        3.0,
        7.0,
        4.0,
        None,
        None,
        0.25,
    ]
    assert statuses(results).count("invalid_score") == 7
    assert frame["status"].iloc[0] == "invalid_score" and frame["kendall_tau"].iloc[0] == 0.0
    messages = [r["message"] for r in arch_rows(results)]
    assert "not finite: nan" in messages[1] and "shape (2,)" in messages[6]
    assert "converted Tensor of shape (1,) to 4.0" in messages[10] and "bool" in messages[7]
    launch = results["tasks"][0]["launches"][0]  # its prints went to stderr, not the protocol
    assert launch["garbage_lines"] == 0 and "must not disturb" in launch["stderr_tail"]


def test_a_few_failing_archs_are_ranked_last(tmp_path: Path) -> None:
    frame, results = run(SUBMISSIONS / "raising", [make_task(n=8)], tmp_path, n=8)
    rows = arch_rows(results)
    assert statuses(results) == ["ok", "error", "ok", "ok", "ok", "error", "ok", "ok"]
    assert (
        rows[1]["message"] == "ValueError: this proxy is undefined here (at proxy.py:10 in score)"
    )
    assert frame["status"].iloc[0] == "ok"  # 2/8 failed: within the 25 % allowed
    ranked = [-1e30 if r["score"] is None else r["score"] for r in rows]
    reference = kendalltau(ranked, [r["accuracy"] for r in rows]).statistic
    assert frame["kendall_tau"].iloc[0] == pytest.approx(reference)
    assert frame["kendall_tau_scored"].iloc[0] == 1.0  # scored ones rank perfectly


@pytest.mark.parametrize(
    ("name", "status", "text"),
    [
        ("init_error", "error", "init failed: RuntimeError: broken constructor"),
        ("preprocess_error", "error", "setup failed: KeyError: 'missing resource'"),
        ("missing_class", "rejected", "must define a class ZeroCostPredictor"),
        ("syntax_error", "rejected", "SyntaxError"),
    ],
)
def test_submissions_that_fail_to_load(tmp_path: Path, name: str, status: str, text: str) -> None:
    if name == "syntax_error":  # written here: a stored one would break the repository's lint
        folder = tmp_path / "syntax_error"
        folder.mkdir()
        (folder / "proxy.py").write_text("def score(model, batch)\n    return 1.0\n")
    else:
        folder = SUBMISSIONS / name
    frame, results = run(folder, [make_task(n=4)], tmp_path / "out", n=4)
    assert frame["status"].iloc[0] == status
    assert text in frame["message"].iloc[0]
    assert statuses(results) == [status] * 4 and frame["launches"].iloc[0] == 1


@pytest.mark.slow
def test_infinite_loop_times_out_and_other_task_is_scored(tmp_path: Path) -> None:
    tasks = [make_task(n=5), make_task("nasbench201", "cifar10", n=5)]
    frame, results = run(
        SUBMISSIONS / "infinite_loop", tasks, tmp_path, n=5, limits=SHORT, batch_size=8
    )
    assert frame["status"].tolist() == ["timeout", "ok"]
    assert statuses(results) == ["ok", "ok", "timeout", "timeout", "timeout"]  # kept: 0, 1
    assert "task time limit (3 s)" in frame["message"].iloc[0]
    assert frame["kendall_tau"].tolist() == [0.0, 1.0]


@pytest.mark.slow
def test_sleep_past_the_limit_times_out(tmp_path: Path) -> None:
    frame, results = run(SUBMISSIONS / "sleeper", [make_task(n=4)], tmp_path, n=4, limits=SHORT)
    assert frame["status"].iloc[0] == "timeout"
    assert statuses(results) == ["ok", "timeout", "timeout", "timeout"]
    assert results["tasks"][0]["launches"][0]["end"] == "killed"
    assert leftover_processes(results) == []


@pytest.mark.slow
def test_arch_timeout_costs_one_architecture_not_the_task(tmp_path: Path) -> None:
    """``zcp evaluate --arch-timeout 2``: each architecture the submission hangs on (those whose
    seed is a multiple of 6: 2 of 8 here) is ``timeout`` and a new worker scores the rest;
    crashes' restart limit (1) does not apply; 2 of 8 failed keeps the task ok."""
    task = make_task(n=8)
    bench = write_benchmark(
        tmp_path / "bench.h5", [BenchmarkTask(task.space, task.task, task.frame, "params")]
    )
    out = tmp_path / "out"
    args = ["evaluate", str(SUBMISSIONS / "slow_arch"), "--benchmark", str(bench), "--n", "8"]
    args += ["--out", str(out), "--task-timeout", "60", "--memory-mb", "3072"]
    result = CliRunner().invoke(cli, [*args, "--arch-timeout", "2"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads((out / "results.json").read_text())["tasks"]
    rows = record["archs"]
    slow = [r["seed"] % 6 == 0 for r in rows]
    assert slow == [False, False, False, True, False, True, False, False]
    assert [r["status"] for r in rows] == ["timeout" if s else "ok" for s in slow]
    assert {r["message"] for r, s in zip(rows, slow, strict=True) if s} == {
        "architecture time limit (2 s) reached"
    }
    assert [launch["end"] for launch in record["launches"]] == ["arch_timeout"] * 2 + ["done"]
    assert record["status"] == "ok" and "2/8 architectures failed (2 timeout)" in record["message"]
    assert record["metrics"]["n_ok"] == 6 and record["metrics"]["kendall_tau"] > 0.5
    assert json.loads((out / "results.json").read_text())["limits"]["arch_timeout"] == 2.0
    bad = CliRunner().invoke(cli, [*args, "--arch-timeout", "-1"])
    assert bad.exit_code == 2 and "arch_timeout must be positive" in bad.output


def test_memory_hog_gets_memory_status(tmp_path: Path) -> None:
    frame, results = run(SUBMISSIONS / "memory_hog", [make_task(n=4)], tmp_path, n=4, limits=SHORT)
    assert statuses(results) == ["ok", "memory", "memory", "memory"]
    messages = [r["message"] for r in arch_rows(results)]
    # 64 GiB: refused at once (RLIMIT_AS, or overcommit on a host with less memory), or, under
    # a memory cgroup on a big host, allowed and then killed at the cap, which ends the task.
    if messages[1].startswith("memory limit"):
        assert results["tasks"][0]["launches"][0]["limit"] == "memory"
    else:
        assert messages[1].startswith("MemoryError") and "can't allocate memory" in messages[2]
    assert frame["status"].iloc[0] == "memory"


def test_process_cap_binds(tmp_path: Path) -> None:
    frame, results = run(SUBMISSIONS / "fork_count", [make_task(n=2)], tmp_path, n=2, limits=SHORT)
    if TREE_CAPPED:  # the cgroup refused a fork: the task ends with status processes
        assert statuses(results) == ["processes"] * 2 and frame["status"].iloc[0] == "processes"
        held = results["tasks"][0]["launches"][0]["containment"]
        assert held["fork_refusals"] >= 1 and held["processes_peak"] <= SHORT.max_processes + 2
    else:  # RLIMIT_NPROC refused a fork; the upload handled it
        forks = arch_rows(results)[0]["score"]
        assert 0 < forks < SHORT.max_processes <= 200  # 200 were attempted
        assert frame["status"].iloc[0] == "ok"
    assert leftover_processes(results) == []  # the sleeping children went with the sandbox


def test_fork_bomb_is_contained(tmp_path: Path) -> None:
    frame, results = run(SUBMISSIONS / "fork_bomb", [make_task(n=3)], tmp_path, n=3, limits=SHORT)
    if TREE_CAPPED:  # the cgroup's process cap ends the task at the first refused fork
        assert statuses(results) == ["processes"] * 3
        assert frame["status"].iloc[0] == "processes"
    else:  # every architecture ran, each bomb fizzled on RLIMIT_NPROC
        assert statuses(results) == ["error"] * 3
        assert all("Resource temporarily unavailable" in r["message"] for r in arch_rows(results))
        assert frame["status"].iloc[0] == "error"
    assert frame["launches"].iloc[0] == 1
    assert leftover_processes(results) == []


@pytest.mark.slow
def test_segfault_crashes_task_after_restarts(tmp_path: Path) -> None:
    frame, results = run(SUBMISSIONS / "segfault", [make_task(n=4)], tmp_path, n=4, limits=SHORT)
    assert statuses(results) == ["crash"] * 4
    rows = arch_rows(results)
    assert "SIGSEGV" in rows[0]["message"] and "restart limit 1" in rows[2]["message"]
    assert frame["status"].iloc[0] == "crash" and frame["launches"].iloc[0] == 2
    assert "Segmentation fault" in results["tasks"][0]["launches"][0]["stderr_tail"]


@pytest.mark.slow
def test_os_exit_in_one_arch_loses_only_that_arch(tmp_path: Path) -> None:
    task = make_task(n=6)
    params = task.frame["val_accuracy"].tolist()
    unique = [p for p in params if params.count(p) == 1]
    victim = unique[0]
    folder = tmp_path / "exit"
    folder.mkdir()
    (folder / "proxy.py").write_text(
        "import os\n\n\ndef score(model, batch):\n"
        "    params = sum(p.numel() for p in model.parameters())\n"
        f"    if params == {int(victim)}:\n        os._exit(3)\n    return params\n"
    )
    frame, results = run(folder, [task], tmp_path / "out", n=6)
    rows = arch_rows(results)
    expected = ["crash" if r["accuracy"] == victim else "ok" for r in rows]
    assert statuses(results) == expected and expected.count("crash") == 1
    crashed = rows[expected.index("crash")]
    assert crashed["message"] == "worker died (exit 3)"
    assert frame["status"].iloc[0] == "ok" and frame["launches"].iloc[0] == 2
    assert frame["kendall_tau_scored"].iloc[0] == 1.0


@needs_bwrap
def test_sandbox_blocks_escapes(tmp_path: Path) -> None:
    """Benchmark file, shared data, results, host files, own files, the cgroup tree and network
    are out of reach; the private /tmp works and vanishes."""
    keys = list(make_task(n=8).frame["arch"])
    table = BenchmarkTask(
        "nasbench201_mini",
        "digits",
        pd.DataFrame({"arch": keys, "val_accuracy": np.arange(8.0)}),
        source="test",
    )
    bench = write_benchmark(tmp_path / "secret_bench.h5", [table])
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    out = tmp_path / "results"
    out.mkdir()
    (out / "results.json").write_text("{}")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    folder = tmp_path / "escape"
    shutil.copytree(SUBMISSIONS / "escape", folder)
    scratch = Path("/tmp/private_scratch.txt")
    assert not scratch.exists()
    (folder / "targets.json").write_text(
        json.dumps(
            {
                "benchmark": str(bench),
                "shared": str(shared_data_dir()),
                "host_dir": str(host_dir),
                "port": server.getsockname()[1],
                "results": str(out / "results.json"),
            }
        )
    )
    _, results = run(folder, str(bench), out, n=8)
    messages = [r["message"] for r in arch_rows(results)]
    assert statuses(results) == ["error"] * 6 + ["ok", "error"]
    assert messages[0].startswith("FileNotFoundError") and str(bench) in messages[0]
    assert messages[1].startswith("FileNotFoundError")
    assert messages[2].startswith("FileNotFoundError") and not any(host_dir.iterdir())
    assert "Read-only file system" in messages[3] and not (folder / "escaped.txt").exists()
    assert "Connection refused" in messages[4] or "unreachable" in messages[4]
    with pytest.raises(TimeoutError):
        server.accept()  # nothing reached the host's loopback
    assert messages[5].startswith("FileNotFoundError")
    assert messages[7].startswith("FileNotFoundError")  # no /sys/fs/cgroup to leave its group
    assert not scratch.exists()  # the sandbox's /tmp was private
    assert bench.is_file() and os.access(bench, os.R_OK)  # it was there, only hidden


def test_worker_drops_root_for_a_fresh_uid(tmp_path: Path) -> None:
    frame, results = run("proxy:params", [make_task(n=2)], tmp_path, n=2)
    worker = results["tasks"][0]["launches"][0]["worker"]
    as_root = os.geteuid() == 0
    assert worker["uid_switched"] == as_root and (worker["uid"] != 0 or not as_root)
    cap = LIMITS.max_processes * (2 if TREE_CAPPED else 1)  # a backstop behind pids.max
    assert worker["nproc"] == cap if as_root else worker["nproc"] > 0
    assert frame["status"].iloc[0] == "ok"


@needs_bwrap
def test_the_sandbox_starts_from_any_spelling_of_the_interpreter(tmp_path: Path) -> None:
    """``../.venv/bin/python`` from a sub-directory, through a symlinked venv: still bwrap (the
    probe ran the path as given inside the sandbox, where only resolved directories exist, and
    fell back to no isolation)."""
    link = tmp_path / "venv-link"
    link.symlink_to(Path(sys.prefix).resolve())
    (tmp_path / "sub").mkdir()
    python = tmp_path / "sub" / ".." / "venv-link" / "bin" / Path(sys.executable).name
    code = "from evaluator import resolve_isolation; print(resolve_isolation('auto').mode)"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [str(python), "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split()[-1:] == ["bwrap"], done.stderr
