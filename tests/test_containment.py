"""Containment of an upload's whole process tree: real hostile uploads against the launch's
cgroup (memory, processes, CPU set, CPU time) and its private tmpfs (/tmp and /dev/shm).

Each case is a real upload under ``tests/submissions/`` with its precise expected status; the
batch case runs them all beside a clean upload, whose results must equal a clean run, and
checks that the host is untouched (no file left, no disk growth, no cgroup or process left).
Caps are small (options) so that the file stays quick. Where no cgroup or private tmpfs can
be used here, the file is skipped, except with ``ZCP_REQUIRE_SANDBOX=1`` (CI), where every test
runs with ``containment="require"`` and fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_batch import alive, by_upload, native, rows, table
from test_evaluator import LIMITS, REQUIRE_SANDBOX, SUBMISSIONS, arch_rows, make_task, run

from evaluator import Limits, cgroups, resolve_isolation
from evaluator.sandbox import ENTER, WorkerProcess, _start_contained
from zcproxies.benchdata import write_benchmark
from zcproxies.cli import main as zcp

REQUIRED = os.environ.get(REQUIRE_SANDBOX) == "1"
HELD = resolve_isolation("auto").containment
CONTAINED = HELD.cgroup != "none" and HELD.tmpfs
REQUEST = "require" if REQUIRED else "auto"  # required: a missing cgroup fails, never skips
pytestmark = pytest.mark.skipif(
    not CONTAINED and not REQUIRED,
    reason=f"no cgroup / private tmpfs here ({HELD.cgroup_detail}; {HELD.tmpfs_detail})",
)
CAPS = {"memory_mb": 2048, "max_processes": 32, "disk_mb": 64, "max_files": 1000}
HOSTILE = {  # upload -> the status its unit must get under CAPS
    "fork_memory": "memory",  # five forked children of 1,000 MB each
    "memfd_hog": "memory",  # 40 memfds of 60 MB
    "filler": "disk",  # 1.5 GB into /tmp
    "shm_filler": "disk",  # the same into /dev/shm (the same private area)
    "many_files": "disk",  # 200,000 files
    "fork_bomb": "processes",
    "affinity": "ok",  # widens its CPU affinity: no effect, no status
}
PARAMS = "def score(model, batch):\n    return sum(p.numel() for p in model.parameters())\n"
LIMIT_FIELDS = ("memory_peak_mb", "processes_peak", "disk_peak_mb", "files_peak", "cpu_seconds")


def own_groups() -> list[Path]:
    """Launch groups of this process still present in the hierarchy (none may outlive a run)."""
    hierarchy = cgroups.probe()
    if isinstance(hierarchy, str):
        return []
    parents = dict.fromkeys(hierarchy.parents.values())
    return [g for p in parents for g in p.glob(f"{cgroups.PREFIX}{os.getpid()}-*")]


def disk_used(path: Path) -> int:
    usage = shutil.disk_usage(path)
    return usage.total - usage.free


class DiskWatch:
    """Samples the host disk's use (every 0.1 s) while a run goes on: the largest growth."""

    def __init__(self, path: Path) -> None:
        self.path, self.base, self.peak = path, disk_used(path), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, disk_used(self.path) - self.base)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``zcp batch`` over every hostile upload and a clean one, 2 workers, the caps of CAPS;
    and a batch of the clean upload alone. Host temp files go to a private directory."""
    root = tmp_path_factory.mktemp("hostile")
    bench = write_benchmark(root / "bench.h5", [table("nasbench201_mini", "digits", 4)])
    uploads, alone = root / "uploads", root / "alone"
    for name in HOSTILE:
        shutil.copytree(SUBMISSIONS / name.replace("shm_", ""), uploads / name)
    (uploads / "shm_filler" / "target.txt").write_text("/dev/shm\n")
    native(uploads / "clean", PARAMS)
    native(alone / "clean", PARAMS)
    host_tmp = root / "host_tmp"
    host_tmp.mkdir()
    shm_before = set(os.listdir("/dev/shm"))
    common = ["--benchmark", str(bench), "--n", "4", "--workers", "2", "--no-progress"]
    common += ["--task-timeout", "60", "--containment", REQUEST]
    caps = [f"--{k.replace('_', '-')}={v}" for k, v in CAPS.items()]
    saved, tempfile.tempdir = tempfile.tempdir, str(host_tmp)  # the evaluator's run dirs
    try:
        with DiskWatch(root) as watch:
            done = CliRunner().invoke(
                zcp, ["batch", str(uploads), "--out", str(root / "out"), *common, *caps]
            )
        baseline = CliRunner().invoke(
            zcp, ["batch", str(alone), "--out", str(root / "alone_out"), *common, *caps]
        )
    finally:
        tempfile.tempdir = saved
    assert done.exit_code == 0, done.output
    assert baseline.exit_code == 0, baseline.output
    return {
        "units": {u: unit for (u, _), unit in by_upload(rows(root / "out")).items()},
        "alone": by_upload(rows(root / "alone_out"))[("clean", "nasbench201_mini/digits")],
        "disk_growth": watch.peak,
        "host_tmp": sorted(os.listdir(host_tmp)),
        "new_shm": sorted(set(os.listdir("/dev/shm")) - shm_before),  # anyone's, on this host
        "groups_left": own_groups(),
    }


@pytest.mark.slow
@pytest.mark.parametrize("upload", sorted(HOSTILE))
def test_each_hostile_upload_gets_its_status(hostile_batch: dict, upload: str) -> None:
    unit = hostile_batch["units"][upload]
    assert unit["status"] == HOSTILE[upload], unit["message"]
    (launch,) = unit["launches_detail"]  # a limit ends the task: no restart
    held = launch["containment"]
    assert held["cgroup"] in ("v1", "v2") and held["tmpfs"] is True
    assert launch["limit"] == (None if HOSTILE[upload] == "ok" else HOSTILE[upload])
    assert launch["end"] == ("done" if HOSTILE[upload] == "ok" else "limit")
    first = unit["archs"][0]
    if upload not in ("fork_bomb", "affinity"):  # they act from their first call; the others
        assert (first["status"], first["score"]) == ("ok", 1.0)  # on their second
    # Kernel-enforced caps: never exceeded, whatever the upload did.
    assert held["memory_peak_mb"] <= CAPS["memory_mb"]
    assert held["processes_peak"] is None or held["processes_peak"] <= CAPS["max_processes"] + 2
    assert held["disk_peak_mb"] <= CAPS["disk_mb"] and held["files_peak"] <= CAPS["max_files"]
    assert held["cpu_seconds"] > 0
    if HOSTILE[upload] == "memory":
        assert held["oom_kills"] >= 1 and "whole process tree" in unit["message"]
    if HOSTILE[upload] == "processes":
        assert held["fork_refusals"] >= 1
    if upload == "many_files":
        assert held["files_peak"] == CAPS["max_files"]
    if upload in ("filler", "shm_filler"):
        assert held["disk_peak_mb"] == CAPS["disk_mb"]


@pytest.mark.slow
def test_cpu_set_cannot_be_widened_from_inside(hostile_batch: dict) -> None:
    unit = hostile_batch["units"]["affinity"]
    slot = sum(1 << cpu for cpu in unit["environment"]["cpus"])  # the slot's single CPU
    allowed, seen = (
        [a["score"] for a in unit["archs"][::2]],
        [a["score"] for a in unit["archs"][1::2]],
    )
    assert allowed == [slot] * len(allowed)  # sched_setaffinity(all CPUs) left only the slot
    assert all(int(mask) & ~slot == 0 for mask in seen)  # and it ran nowhere else


@pytest.mark.slow
def test_host_and_other_uploads_are_untouched(hostile_batch: dict) -> None:
    units = hostile_batch["units"]
    assert sorted(units) == sorted([*HOSTILE, "clean"])  # every unit recorded
    clean, alone = units["clean"], hostile_batch["alone"]
    assert clean["status"] == "ok" and clean["kendall_tau"] == 1.0
    assert clean["kendall_tau"] == alone["kendall_tau"]
    assert [a["score"] for a in clean["archs"]] == [a["score"] for a in alone["archs"]]
    assert hostile_batch["host_tmp"] == []  # every run directory removed, nothing else written
    assert not [n for n in hostile_batch["new_shm"] if n.startswith("fill-")]  # the upload's
    assert hostile_batch["disk_growth"] < 500 << 20  # 4.5 GB were attempted; none hit the disk
    assert hostile_batch["groups_left"] == []  # every launch group (so every process) is gone
    level = clean["environment"]["isolation"]["containment"]
    assert level["cgroup"] in ("v1", "v2") and level["tmpfs"] is True
    assert "whole tree" in level["limits_applied"]["memory"]


@pytest.mark.slow
def test_shared_memory_pages_count_as_memory(tmp_path: Path) -> None:
    """/dev/shm (the private tmpfs, also /tmp) larger than the memory cap fills memory first:
    its pages are charged to the launch's cgroup."""
    upload = shutil.copytree(SUBMISSIONS / "filler", tmp_path / "shm_filler")
    (upload / "target.txt").write_text("/dev/shm\n")
    limits = Limits(task_timeout=60, memory_mb=768, disk_mb=1536, max_restarts=1)
    frame, results = run(
        upload,
        [make_task(n=3), make_task("nasbench201", "cifar10", n=3)],
        tmp_path / "out",
        n=3,
        limits=limits,
        containment=REQUEST,
    )
    assert frame["status"].tolist() == ["memory", "memory"]  # each task ends on its own
    for task in (0, 1):  # and each one's first architecture was scored normally
        assert [r["status"] for r in arch_rows(results, task)] == ["ok", "memory", "memory"]
        launch = results["tasks"][task]["launches"][0]
        held = launch["containment"]
        assert launch["limit"] == "memory" and held["memory_peak_mb"] <= 768
        assert 0 < held["disk_peak_mb"] < 768
    assert all(task["metrics"]["cpu_seconds"] > 0 for task in results["tasks"])
    assert results["isolation"]["containment"]["limits_applied"]["disk"].startswith("private")
    assert own_groups() == []


