"""Sandbox and limits of the worker process (the only process that runs submitted code).

Evaluator side: ``resolve_isolation`` picks bubblewrap (``bwrap``) or the loudly reported
fallback ``none``, and the containment of the upload's whole process tree (``Containment``: a
cgroup v2/v1 per launch, a private size- and file-capped tmpfs), each with its own loud fallback;
``launch`` starts ``python -m evaluator.worker`` in its own session through the trampoline
``evaluator.enter`` (which mounts the launch's private area, joins its cgroup before exec and
supervises its tree, killing all of it when the evaluator dies),
inside a bwrap sandbox (read-only system, only the Python install, ``zcproxies`` and
``evaluator`` visible, the submission and job read-only, the private area as /tmp and /dev/shm,
no network, own PID namespace, dies with the evaluator) and with a clean environment (CUDA
hidden, thread counts bounded). ``WorkerProcess`` streams its protocol lines with deadlines,
watches the launch's limits (cgroup event counters, the area's fill, CPU time) and kills the
whole tree on a limit; ``limit_hit`` then says which limit ended the launch.

Worker side: ``confine`` is the worker's first act, before any submitted code is imported:
resource limits (those the cgroup or the tmpfs do not enforce for the whole tree, plus no core
dumps and a CPU-time backstop), ``no_new_privs``, and, when started as root, a switch to an
unprivileged per-launch uid so that ``RLIMIT_NPROC`` binds (it never binds uid 0) and the
fallback can kill every process of that uid.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import queue
import resource
import secrets
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from evaluator import cgroups
from evaluator.protocol import MAX_LINE, TreeUsage

# Per-launch sandbox uids are drawn from this range (no real account uses it on common systems),
# so that a launch's process count and its clean-up kill concern that launch only.
UID_BASE = 1_900_000_000
UID_SPAN = 100_000_000
# Where the job, the submission and the private tmp appear inside the bwrap sandbox.
SANDBOX_JOB = "/zcp/job"
SANDBOX_SUBMISSION = "/zcp/submission"
SANDBOX_TMP = "/tmp"
# System directories mounted read-only inside the sandbox (when present on the host).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
STDERR_TAIL = 1 << 14  # bytes of the worker's stderr kept for reports
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "BLIS_NUM_THREADS",
)
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
MAX_QUEUED = 10_000  # protocol lines waiting to be read; beyond, a flooding worker's are dropped
CONTAINMENT_REQUESTS = ("auto", "require", "off")
CONTAINED_VAR = "ZCP_CONTAINED"  # tells confine() which limits hold for the whole tree already
ENTER = Path(__file__).resolve().parent / "enter.py"  # the launch trampoline
BWRAP_PROCESSES = 2  # bwrap's own processes in a launch's group (outer bwrap, its PID-1 reaper)
AREA_INODES = 3  # inodes of the private area itself: its root, tmp and shm
POLL_SECONDS = 0.25  # how often a running launch's limits are checked (and at every line)
CPU_TOLERANCE = 1.0  # s of CPU over the budget before a launch ends with status cpu
SWEEP_WAIT = 2.0  # s a launch's supervisor gets to kill its tree before the backstops


class SandboxUnavailable(RuntimeError):
    """bwrap was required (``isolation="bwrap"``) but cannot run here."""


@dataclass(frozen=True)
class Limits:
    """Resource and time limits of one evaluation (every value is recorded in results.json)."""

    task_timeout: float = 900.0  # s of submission time per task (worker start-up excluded)
    total_timeout: float = 7200.0  # s wall-clock for the whole run, start-ups included
    startup_timeout: float = 120.0  # s for one worker's own start (Python + torch import)
    memory_mb: int = 4096  # memory of the whole process tree (cgroup); fallback: RLIMIT_AS
    threads: int = 1  # torch intra-/inter-op and OMP/MKL/BLAS threads; the tree's CPU budget
    max_processes: int = 64  # processes + threads of the tree (pids.max); fallback: RLIMIT_NPROC
    disk_mb: int = 512  # the private tmpfs (/tmp and /dev/shm); fallback: RLIMIT_FSIZE per file
    max_files: int = 10_000  # files and directories in the private tmpfs (nr_inodes)
    max_restarts: int = 2  # worker restarts per task after a crash inside an architecture
    # s for one architecture (model building included); None: only the task's limit. A worker
    # past it is killed and restarted on the rest, that architecture ``timeout``.
    arch_timeout: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None and name == "arch_timeout":
                continue
            if value < (0 if name == "max_restarts" else 1e-9):
                raise ValueError(f"limit {name} must be positive, got {value}")

    def to_dict(self) -> dict[str, Any]:
        """The limits as a plain dict (the job file and results.json carry it)."""
        return asdict(self)


@dataclass(frozen=True)
class Containment:
    """What holds the upload's whole process tree: a cgroup per launch and a private tmpfs."""

    cgroup: str  # "v2" | "v1" | "none"
    cgroup_detail: str  # where launch groups are made, or why none are
    tmpfs: bool  # /tmp and /dev/shm are a private tmpfs with a size and a file cap
    tmpfs_detail: str
    hierarchy: cgroups.Hierarchy | None = field(default=None, compare=False, repr=False)

    @property
    def contained(self) -> tuple[str, ...]:
        """The limits enforced on the whole tree (the worker skips their per-process rlimits)."""
        return (("memory", "processes") if self.hierarchy else ()) + (
            ("disk",) if self.tmpfs else ()
        )

    def applied(self) -> dict[str, str]:
        """Per limit, the mechanism enforcing it (recorded with every result)."""
        tree = f"cgroup {self.cgroup}, whole tree"
        has = self.hierarchy.controllers if self.hierarchy else ()
        cpu_accounted = self.cgroup == "v2" or "cpuacct" in has
        return {
            "memory": f"{tree}: memory cap incl. shared memory and tmpfs; {self.hierarchy.swap}"
            if self.hierarchy
            else "RLIMIT_AS per process (virtual memory)",
            "processes": f"{tree}: pids.max" if has else "RLIMIT_NPROC of the sandbox uid",
            "cpus": f"{tree}: cpuset of the slot"
            if "cpuset" in has
            else "CPU affinity of the slot (the upload can widen it)",
            "cpu_time": f"{tree}: CPU seconds <= threads x task time; RLIMIT_CPU per process"
            if cpu_accounted
            else "RLIMIT_CPU per process",
            "disk": "private tmpfs for /tmp and /dev/shm: size cap (charged as memory too)"
            if self.tmpfs
            else "host directory; RLIMIT_FSIZE per file",
            "files": "private tmpfs: nr_inodes" if self.tmpfs else "not limited",
            "time": "wall clock of the runner",
        }

    def to_dict(self) -> dict[str, Any]:
        """For results.json and the store."""
        return {
            "cgroup": self.cgroup,
            "cgroup_detail": self.cgroup_detail,
            "tmpfs": self.tmpfs,
            "tmpfs_detail": self.tmpfs_detail,
            "limits_applied": self.applied(),
        }


