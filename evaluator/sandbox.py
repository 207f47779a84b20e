"""Sandbox and limits of the worker process (the only process that runs submitted code).

Evaluator side: ``resolve_isolation`` picks bubblewrap (``bwrap``) or the loudly reported
fallback ``none``; ``launch`` starts ``python -m evaluator.worker`` in its own session, inside a
bwrap sandbox (read-only system, only the Python install, ``zcproxies`` and ``evaluator`` visible,
the submission and job read-only, a private writable /tmp, no network, own PID namespace, dies
with the evaluator) and with a clean environment (CUDA hidden, thread counts bounded).
``WorkerProcess`` streams its protocol lines with deadlines and kills the whole process group
(and so the sandbox's PID namespace) on a limit.

Worker side: ``confine`` is the worker's first act, before any submitted code is imported:
resource limits (address space, no core dumps, file size, CPU time backstop, process count),
``no_new_privs``, and, when started as root, a switch to an unprivileged per-launch uid so that
``RLIMIT_NPROC`` binds (it never binds uid 0) and the fallback can kill every process of that uid.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import queue
import resource
import secrets
import shutil
import signal
import site
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
MAX_LINE = 1 << 16  # longest protocol line read (bytes); longer lines are discarded
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


class SandboxUnavailable(RuntimeError):
    """bwrap was required (``isolation="bwrap"``) but cannot run here."""


@dataclass(frozen=True)
class Limits:
    """Resource and time limits of one evaluation (every value is recorded in results.json)."""

    task_timeout: float = 900.0  # s of submission time per task (worker start-up excluded)
    total_timeout: float = 7200.0  # s wall-clock for the whole run, start-ups included
    startup_timeout: float = 120.0  # s for one worker's own start (Python + torch import)
    memory_mb: int = 4096  # address-space cap (RLIMIT_AS) of the worker, virtual memory
    threads: int = 1  # torch intra-/inter-op and OMP/MKL/BLAS threads
    max_processes: int = 64  # processes + threads of the sandbox uid (RLIMIT_NPROC)
    file_size_mb: int = 64  # largest file the worker may write (RLIMIT_FSIZE)
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
class Isolation:
    """How workers are isolated: ``bwrap`` or ``none`` (fallback), and why."""

    mode: str  # "bwrap" | "none"
    detail: str  # bwrap's version, or why the fallback is in use

    def to_dict(self) -> dict[str, str]:
        """For results.json."""
        return {"mode": self.mode, "detail": self.detail}


@dataclass(frozen=True)
class Mounts:
    """Host paths one worker launch needs, and host paths it must never see."""

    job_dir: Path  # job.json and batch.pt (read-only)
    tmp_dir: Path  # private writable directory (the worker's /tmp)
    submission_dir: Path | None  # the prepared submission (read-only); None for built-ins
    hidden: tuple[Path, ...] = ()  # benchmark files, data, results: masked if under a mount


# ---- evaluator side ------------------------------------------------------------------------------
def resolve_isolation(requested: str = "auto") -> Isolation:
    """``bwrap`` when it works here (probed once per process), else the ``none`` fallback.

    ``requested``: ``auto`` (fallback allowed), ``bwrap`` (``SandboxUnavailable`` without it) or
    ``none`` (no sandbox, e.g. to debug a submission).
    """
    if requested not in ("auto", "bwrap", "none"):
        raise ValueError(f"isolation must be auto, bwrap or none, got {requested!r}")
    if requested == "none":
        return Isolation("none", "bwrap not used (isolation='none' requested)")
    found = _probe_bwrap()
    if requested == "bwrap" and found.mode != "bwrap":
        raise SandboxUnavailable(f"bubblewrap sandbox required but unavailable: {found.detail}")
    return found


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
    """The loud stderr warning printed whenever submitted code runs without the sandbox."""
    if isolation.mode == "none":
        bar = "!" * 78
        print(
            f"{bar}\nWARNING: zcp evaluator runs submissions WITHOUT filesystem/network "
            f"isolation\n  ({isolation.detail}).\n  Resource limits still apply, but the "
            f"code can read any file this user can read\n  (benchmark accuracies included) "
            f"and use the network. Install bubblewrap (bwrap)\n  for a sandboxed run; "
            f'results record isolation: "none".\n{bar}',
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
    return {
        "job": str(mounts.job_dir),
        "tmp": str(mounts.tmp_dir),
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
    """The interpreter with user site-packages off and no script directory on sys.path."""
    return [sys.executable, "-s", "-P"]


def _outermost(paths: list[Path]) -> list[Path]:
    """``paths`` without those inside another of them (one bind covers its subtree)."""
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


def _bwrap_args(bwrap: str, mounts: Mounts | None) -> list[str]:
    """The bwrap command line up to (not including) the command it runs."""
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


def launch(isolation: Isolation, mounts: Mounts, limits: Limits, uid: int | None) -> WorkerProcess:
    """Start ``python -m evaluator.worker <job dir>`` under ``isolation`` (see module doc)."""
    paths = worker_paths(isolation, mounts)
    python = [*_python_argv(), "-m", "evaluator.worker", paths["job"]]
    env = _clean_env(limits.threads, paths["tmp"])
    if isolation.mode == "bwrap":
        argv = [*_bwrap_args(shutil.which("bwrap") or "bwrap", mounts), "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        argv += python
        cwd = "/"
    else:
        argv, cwd = python, str(mounts.tmp_dir)
    return WorkerProcess(argv, env, cwd, uid if isolation.mode == "none" else None)


class WorkerProcess:
    """A running worker: its protocol lines (stdout), a tail of its stderr, and a hard kill."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, kill_uid: int | None):
        self.kill_uid = kill_uid  # fallback clean-up: every process of this uid is killed
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
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
        """The next protocol line; None at end of stream; ``TimeoutError`` at ``deadline``."""
        try:
            return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError from None

    def stderr_tail(self) -> str:
        """The last ``STDERR_TAIL`` bytes the worker wrote to stderr (after it ended)."""
        for reader in self._readers:
            reader.join(timeout=2)
        return b"".join(self._stderr).decode(errors="replace")[-STDERR_TAIL:]

    def kill(self) -> int:
        """Kill the worker's whole process group (and its sandbox), then reap it: its exit code.

        Under the fallback with a sandbox uid, every process of that uid is killed too (children
        that left the process group with ``setsid``); bwrap's PID namespace does that itself.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.kill_uid is not None:
            kill_all_of_uid(self.kill_uid)
        return self.proc.wait()

    def wait(self, deadline: float) -> int:
        """Wait for a worker that said it is done; killed at ``deadline``. Its exit code."""
        try:
            code = self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = self.kill()
        self.kill()  # stray children of a finished worker
        return code


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
    every process the submission starts.
    """
    mb = 1 << 20
    cpu = int(limits["task_timeout"] * max(1, limits["threads"]) + 30)  # backstop to the clock
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * mb)
    _set_limit(resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * mb)
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
    nproc = int(limits["max_processes"]) + (0 if switched else _tasks_of_uid(os.getuid()))
    _set_limit(resource.RLIMIT_NPROC, nproc)
    return {
        "uid": os.getuid(),
        "uid_switched": switched,
        "nproc": nproc,
        "memory_mb": limits["memory_mb"],
        "cpu_seconds": cpu,
    }


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