def test_cpu_time_beyond_the_budget_ends_the_launch() -> None:
    """The launch's CPU budget counts every process of its tree (cgroup CPU time): a tree that
    burns more than ``threads`` x its remaining task time is stopped with status ``cpu``."""
    iso = resolve_isolation("none", REQUEST)
    hierarchy = iso.containment.hierarchy
    assert hierarchy is not None
    group = hierarchy.create(cgroups.GroupLimits(512 << 20, 16, frozenset(os.sched_getaffinity(0))))
    burn = "import os; print('started', flush=True); os.fork()\nwhile True: pass"
    argv = [sys.executable, "-I", "-S", "-c", burn]
    proc = WorkerProcess(argv, {"PATH": "/usr/bin"}, "/", None, group, None, Limits(), 0.5)
    deadline = time.monotonic() + 120
    assert proc.next_line(deadline) == b"started\n"
    assert proc.next_line(deadline) is None  # stopped by the limit, not the deadline
    proc.kill()
    status, message = proc.limit_hit()
    assert status == "cpu" and "budget 0.5 s" in message
    assert (proc.containment().cpu_seconds or 0) >= 1.5  # budget + tolerance, both processes
    assert own_groups() == []


def test_trampoline_failure_is_the_machinerys_fault(tmp_path: Path) -> None:
    """A launch that cannot enter its cgroup raises SandboxUnavailable (never an upload status)."""
    from evaluator.sandbox import SandboxUnavailable

    missing = str(tmp_path / "no-such-group" / "cgroup.procs")
    with pytest.raises(SandboxUnavailable, match="cannot join the launch's cgroup"):
        _start_contained([sys.executable, "-c", "pass"], {}, "/", [missing], None)