NOT_PROBED = Containment("none", "not probed", False, "not probed")


@dataclass(frozen=True)
class Isolation:
    """How workers are isolated: ``bwrap`` or ``none`` (fallback), why, and their containment."""

    mode: str  # "bwrap" | "none"
    detail: str  # bwrap's version, or why the fallback is in use
    containment: Containment = NOT_PROBED

    def to_dict(self) -> dict[str, Any]:
        """For results.json."""
        return {"mode": self.mode, "detail": self.detail, "containment": self.containment.to_dict()}


@dataclass(frozen=True)
class Mounts:
    """Host paths one worker launch needs, and host paths it must never see."""

    job_dir: Path  # job.json and batch.pt (read-only)
    tmp_dir: Path  # the launch's private writable area (its tmpfs is mounted here)
    submission_dir: Path | None  # the prepared submission (read-only); None for built-ins
    hidden: tuple[Path, ...] = ()  # benchmark files, data, results: masked if under a mount


# ---- evaluator side ------------------------------------------------------------------------------
def resolve_isolation(requested: str = "auto", containment: str = "auto") -> Isolation:
    """``bwrap`` when it works here (probed once per process), else the ``none`` fallback; with
    the containment that works here (probed once per process and request).

    ``requested``: ``auto`` (fallback allowed), ``bwrap`` (``SandboxUnavailable`` without it) or
    ``none`` (no sandbox, e.g. to debug a submission). ``containment``: ``auto`` (cgroup and
    private tmpfs where they work, loud fallback to per-process rlimits), ``require``
    (``SandboxUnavailable`` without both) or ``off`` (rlimits only, e.g. to measure the cost).
    """
    if requested not in ("auto", "bwrap", "none"):
        raise ValueError(f"isolation must be auto, bwrap or none, got {requested!r}")
    if containment not in CONTAINMENT_REQUESTS:
        raise ValueError(f"containment must be auto, require or off, got {containment!r}")
    if requested == "none":
        found = Isolation("none", "bwrap not used (isolation='none' requested)")
    else:
        found = _probe_bwrap()
    if requested == "bwrap" and found.mode != "bwrap":
        raise SandboxUnavailable(f"bubblewrap sandbox required but unavailable: {found.detail}")
    held = _probe_containment(containment)
    if containment == "require" and (held.cgroup == "none" or not held.tmpfs):
        missing = [held.cgroup_detail] if held.cgroup == "none" else []
        missing += [] if held.tmpfs else [held.tmpfs_detail]
        raise SandboxUnavailable(f"containment required but unavailable: {'; '.join(missing)}")
    return replace(found, containment=held)


