"""Launch trampoline: ``python -I -S enter.py SPEC ARGV...`` enters the launch, then execs ARGV.

Started by the evaluator (``sandbox.WorkerProcess``) in place of the sandbox command, so that
everything of a launch (bwrap, the worker, whatever the submission starts) is born inside its
limits; nothing of the launch runs before this script has:

1. joined the launch's cgroup(s): its own pid into each ``cgroup.procs`` in SPEC["join"];
2. given the launch a private writable area (SPEC["area"]): a new mount namespace, private
   propagation (nothing reaches the host's mount table), and a tmpfs at the area's path with a
   size cap and a file cap (``nr_inodes``), holding ``tmp`` and ``shm`` owned by the sandbox
   uid. As non-root it first enters a user namespace mapping only its own uid (needed to mount).

Then it changes to SPEC["cwd"], arranges to be SIGKILLed when the evaluator dies (exiting at
once if it has died already: a batch killed while this script runs leaves nothing behind, as
bwrap's own ``--die-with-parent`` only starts after the exec) and execs ARGV. Failures are
written to the inherited file descriptor SPEC["status_fd"] (close-on-exec: the evaluator reads
end-of-file once the exec succeeded) and end the script with ``EXIT_FAILED``. Imports only the
standard library, and little of it (``-I -S``: a few milliseconds).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_PDEATHSIG = 1
EXIT_FAILED = 125
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


def main() -> None:
    """Join, mount, exec (see module doc)."""
    spec = json.loads(sys.argv[1])
    argv = sys.argv[2:]
    status_fd = int(spec["status_fd"])
    os.set_inheritable(status_fd, False)  # closed by the exec: end-of-file means success
    try:
        for procs in spec["join"]:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
    except OSError as exc:
        _fail(status_fd, f"cannot join the launch's cgroup: {exc}")
    if spec["area"] is not None:
        try:
            _mount_area(spec["area"], ctypes.CDLL(None, use_errno=True))
        except OSError as exc:
            _fail(status_fd, f"cannot mount the launch's private area: {exc}")
    try:
        os.chdir(spec["cwd"])
        libc = ctypes.CDLL(None, use_errno=True)
        _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != spec["parent"]:  # the evaluator died before the line above
            os._exit(EXIT_FAILED)
        os.execv(argv[0], argv)
    except OSError as exc:
        _fail(status_fd, f"cannot start {argv[0]}: {exc}")


if __name__ == "__main__":
    main()