def test_trampoline_never_outlives_the_evaluator(tmp_path: Path) -> None:
    """A trampoline whose evaluator died before it could exec (its parent is not the pid it was
    given) exits instead of starting the launch: bwrap's ``--die-with-parent`` would come too
    late, and its launch would outlive a killed batch."""
    marker = tmp_path / "ran"

    def trampoline(parent: int) -> int:
        read_fd, write_fd = os.pipe()
        spec = {"join": [], "area": None, "cwd": "/", "status_fd": write_fd, "parent": parent}
        code = f"open({str(marker)!r}, 'w')"
        argv = [sys.executable, "-I", "-S", str(ENTER), json.dumps(spec)]
        try:
            done = subprocess.run([*argv, sys.executable, "-c", code], pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
            os.close(read_fd)
        return done.returncode

    assert trampoline(0) == 125 and not marker.exists()  # not its parent: nothing started
    assert trampoline(os.getpid()) == 0 and marker.exists()  # its parent: the launch starts


def _orphan_maker(pidfile: Path, then: str) -> list[str]:
    """A launch whose first process forks an orphan-to-be (its own session, no parent-death
    signal: like bwrap's PID-1 process before it arms ``--die-with-parent``), then runs ``then``."""
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    open({str(pidfile)!r} + '.part', 'w').write(str(os.getpid()))\n"
        f"    os.rename({str(pidfile)!r} + '.part', {str(pidfile)!r})\n"
        "    time.sleep(120)\n"
        "    os._exit(0)\n"
        f"while not os.path.exists({str(pidfile)!r}): time.sleep(0.01)\n"
        f"{then}\n"
    )
    return [sys.executable, "-I", "-S", "-c", code]