@functools.cache
def _probe_containment(requested: str) -> Containment:
    """Try a launch group and a private area for real, through the trampoline (see module doc)."""
    if requested == "off":
        return Containment("none", "cgroups not used (off requested)", False, "off requested")
    hierarchy = cgroups.probe()
    if isinstance(hierarchy, str):
        cgroup, cgroup_detail = "none", hierarchy
        hierarchy = None
    else:
        cgroup, cgroup_detail = hierarchy.version, hierarchy.detail
        try:
            _probe_group(hierarchy)
        except (cgroups.CgroupError, SandboxUnavailable, OSError) as exc:
            cgroup, cgroup_detail, hierarchy = "none", f"{cgroup_detail}: {exc}", None
    with tempfile.TemporaryDirectory(prefix="zcp-area-probe-") as tmp:
        area = {"path": tmp, "bytes": 1 << 20, "inodes": 16, "uid": None}
        try:
            _start_contained(_probe_argv("pass"), _clean_env(1, "/"), "/", [], area).wait()
            tmpfs, tmpfs_detail = True, "private tmpfs per launch (mount namespace)"
        except (SandboxUnavailable, OSError) as exc:
            tmpfs, tmpfs_detail = False, str(exc)
    return Containment(cgroup, cgroup_detail, tmpfs, tmpfs_detail, hierarchy)


def _probe_argv(code: str) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", code]


def _probe_group(hierarchy: cgroups.Hierarchy) -> None:
    """Start a process into a fresh launch group; fail unless the kernel shows it there."""
    group = hierarchy.create(cgroups.GroupLimits(256 << 20, 16, _affinity()))
    try:
        argv = _probe_argv("print(open('/proc/self/cgroup').read())")
        proc = _start_contained(
            argv, _clean_env(1, "/"), "/", group.join_files(), None, stdout=subprocess.PIPE
        )
        seen = proc.communicate(timeout=60)[0].decode(errors="replace")
        if group.name not in seen:
            raise SandboxUnavailable(f"a process that joined {group.name} is not in it: {seen!r}")
    finally:
        group.kill()
        group.remove()


def _affinity() -> frozenset[int]:
    """The CPUs this thread may run on (a batch slot's, or the evaluator's)."""
    return frozenset(os.sched_getaffinity(0))


