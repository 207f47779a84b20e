"""Control groups of worker launches: one interface over cgroup v2 and cgroup v1.

Every worker launch gets a fresh group (``Hierarchy.create``) that holds the upload's whole
process tree: a memory cap (page cache, shared memory, memfd and tmpfs pages included; swap off
or counted), a cap on processes and threads, the CPU set of its slot (``sched_setaffinity`` from
inside cannot widen it) and CPU-time accounting. The sandbox's trampoline (``evaluator.enter``)
joins the group before anything of the launch runs; ``LaunchGroup`` then answers which limit the
kernel enforced (out-of-memory kills, refused forks), the peaks, and kills and removes the group.

``probe`` finds a usable hierarchy once per process: cgroup v2 where the memory and pids
controllers can be delegated to children, else cgroup v1 where those hierarchies are writable,
else none (the reason is kept for the loud fallback warning). Launch groups are created below
the evaluator's own group, so that limits set above it (a systemd service, a container) still
hold; on v2 see ``_v2_parent`` for where that is impossible.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from evaluator.protocol import TreeUsage

REQUIRED = ("memory", "pids")  # without both, cgroups are not used at all
V1_OPTIONAL = ("cpuset", "cpuacct")
V2_OPTIONAL = ("cpuset",)  # CPU time: cpu.stat exists in every v2 group, no controller needed
PREFIX = "zcp-"  # launch groups: zcp-<evaluator pid>-<n>
KILL_ROUNDS = 200  # SIGKILL sweeps over a v1 group (forks race the sweep; pids.max bounds them)
_counter = itertools.count(1)


class CgroupError(RuntimeError):
    """A launch group could not be created or configured."""


@dataclass(frozen=True)
class GroupLimits:
    """What one launch group enforces."""

    memory_bytes: int  # memory of the whole tree (swap included where it is counted)
    max_pids: int  # processes and threads of the whole tree
    cpus: frozenset[int]  # the CPU set (intersected with what the parent allows)


def _read(path: Path) -> str:
    return path.read_text().strip()


def _write(path: Path, value: str) -> None:
    """One ``write`` (cgroup files act on each write call)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _keyed(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (``memory.events``, ``pids.events``, ``memory.oom_control``)."""
    try:
        pairs = (line.split() for line in path.read_text().splitlines())
        return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}
    except OSError:
        return {}


def _number(path: Path) -> int | None:
    """An integer cgroup file, or None where the file does not exist (older kernels)."""
    try:
        return int(_read(path))
    except (OSError, ValueError):
        return None


def _cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _parse_cpu_list(text: str) -> frozenset[int]:
    """``0-3,8`` -> {0, 1, 2, 3, 8}."""
    cpus: set[int] = set()
    for part in filter(None, text.strip().split(",")):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return frozenset(cpus)


def _pids(path: Path) -> list[int]:
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


class LaunchGroup:
    """One launch's group; ``dirs`` maps each controller to its directory (one dir on v2)."""

    version = ""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs
        self.name = next(iter(dirs.values())).name

    @property
    def unique_dirs(self) -> list[Path]:
        """Each directory once (v1 hierarchies may co-mount controllers)."""
        return list(dict.fromkeys(self.dirs.values()))

    def join_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid to, to enter the group."""
        return [str(d / "cgroup.procs") for d in self.unique_dirs]

    def cpu_seconds(self) -> float | None:
        """CPU time of the whole tree so far (user + system)."""
        raise NotImplementedError

    def usage(self) -> TreeUsage:
        """Peaks and event counters so far (the area's fields are the launch's to fill)."""
        raise NotImplementedError

    def limit_hit(self) -> str | None:
        """``memory`` after an out-of-memory kill, ``processes`` after a refused fork, else None."""
        usage = self.usage()
        if usage.oom_kills:
            return "memory"
        if usage.fork_refusals:
            return "processes"
        return None

    def _procs(self) -> list[int]:
        return _pids(self.unique_dirs[0] / "cgroup.procs")

    def kill(self) -> None:
        """SIGKILL every process of the group until it is empty (or gives up after sweeps)."""
        for _ in range(KILL_ROUNDS):
            pids = self._procs()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def remove(self, timeout: float = 2.0) -> bool:
        """Remove the (killed) group; False if the kernel still holds it after ``timeout``."""
        end = time.monotonic() + timeout
        for path in reversed(self.unique_dirs):
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:  # EBUSY while exiting processes are torn down
                    if exc.errno != errno.EBUSY or time.monotonic() > end:
                        return False
                    self.kill()
                    time.sleep(0.01)
        return True


class _V1Group(LaunchGroup):
    version = "v1"

    def cpu_seconds(self) -> float | None:
        if "cpuacct" not in self.dirs:
            return None
        ns = _number(self.dirs["cpuacct"] / "cpuacct.usage")
        return None if ns is None else ns / 1e9

    def usage(self) -> TreeUsage:
        memory, pids = self.dirs["memory"], self.dirs["pids"]
        swap = memory / "memory.memsw.max_usage_in_bytes"
        peak = _number(swap if swap.exists() else memory / "memory.max_usage_in_bytes")
        return TreeUsage(
            cgroup=self.version,
            memory_peak_mb=None if peak is None else peak / 2**20,
            cpu_seconds=self.cpu_seconds(),
            processes_peak=_number(pids / "pids.peak"),
            oom_kills=_keyed(memory / "memory.oom_control").get("oom_kill", 0),
            fork_refusals=_keyed(pids / "pids.events").get("max", 0),
        )


class _V2Group(LaunchGroup):
    version = "v2"

    @property
    def path(self) -> Path:
        return self.dirs["memory"]

    def cpu_seconds(self) -> float | None:
        usec = _keyed(self.path / "cpu.stat").get("usage_usec")
        return None if usec is None else usec / 1e6

    def usage(self) -> TreeUsage:
        peak = _number(self.path / "memory.peak")  # Linux 5.19+
        return TreeUsage(
            cgroup=self.version,
            memory_peak_mb=None if peak is None else peak / 2**20,
            cpu_seconds=self.cpu_seconds(),
            processes_peak=_number(self.path / "pids.peak"),  # Linux 6.11+
            oom_kills=_keyed(self.path / "memory.events").get("oom_kill", 0),
            fork_refusals=_keyed(self.path / "pids.events").get("max", 0),
        )

    def kill(self) -> None:
        kill_file = self.path / "cgroup.kill"  # Linux 5.14+: atomic, forks cannot race it
        if kill_file.exists():
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
        super().kill()


@dataclass(frozen=True)
class Hierarchy:
    """Where launch groups are created: per controller, the parent directory."""

    version: str  # "v2" | "v1"
    parents: dict[str, Path]
    detail: str  # where, for the record

    @property
    def controllers(self) -> tuple[str, ...]:
        """The controllers a launch group gets (``memory`` and ``pids`` always)."""
        return tuple(self.parents)

    @property
    def swap(self) -> str:
        """How swap is held to the memory cap (recorded with the containment level)."""
        memory = self.parents["memory"]
        if self.version == "v1" and (memory / "memory.memsw.limit_in_bytes").exists():
            return "swap counted in the cap (memory.memsw)"
        if self.version == "v2" and (memory / "memory.swap.max").exists():
            return "no swap (memory.swap.max = 0)"
        swaps = Path("/proc/swaps").read_text().splitlines()[1:]
        return "no swap on this host" if not swaps else "swap NOT limited (no swap accounting)"

    def create(self, limits: GroupLimits) -> LaunchGroup:
        """A fresh, configured, empty group (``CgroupError`` when the kernel refuses)."""
        name = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        dirs = {c: p / name for c, p in self.parents.items()}
        group = (_V2Group if self.version == "v2" else _V1Group)(dirs)
        try:
            for path in group.unique_dirs:
                path.mkdir()
            (self._configure_v2 if self.version == "v2" else self._configure_v1)(group, limits)
        except OSError as exc:
            group.remove(timeout=0)
            raise CgroupError(f"cannot set up cgroup {name} ({self.version}): {exc}") from exc
        return group

    def _configure_v1(self, group: LaunchGroup, limits: GroupLimits) -> None:
        memory = group.dirs["memory"]
        _write(memory / "memory.limit_in_bytes", str(limits.memory_bytes))
        memsw = memory / "memory.memsw.limit_in_bytes"  # present where swap is accounted
        if memsw.exists():
            _write(memsw, str(limits.memory_bytes))  # memory + swap <= the cap: no swap beyond
        _write(group.dirs["pids"] / "pids.max", str(limits.max_pids))
        if "cpuset" in group.dirs:
            parent = self.parents["cpuset"]
            allowed = _parse_cpu_list(_read(parent / "cpuset.effective_cpus"))
            cpuset = group.dirs["cpuset"]
            _write(cpuset / "cpuset.cpus", _cpu_list(limits.cpus & allowed or allowed))
            _write(cpuset / "cpuset.mems", _read(parent / "cpuset.effective_mems"))

    def _configure_v2(self, group: LaunchGroup, limits: GroupLimits) -> None:
        path = next(iter(group.dirs.values()))
        _write(path / "memory.max", str(limits.memory_bytes))
        if (path / "memory.swap.max").exists():
            _write(path / "memory.swap.max", "0")
        _write(path / "memory.oom.group", "1")  # an OOM kill takes the whole tree at once
        _write(path / "pids.max", str(limits.max_pids))
        if "cpuset" in self.parents:
            allowed = _parse_cpu_list(_read(path.parent / "cpuset.cpus.effective"))
            _write(path / "cpuset.cpus", _cpu_list(limits.cpus & allowed or allowed))

    def clean_stale(self) -> None:
        """Kill and remove launch groups left by evaluators that died (``kill -9``)."""
        for parent in dict.fromkeys(self.parents.values()):
            for child in parent.glob(f"{PREFIX}*-*"):
                owner = child.name[len(PREFIX) :].split("-")[0]
                if owner.isdigit() and int(owner) != os.getpid() and not _alive(int(owner)):
                    stale = (_V2Group if self.version == "v2" else _V1Group)({"memory": child})
                    stale.kill()
                    stale.remove(timeout=0.5)


# ---- finding a hierarchy -------------------------------------------------------------------------
def _mounts() -> list[tuple[str, Path, str, set[str]]]:
    """(filesystem type, mount point, mounted root, super options) of every cgroup mount."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            point = fields[4].replace("\\040", " ")
            found.append((tail[0], Path(point), fields[3], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup per v1 controller, and under the key ``""`` its v2 group."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            own[name] = path
    return own


def _located(point: Path, root: str, path: str) -> Path | None:
    """The directory of cgroup ``path`` under a mount of cgroup ``root`` at ``point``."""
    try:
        relative = Path(path).relative_to(root)
    except ValueError:
        return None
    return point / relative


def _enable(group: Path, controllers: list[str]) -> list[str]:
    """Delegate ``controllers`` to the children of ``group`` (v2 ``cgroup.subtree_control``),
    one by one: those delegated. Raises if a required one cannot be."""
    enabled = set(_read(group / "cgroup.subtree_control").split())
    for controller in controllers:
        if controller in enabled:
            continue
        try:
            _write(group / "cgroup.subtree_control", f"+{controller}")
            enabled.add(controller)
        except OSError:
            if controller in REQUIRED:
                raise
    return [c for c in controllers if c in enabled]


def _v2_parent(own: Path, top: Path, controllers: list[str]) -> tuple[Path, str, list[str]]:
    """Where v2 launch groups go, why, and the controllers they get. A v2 group holding
    processes cannot delegate controllers (the "no internal processes" rule), so, in order: the
    evaluator's own group if it delegates them already or can (it is the root); its own group
    after moving the evaluator into a leaf of it, when the evaluator is its only process (e.g.
    ``systemd-run --scope -p Delegate=yes``); else, as root, a ``zcp`` group at the top of the
    hierarchy (launch groups are then outside limits set on the evaluator's own group, which is
    recorded)."""
    errors = []
    with contextlib.suppress(OSError):
        return own, f"below the evaluator's group {own}", _enable(own, controllers)
    if set(_pids(own / "cgroup.procs")) == {os.getpid()}:
        try:
            leaf = own / f"{PREFIX}evaluator-{os.getpid()}"
            leaf.mkdir(exist_ok=True)
            _write(leaf / "cgroup.procs", str(os.getpid()))
            where = f"below the evaluator's group {own} (the evaluator moved to {leaf.name})"
            return own, where, _enable(own, controllers)
        except OSError as exc:
            errors.append(f"moving the evaluator into a leaf of {own}: {exc}")
    else:
        errors.append(f"{own} holds other processes")
    try:
        parent = top / "zcp"
        delegated = _enable(top, controllers)
        parent.mkdir(exist_ok=True)
        where = f"at {parent} (outside the evaluator's group {own}, which holds processes)"
        return parent, where, _enable(parent, delegated)
    except OSError as exc:
        errors.append(f"{top / 'zcp'}: {exc}")
    raise CgroupError("; ".join(errors))


def _probe_v2(mounts: list[tuple[str, Path, str, set[str]]], own: dict[str, str]) -> Hierarchy:
    mount = next((m for m in mounts if m[0] == "cgroup2"), None)
    if mount is None or "" not in own:
        raise CgroupError("no cgroup2 mount")
    _, point, root, _ = mount
    group = _located(point, root, own[""])
    if group is None:
        raise CgroupError(f"this process's v2 group {own['']} is not under the mount {point}")
    available = set(_read(group / "cgroup.controllers").split())
    missing = [c for c in REQUIRED if c not in available]
    if missing:
        raise CgroupError(
            f"cgroup v2 at {point}: controller(s) {', '.join(missing)} not available to "
            f"{group} (bound to cgroup v1, or not delegated)"
        )
    wanted = [c for c in (*REQUIRED, *V2_OPTIONAL) if c in available]
    parent, where, delegated = _v2_parent(group, point, wanted)
    return Hierarchy("v2", dict.fromkeys(delegated, parent), f"cgroup v2 {where}")


def _probe_v1(mounts: list[tuple[str, Path, str, set[str]]], own: dict[str, str]) -> Hierarchy:
    parents: dict[str, Path] = {}
    for controller in (*REQUIRED, *V1_OPTIONAL):
        mount = next((m for m in mounts if m[0] == "cgroup" and controller in m[3]), None)
        if mount is None or controller not in own:
            continue
        _, point, root, _ = mount
        parent = _located(point, root, own[controller])
        if parent is not None and os.access(parent, os.W_OK):
            parents[controller] = parent
    missing = [c for c in REQUIRED if c not in parents]
    if missing:
        raise CgroupError(f"cgroup v1 hierarchy of {', '.join(missing)} missing or not writable")
    where = ", ".join(f"{c} {p}" for c, p in parents.items())
    return Hierarchy("v1", parents, f"cgroup v1 below the evaluator's groups ({where})")


@functools.cache
def probe() -> Hierarchy | str:
    """The hierarchy launch groups are made in (v2 preferred), or why none can be used."""
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError as exc:
        return f"cannot read this process's cgroups: {exc}"
    reasons = []
    for version, finder in (("v2", _probe_v2), ("v1", _probe_v1)):
        try:
            hierarchy = finder(mounts, own)
        except (CgroupError, OSError) as exc:
            reasons.append(f"{version}: {exc}")
            continue
        hierarchy.clean_stale()
        return hierarchy
    return "; ".join(reasons)