def _dies(pid: int, within: float = 10.0) -> bool:
    until = time.monotonic() + within
    while alive(pid) and time.monotonic() < until:
        time.sleep(0.05)
    return not alive(pid)


def test_a_killed_evaluator_leaves_nothing_of_a_launch(tmp_path: Path) -> None:
    """kill -9 of the evaluator kills every process of its launches, even one that escaped its
    parent's death signal (the supervisor in the trampoline sweeps the tree)."""
    pidfile = tmp_path / "orphan"
    launch = _orphan_maker(pidfile, "time.sleep(120)")
    evaluator_code = (
        "import sys, time\n"
        "from evaluator.sandbox import _start_contained\n"
        f"_start_contained({launch!r}, {{}}, '/', [], None)\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    evaluator = subprocess.Popen(
        [sys.executable, "-c", evaluator_code], stdout=subprocess.PIPE, cwd=root
    )
    try:
        assert evaluator.stdout is not None and evaluator.stdout.readline() == b"started\n"
        until = time.monotonic() + 30
        while not pidfile.exists() and time.monotonic() < until:
            time.sleep(0.02)
        orphan = int(pidfile.read_text())
    finally:
        evaluator.kill()
        evaluator.wait()
    assert _dies(orphan), "a process of the launch outlived the killed evaluator"


def test_a_launch_ends_whole_with_its_first_process(tmp_path: Path) -> None:
    """When the launch's first process exits, the rest of its tree is killed and the launch
    reports the first process's exit code; a killed launch reports SIGKILL."""
    pidfile = tmp_path / "orphan"
    proc = _start_contained(_orphan_maker(pidfile, "os._exit(3)"), {}, "/", [], None)
    assert proc.wait(timeout=30) == 3
    assert _dies(int(pidfile.read_text()))
    pidfile.unlink()
    proc = _start_contained(_orphan_maker(pidfile, "time.sleep(120)"), {}, "/", [], None)
    until = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < until:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # the evaluator's way to kill a launch
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert _dies(int(pidfile.read_text()))