@functools.cache
def _probe_bwrap() -> Isolation:
    """Run the interpreter once inside the real sandbox layout to see whether bwrap works."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Isolation("none", "bwrap (bubblewrap) not found on PATH")
    argv = [*_bwrap_args(bwrap, None), *_python_argv(), "-c", "pass"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=60, env=_clean_env(1, "/"))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Isolation("none", f"bwrap failed to start: {exc}")
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()[-300:]
        return Isolation("none", f"bwrap does not work here (exit {done.returncode}): {reason}")
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout
    return Isolation("bwrap", version.strip() or "bwrap")


def warn_no_isolation(isolation: Isolation) -> None:
    """The loud stderr warnings printed whenever submitted code runs without the sandbox, or
    without the containment of its whole process tree."""
    bar = "!" * 78
    held = isolation.containment
    if isolation.mode == "none":
        print(
            f"{bar}\nWARNING: zcp evaluator runs submissions WITHOUT filesystem/network "
            f"isolation\n  ({isolation.detail}).\n  Resource limits still apply, but the "
            f"code can read any file this user can read\n  (benchmark accuracies included) "
            f"and use the network. Install bubblewrap (bwrap)\n  for a sandboxed run; "
            f'results record isolation: "none".\n{bar}',
            file=sys.stderr,
            flush=True,
        )
    if held.cgroup == "none" or not held.tmpfs:
        lacks = [f"no cgroup ({held.cgroup_detail})"] if held.cgroup == "none" else []
        lacks += [] if held.tmpfs else [f"no private tmpfs ({held.tmpfs_detail})"]
        print(
            f"{bar}\nWARNING: zcp evaluator limits submissions PER PROCESS only:\n  "
            + "\n  ".join(lacks)
            + "\n  An upload's children together may exceed the memory and process caps"
            + (", and its\n  files go to the host disk" if not held.tmpfs else "")
            + ". Run as root (or in a delegated cgroup v2\n  subtree) for whole-tree limits; "
            "results record the containment level.\n"
            f"{bar}",
            file=sys.stderr,
            flush=True,
        )


def sandbox_uid() -> int | None:
    """A fresh unprivileged uid for one launch when the evaluator runs as root, else None."""
    if os.geteuid() != 0:
        return None
    return UID_BASE + secrets.randbelow(UID_SPAN)


def worker_paths(isolation: Isolation, mounts: Mounts) -> dict[str, str]:
    """The job dir, submission dir and tmp dir as the worker sees them."""
    if isolation.mode == "bwrap":
        sub = SANDBOX_SUBMISSION if mounts.submission_dir is not None else ""
        return {"job": SANDBOX_JOB, "submission": sub, "tmp": SANDBOX_TMP}
    tmp = mounts.tmp_dir / "tmp" if isolation.containment.tmpfs else mounts.tmp_dir
    return {
        "job": str(mounts.job_dir),
        "tmp": str(tmp),
        "submission": str(mounts.submission_dir or ""),
    }


def _package_roots() -> list[Path]:
    """Directories of the ``zcproxies`` and ``evaluator`` packages (the code the worker runs)."""
    import zcproxies  # light: the evaluator has imported it already

    return [Path(zcproxies.__file__).resolve().parent, Path(__file__).resolve().parent]


def _python_dirs() -> list[Path]:
    """Directories the interpreter needs: its installation, the venv, site-packages."""
    dirs = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
    }
    for entry in sys.path:  # the user's own site-packages are off in the worker (-s)
        if ("site-packages" in entry or "dist-packages" in entry) and entry != site.USER_SITE:
            dirs.add(Path(entry))
    return sorted({d.resolve() for d in dirs if d.is_dir()})


def _python_argv() -> list[str]:
    """The interpreter with user site-packages off and no script directory on sys.path. Named
    by its resolved directory (``../.venv/bin/python`` from a sub-directory, a venv reached
    through a symlink): the sandbox binds resolved directories only. The file itself is not
    resolved: a venv's ``python`` is a link to the base interpreter, and it finds its venv
    through the path it was started by."""
    executable = Path(sys.executable)
    return [str(executable.parent.resolve() / executable.name), "-s", "-P"]


def _outermost(paths: list[Path]) -> list[Path]:
    """``paths`` without those inside another of them (one bind covers its subtree)."""
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


def _bwrap_args(bwrap: str, mounts: Mounts | None, tmpfs: bool = False) -> list[str]:
    """The bwrap command line up to (not including) the command it runs; with ``tmpfs``, the
    private area mounted at ``mounts.tmp_dir`` provides /tmp and /dev/shm."""
    args = [
        bwrap,
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    if os.geteuid() == 0:  # keep only what the worker needs to switch to its uid
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    mounted = []  # every directory tree the sandbox sees
    for sysdir in SYSTEM_DIRS:
        if os.path.islink(sysdir):
            args += ["--symlink", os.readlink(sysdir), sysdir]
        elif os.path.isdir(sysdir):
            args += ["--ro-bind", sysdir, sysdir]
            mounted.append(Path(sysdir))
    created = {Path("/")}
    if mounts is not None:
        # The private /tmp first: code that lives under /tmp (a clone in /tmp, a venv there) is
        # bound on top of it below instead of being hidden by it.
        if tmpfs:
            args += ["--bind", str(mounts.tmp_dir / "tmp"), SANDBOX_TMP]
            args += ["--bind", str(mounts.tmp_dir / "shm"), "/dev/shm"]
        else:
            args += ["--bind", str(mounts.tmp_dir), SANDBOX_TMP]
        created.add(Path(SANDBOX_TMP))
    binds = [
        p
        for p in _outermost(_python_dirs() + _package_roots())
        if not any(p.is_relative_to(s) for s in map(Path, SYSTEM_DIRS))
    ]
    for path in binds:
        # Parents bwrap would create itself get mode 0700, which the sandbox uid cannot enter.
        for parent in reversed(path.parents):
            if parent not in created:
                args += ["--dir", str(parent)]
                created.add(parent)
        args += ["--ro-bind", str(path), str(path)]
    mounted += binds
    if mounts is not None:
        args += ["--dir", "/zcp", "--ro-bind", str(mounts.job_dir), SANDBOX_JOB]
        if mounts.submission_dir is not None:
            args += ["--ro-bind", str(mounts.submission_dir), SANDBOX_SUBMISSION]
        for path in mounts.hidden:  # anything secret that happens to lie under a mount
            path = path.resolve()
            if any(path.is_relative_to(m) for m in mounted) and path.exists():
                args += (
                    ["--tmpfs", str(path)]
                    if path.is_dir()
                    else ["--ro-bind", "/dev/null", str(path)]
                )
    return [*args, "--chdir", "/"]  # the worker enters its tmp after switching uid


def _clean_env(threads: int, tmp: str) -> dict[str, str]:
    """The worker's whole environment: nothing of the evaluator's is passed on."""
    roots = {str(root.parent) for root in _package_roots()}
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": tmp,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(sorted(roots)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "MPLBACKEND": "Agg",
    }
    env.update(dict.fromkeys(THREAD_VARS, str(threads)))
    return env


def launch(
    isolation: Isolation, mounts: Mounts, limits: Limits, uid: int | None, budget: float
) -> WorkerProcess:
    """Start ``python -m evaluator.worker <job dir>`` under ``isolation`` (see module doc), in
    a fresh cgroup and private area where its containment has them. ``budget``: the task's
    remaining seconds (the launch's CPU budget is ``threads`` x ``budget``)."""
    paths = worker_paths(isolation, mounts)
    python = [*_python_argv(), "-m", "evaluator.worker", paths["job"]]
    held = isolation.containment
    env = _clean_env(limits.threads, paths["tmp"])
    env[CONTAINED_VAR] = ",".join(held.contained)
    bwrap = isolation.mode == "bwrap"
    if bwrap:
        argv = [*_bwrap_args(shutil.which("bwrap") or "bwrap", mounts, held.tmpfs), "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        argv += python
        cwd = "/"
    else:
        argv, cwd = python, paths["tmp"]
    group = None
    if held.hierarchy is not None:
        group = held.hierarchy.create(
            cgroups.GroupLimits(
                memory_bytes=limits.memory_mb << 20,
                max_pids=limits.max_processes + (BWRAP_PROCESSES if bwrap else 0),
                cpus=_affinity(),
            )
        )
    area = None
    if held.tmpfs:
        area = {
            "path": str(mounts.tmp_dir),
            "bytes": limits.disk_mb << 20,
            "inodes": limits.max_files + AREA_INODES,
            "uid": uid,
        }
    try:
        return WorkerProcess(argv, env, cwd, None if bwrap else uid, group, area, limits, budget)
    except BaseException:
        if group is not None:
            group.kill()
            group.remove()
        raise


def _start_contained(
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    join: list[str],
    area: dict[str, Any] | None,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Popen ``argv`` through the trampoline ``evaluator.enter`` (joining ``join``, mounting
    ``area``, supervising the tree so that it dies with the evaluator); returns once ``argv``
    was exec'd, inside its limits. A failure of the trampoline raises ``SandboxUnavailable``
    (the machinery's fault, not the upload's)."""
    read_fd, write_fd = os.pipe()  # close-on-exec: only the trampoline inherits write_fd
    spec = {"join": join, "area": area, "cwd": cwd, "status_fd": write_fd, "parent": os.getpid()}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(ENTER), json.dumps(spec), *argv],
            env=env,
            cwd="/",
            pass_fds=(write_fd,),
            **popen,
        )
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as status:
        failure = status.read(4096)  # end-of-file: the exec happened
    if failure:
        proc.kill()
        proc.wait()
        raise SandboxUnavailable(f"launch trampoline: {failure.decode(errors='replace')}")
    return proc


class WorkerProcess:
    """A running worker: its protocol lines (stdout), a tail of its stderr, the limits of its
    whole tree (a cgroup, the private area, a CPU budget) and a hard kill."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        kill_uid: int | None,
        group: cgroups.LaunchGroup | None,
        area: dict[str, Any] | None,
        limits: Limits,
        budget: float,
    ):
        self.kill_uid = kill_uid  # fallback clean-up: every process of this uid is killed
        self.group = group
        self.limits = limits
        self.cpu_budget = self.limits.threads * budget  # CPU seconds after the first line
        self.started_at = time.monotonic()
        self.proc = _start_contained(
            argv,
            env,
            cwd,
            group.join_files() if group is not None else [],
            area,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.area_fd = _open_area(self.proc.pid, area) if area is not None else None
        self._cpu_at_start: float | None = None  # CPU time of the tree at its first line
        self._hit: tuple[str, str] | None = None
        self._disk_peak = (0, 0)  # bytes and files seen in the area at the checks
        self._final: TreeUsage | None = None
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: deque[bytes] = deque()
        self._stderr_size = 0
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        partial = False  # inside a line longer than MAX_LINE: drop it to its end
        while True:
            line = self.proc.stdout.readline(MAX_LINE)
            if not line:
                break
            if not partial and line.endswith(b"\n") and self.lines.qsize() < MAX_QUEUED:
                self.lines.put(line)
            partial = not line.endswith(b"\n")
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(4096):
            self._stderr.append(chunk)
            self._stderr_size += len(chunk)
            while self._stderr_size - len(self._stderr[0]) >= STDERR_TAIL:
                self._stderr_size -= len(self._stderr.popleft())

    def next_line(self, deadline: float) -> bytes | None:
        """The next protocol line; None at end of stream; ``TimeoutError`` at ``deadline``.

        The launch's limits are checked at every line and every ``POLL_SECONDS``: once one is
        hit, the whole tree is killed and None returned (the line that showed it is dropped:
        its architecture counts as stopped by the limit); ``limit_hit`` then says which.
        """
        while self._hit is None:
            wait = min(deadline - time.monotonic(), POLL_SECONDS)
            try:
                line = self.lines.get(timeout=max(0.0, wait))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise TimeoutError from None
                self._check()
                continue
            if self._cpu_at_start is None and self.group is not None:
                self._cpu_at_start = self.group.cpu_seconds()
            self._check()
            if self._hit is None or line is None:
                return line
        self._kill_tree()
        return None

    def _check(self) -> None:
        """Record the first limit the launch has hit (see ``limit_hit``)."""
        if self._hit is not None:
            return
        limits = self.limits
        if self.group is not None:
            status = self.group.limit_hit()
            version = self.group.version
            if status == "memory":
                self._hit = (
                    "memory",
                    f"memory limit ({limits.memory_mb} MiB for the whole process tree) "
                    f"exceeded: the kernel killed a process (cgroup {version})",
                )
            elif status == "processes":
                self._hit = (
                    "processes",
                    f"process limit ({limits.max_processes} processes and threads) reached: "
                    f"a fork was refused (cgroup {version})",
                )
            cpu = self.group.cpu_seconds()
            if self._hit is None and cpu is not None and self._cpu_at_start is not None:
                used = cpu - self._cpu_at_start
                if used > self.cpu_budget + CPU_TOLERANCE:
                    self._hit = (
                        "cpu",
                        f"CPU time limit exceeded: {used:.1f} s of CPU, budget "
                        f"{self.cpu_budget:.1f} s ({limits.threads} CPU(s) x the task time)",
                    )
        if self.area_fd is not None:
            stats = os.statvfs(self.area_fd)
            used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
            files = stats.f_files - stats.f_ffree - AREA_INODES
            self._disk_peak = (max(self._disk_peak[0], used), max(self._disk_peak[1], files))
            if self._hit is None and (stats.f_bavail == 0 or stats.f_favail == 0):
                self._hit = (
                    "disk",
                    f"disk limit reached: /tmp and /dev/shm hold {used / 2**20:.0f} of "
                    f"{limits.disk_mb} MiB and {files} of {limits.max_files} files",
                )

    def limit_hit(self) -> tuple[str, str] | None:
        """(status, message) of the limit of the whole tree that ended the launch, or None;
        final once the worker was reaped (``wait``/``kill``)."""
        return self._hit

    def containment(self) -> TreeUsage:
        """What the launch's tree used, as measured by its cgroup and area (after it ended)."""
        return self._final or TreeUsage()

    def stderr_tail(self) -> str:
        """The last ``STDERR_TAIL`` bytes the worker wrote to stderr (after it ended)."""
        for reader in self._readers:
            reader.join(timeout=2)
        return b"".join(self._stderr).decode(errors="replace")[-STDERR_TAIL:]

    def _kill_tree(self) -> None:
        """SIGKILL everything of the launch: its supervisor sweeps its tree (orphans included);
        its process group, its cgroup and its uid are killed too, as backstops."""
        self.proc.send_signal(signal.SIGTERM)  # a no-op once the supervisor was reaped
        try:
            self.proc.wait(timeout=SWEEP_WAIT)
        except subprocess.TimeoutExpired:  # (once reaped, its pid may be another's already)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.group is not None:
            self.group.kill()
        if self.kill_uid is not None:
            kill_all_of_uid(self.kill_uid)

    def kill(self) -> int:
        """Kill the worker's whole tree (process group, sandbox, cgroup), reap it, take the final
        measures and release the cgroup and the private area: its exit code.

        Under the fallback with a sandbox uid, every process of that uid is killed too (children
        that left the process group with ``setsid``); bwrap's PID namespace and the cgroup do
        that themselves.
        """
        if self._final is None:
            self._check()  # a last look while the counters and the area still exist
            self._kill_tree()
            self.proc.wait()
            usage = self.group.usage() if self.group is not None else TreeUsage()
            if self.area_fd is not None:
                usage = replace(
                    usage,
                    tmpfs=True,
                    disk_peak_mb=self._disk_peak[0] / 2**20,
                    files_peak=self._disk_peak[1],
                )
            self._final = usage
            if self.area_fd is not None:
                os.close(self.area_fd)  # the last reference: the tmpfs is freed
            if self.group is not None:
                self.group.remove()
        return self.proc.wait()

    def wait(self, deadline: float) -> int:
        """Wait for a worker that said it is done; killed at ``deadline``. Its exit code."""
        try:
            code = self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = self.kill()
        self.kill()  # stray children of a finished worker
        return code


def _open_area(pid: int, area: dict[str, Any]) -> int | None:
    """A reference to the launch's private tmpfs, seen through the trampoline's mount namespace;
    it keeps the tmpfs measurable after the launch ended (None if the launch is gone already)."""
    try:
        fd = os.open(f"/proc/{pid}/root{area['path']}", os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return None
    if os.fstat(fd).st_dev == os.stat(area["path"]).st_dev:  # not the tmpfs: never mounted
        os.close(fd)
        return None
    return fd


def kill_all_of_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a forked child switches to it and kills -1)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def prepare_tmp(path: Path, uid: int | None) -> Path:
    """Create the worker's private writable directory, owned by its sandbox uid if any.

    Mode 0711: only the owner lists or writes it, but the sandbox's capability-less root can
    still traverse it to reach code bound underneath (a clone or venv that lives in /tmp).
    """
    path.mkdir(mode=0o700)
    path.chmod(0o711)
    if uid is not None:
        os.chown(path, uid, uid)
    return path


# ---- worker side ---------------------------------------------------------------------------------
def confine(limits: dict[str, Any], uid: int | None) -> dict[str, Any]:
    """Apply the limits to this process, then drop root for ``uid``: what was applied.

    Called by the worker before it imports any submitted code; the limits are inherited by
    every process the submission starts. Limits the launch's cgroup or private tmpfs enforce on
    the whole tree (``CONTAINED_VAR``) get no per-process rlimit (``RLIMIT_AS`` would count
    virtual memory, which torch alone reserves 1.3 GiB of) or, for the process count, a
    backstop at twice the cap that the cgroup reaches first.
    """
    mb = 1 << 20
    contained = set(filter(None, os.environ.pop(CONTAINED_VAR, "").split(",")))
    cpu = int(limits["task_timeout"] * max(1, limits["threads"]) + 30)  # backstop to the clock
    _set_limit(resource.RLIMIT_CORE, 0)
    if "memory" not in contained:
        _set_limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * mb)
    if "disk" not in contained:
        _set_limit(resource.RLIMIT_FSIZE, int(limits["disk_mb"]) * mb)
    _set_limit(resource.RLIMIT_CPU, cpu)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    switched = False
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        switched = True
    # Die with the evaluator even without bwrap (set after the uid switch, which clears it).
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # A fresh uid owns nothing yet; otherwise the cap comes on top of what the uid already runs
    # (counted in this PID namespace, which is the sandbox's own under bwrap).
    cap = int(limits["max_processes"]) * (2 if "processes" in contained else 1)
    nproc = cap + (0 if switched else _tasks_of_uid(os.getuid()))
    _set_limit(resource.RLIMIT_NPROC, nproc)
    applied: dict[str, Any] = {  # the ``started`` event's info: flat scalars
        "uid": os.getuid(),
        "uid_switched": switched,
        "nproc": nproc,
        "contained": ",".join(sorted(contained)),
        "cpu_limit_seconds": cpu,  # RLIMIT_CPU per process (the backstop)
    }
    if "memory" not in contained:
        applied["address_space_mb"] = limits["memory_mb"]
    if "disk" not in contained:
        applied["file_size_mb"] = limits["disk_mb"]
    return applied


def _set_limit(which: int, value: int) -> None:
    """Lower soft and hard limit to ``value`` (never above an existing hard limit)."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _tasks_of_uid(uid: int) -> int:
    """Threads of all visible processes whose real uid is ``uid`` (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1)
                for line in Path(entry.path, "status").read_text().splitlines()
                if ":" in line
            )
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
    return count
