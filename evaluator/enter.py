"""Launch trampoline and supervisor: ``python -I -S enter.py SPEC ARGV...`` starts ARGV as a
launch and stays its supervisor until it ends.

Started by the evaluator (``sandbox.WorkerProcess``) in place of the sandbox command, so that
everything of a launch (bwrap, the worker, whatever the submission starts) is born inside its
limits. This script first gives the launch a private writable area (SPEC["area"]): a new mount
namespace, private propagation (nothing reaches the host's mount table), and a tmpfs at the
area's path with a size cap and a file cap (``nr_inodes``), holding ``tmp`` and ``shm`` owned by
the sandbox uid (as non-root it first enters a user namespace mapping only its own uid, needed to
mount). Then it becomes a child subreaper, arranges to receive SIGTERM when the evaluator dies
(exiting at once if it has died already) and forks the launch's first process, which joins the
launch's cgroup(s) (its pid into each ``cgroup.procs`` in SPEC["join"]), changes to SPEC["cwd"],
arranges to be SIGKILLed when this script dies and execs ARGV: nothing of the launch runs
outside its group or area.

The supervisor is why a killed evaluator leaves nothing behind. bwrap's ``--die-with-parent``
has a window: its sandbox process, cloned by the outer bwrap, blocks on an eventfd until the
outer one writes it, and arms its own parent-death signal later still; an outer bwrap killed
between the clone and that write leaves it blocked for ever, in no one's care (bubblewrap
0.8.0, ``bubblewrap.c``: the ``child_wait_fd`` read). Here
every orphan of the tree is re-parented to the supervisor (a subreaper), and on the evaluator's
death, or SIGTERM (the evaluator's way to kill a launch), the supervisor SIGKILLs its whole tree,
in rounds until none of it runs; when the first process ends, it kills whatever of the tree is
left. Either way it then exits as the first process did (its exit code, or killed by its signal:
SIGKILL when the sweep ended it). It holds none of the launch's pipes and stays
outside its cgroup (its few MB and CPU milliseconds are not the launch's).

Failures are written to the inherited file descriptor SPEC["status_fd"] (close-on-exec: the
evaluator reads end-of-file once the exec succeeded) and end the script with ``EXIT_FAILED``.
Imports only the standard library, and little of it (``-I -S``: a few milliseconds).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
SWEEP_ROUNDS = 200
WAITED = {signal.SIGCHLD, signal.SIGTERM}  # what the supervisor waits for
EXIT_FAILED = 125
KILLED = signal.SIGKILL  # the wait status of a process killed by SIGKILL (no core)
AREA_DIRS = ("tmp", "shm")  # the sandbox's /tmp and /dev/shm


def _fail(status_fd: int, message: str) -> None:
    os.write(status_fd, message.encode(errors="replace"))
    os._exit(EXIT_FAILED)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _mount_area(area: dict, libc: ctypes.CDLL) -> None:
    """A private mount namespace with a capped tmpfs at ``area["path"]`` (see module doc)."""
    if os.geteuid() == 0:
        _check(libc.unshare(CLONE_NEWNS), "unshare(mount namespace)")
    else:
        uid, gid = os.geteuid(), os.getegid()
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare(user+mount namespace)")
        maps = {"setgroups": "deny", "uid_map": f"{uid} {uid} 1", "gid_map": f"{gid} {gid} 1"}
        for name, text in maps.items():  # only its own ids exist in the namespace
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    options = f"size={area['bytes']},nr_inodes={area['inodes']},mode=0711"
    path = os.fsencode(area["path"])
    _check(
        libc.mount(b"zcp-area", path, b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()),
        f"mount tmpfs ({options}) at {area['path']}",
    )
    for name in AREA_DIRS:
        inside = os.path.join(area["path"], name)
        os.mkdir(inside, 0o711 if name == "tmp" else 0o700)  # tmp: traversable (see sandbox)
        if area["uid"] is not None:
            os.chown(inside, area["uid"], area["uid"])


def _descendants() -> list[int]:
    """Every live descendant of this process (host pids, from ``/proc``)."""
    me, children = os.getpid(), {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [me]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _reap(first: int, wait: bool = False) -> int | None:
    """Reap every ended child (orphans of the tree included); the wait status of ``first`` if it
    was among them. With ``wait``, block until ``first`` itself has been reaped."""
    found = None
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, status = os.waitpid(-1, 0 if wait and found is None else os.WNOHANG)
            if pid == 0:
                break
            if pid == first:
                found = status
    return found


def _sweep(first: int) -> int | None:
    """SIGKILL the launch's whole tree, in rounds until none of it runs (a fork may race a
    round). As a subreaper this process inherits every orphan of the tree, so nothing of the
    launch can be outside it. Returns the first process's wait status if it was reaped here."""
    found = None
    for _ in range(SWEEP_ROUNDS):
        pids = _descendants()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):  # gone meanwhile
                os.kill(pid, signal.SIGKILL)
        reaped = _reap(first)
        found = reaped if reaped is not None else found
        time.sleep(0.005)
    reaped = _reap(first)
    return reaped if reaped is not None else found