@pytest.mark.slow
def test_results_record_the_containment_level(tmp_path: Path) -> None:
    frame, results = run("proxy:params", [make_task(n=3)], tmp_path, n=3, containment=REQUEST)
    level = results["isolation"]["containment"]
    assert (level["cgroup"], level["tmpfs"]) == (HELD.cgroup, True)
    assert set(level["limits_applied"]) == {
        "memory",
        "processes",
        "cpus",
        "cpu_time",
        "disk",
        "files",
        "time",
    }
    launch = results["tasks"][0]["launches"][0]
    assert all(launch["containment"][f] is not None for f in LIMIT_FIELDS)
    worker = launch["worker"]  # per-process rlimits the cgroup/tmpfs replace are not set
    assert worker["contained"] == "disk,memory,processes"
    assert "address_space_mb" not in worker and "file_size_mb" not in worker
    assert frame["status"].iloc[0] == "ok"
    assert results["tasks"][0]["metrics"]["cpu_seconds"] == launch["containment"]["cpu_seconds"]
    assert json.loads(json.dumps(level)) == level


@pytest.mark.slow
def test_off_falls_back_loudly_and_records_none(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    frame, results = run("proxy:params", [make_task(n=2)], tmp_path, n=2, containment="off")
    assert "limits submissions PER PROCESS only" in capfd.readouterr().err
    level = results["isolation"]["containment"]
    assert (level["cgroup"], level["tmpfs"]) == ("none", False)
    assert level["limits_applied"]["memory"].startswith("RLIMIT_AS")
    worker = results["tasks"][0]["launches"][0]["worker"]
    assert worker["contained"] == "" and worker["address_space_mb"] == LIMITS.memory_mb
    assert worker["file_size_mb"] == LIMITS.disk_mb
    assert frame["status"].iloc[0] == "ok"


def _unified_parent() -> Path | None:
    """This process's group on the cgroup2 mount when we may create children there."""
    mount = next((m for m in cgroups._mounts() if m[0] == "cgroup2"), None)
    if mount is None:
        return None
    parent = cgroups._located(mount[1], mount[2], cgroups._own_paths().get("", "/"))
    return parent if parent is not None and os.access(parent, os.W_OK) else None


@pytest.mark.skipif(_unified_parent() is None, reason="no writable cgroup2 mount here")
def test_v2_group_joins_counts_and_kills_for_real() -> None:
    """The v2 group's own files (no controller needed): joining through the trampoline, CPU
    time from cpu.stat, cgroup.kill and removal, on this host's real cgroup2 mount. (Where v2
    has the memory and pids controllers, every other test here runs on v2 entirely.)"""
    parent = _unified_parent()
    assert parent is not None
    path = parent / f"{cgroups.PREFIX}{os.getpid()}-v2-test"
    path.mkdir()
    group = cgroups._V2Group({"memory": path})
    code = "print(open('/proc/self/cgroup').read().split('0::')[1], flush=True)\nwhile True: pass"
    argv = [sys.executable, "-I", "-S", "-c", code]
    try:
        proc = _start_contained(argv, {}, "/", group.join_files(), None, stdout=subprocess.PIPE)
        assert path.name in proc.stdout.readline().decode()
        time.sleep(0.5)
        assert (group.cpu_seconds() or 0) > 0.05
        group.kill()
        assert proc.wait(timeout=10) == -9
    finally:
        group.kill()
        assert group.remove() and not path.exists()


def test_cpu_lists_and_keyed_files_parse(tmp_path: Path) -> None:
    assert cgroups._parse_cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert cgroups._cpu_list(frozenset({3, 1, 2})) == "1,2,3"
    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n")
    assert cgroups._keyed(events)["oom_kill"] == 1
    assert cgroups._keyed(tmp_path / "missing") == {}