def _end_like(status: int) -> None:
    """Exit as the launch's first process did: its exit code, or killed by its signal."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [number])
        os.kill(os.getpid(), number)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else EXIT_FAILED)


def _supervise(first: int) -> None:
    """Wait (SIGTERM and SIGCHLD blocked, taken with ``sigwaitinfo``: no handler can interleave)
    until the first process ends or SIGTERM comes (the evaluator died or kills the launch);
    sweep whatever of the tree is left, then end like the first process."""
    while True:
        signo = signal.sigwaitinfo(WAITED).si_signo
        status = _reap(first)
        if signo == signal.SIGTERM or status is not None:
            swept = _sweep(first)
            status = status if status is not None else swept
            if status is None:  # swept (so SIGKILLed) before it was reaped
                status = _reap(first, wait=True)
            _end_like(status if status is not None else KILLED)


def _child(
    spec: dict, argv: list[str], status_fd: int, supervisor: int, mask: set, libc: ctypes.CDLL
) -> None:
    """In the launch's first process: join its cgroup(s), die with the supervisor, exec."""
    try:
        for procs in spec["join"]:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
    except OSError as exc:
        _fail(status_fd, f"cannot join the launch's cgroup: {exc}")
    try:
        os.chdir(spec["cwd"])
        _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != supervisor:  # the supervisor died before the line above
            os._exit(EXIT_FAILED)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # an exec keeps the mask
        os.execv(argv[0], argv)
    except OSError as exc:
        _fail(status_fd, f"cannot start {argv[0]}: {exc}")


def main() -> None:
    """Mount, become the launch's supervisor, start it (see module doc)."""
    spec = json.loads(sys.argv[1])
    argv = sys.argv[2:]
    status_fd = int(spec["status_fd"])
    os.set_inheritable(status_fd, False)  # closed by the exec: end-of-file means success
    libc = ctypes.CDLL(None, use_errno=True)
    if spec["area"] is not None:
        try:
            _mount_area(spec["area"], libc)
        except OSError as exc:
            _fail(status_fd, f"cannot mount the launch's private area: {exc}")
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)  # taken by sigwaitinfo only
        _check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
        _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != spec["parent"]:  # the evaluator died before the line above
            os._exit(EXIT_FAILED)
        supervisor = os.getpid()
        first = os.fork()
    except OSError as exc:
        _fail(status_fd, f"cannot start the launch: {exc}")
    if first == 0:
        _child(spec, argv, status_fd, supervisor, mask, libc)
    os.close(status_fd)  # the child's copy alone tells the evaluator about the exec
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the launch's pipes end when the launch does, not this process
        os.dup2(null, fd)
    _supervise(first)


if __name__ == "__main__":
    main()
