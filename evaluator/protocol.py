"""The evaluator's one protocol, and the one boundary to the code it evaluates.

Typed definitions shared by every part of the evaluator: the statuses, the job a worker receives
(``Job``), the events a worker sends back (``Started``, ``Ready``, ``LoadError``, ``ArchResult``,
``Done``), the records built from them (``ArchRecord``, ``Launch``, ``TaskMetrics``,
``TaskResult``, ``UnitRecord``) and the metric columns.

The worker runs submitted code, so everything that comes back from it is untrusted: a
submission can write to the protocol's file descriptor itself. ``decode_event`` is the ONE place
where a protocol line becomes a typed event, with bounds checked before and while decoding
(line length, containers, integer digits, numbers, field types and sizes); a line that fails any
check is ``None`` (a garbage line, counted) and never an exception. Text from a submission
(messages, tracebacks, reprs, stderr) is made safe there with ``safe_text`` (lone surrogates,
control and bidirectional-override characters escaped, length capped), so that nothing
downstream (SQLite, JSON, CSV, Markdown, HTML, plots) can fail on it. The output helpers
``csv_cell``, ``md_text`` and ``upload_key``/``display_name`` (upload file names that are not
valid text) live here too.

Only the standard library: the worker imports this module.
"""

from __future__ import annotations

import json
import math
import os
import re
import traceback
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from evaluator.tasks import EvalTask


# ---- statuses ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Status:
    """One outcome status: where it can occur and whether an architecture's own call causes it."""

    name: str
    arch: bool  # an architecture can end with it
    task: bool  # a task (a unit of a batch) can end with it
    own_failure: bool  # produced by an architecture's own call: counted in a task's failure vote


# The order is the tie order of the failure vote (first wins) and the order of summaries.
# Adding a status is one line here (and its rule in ``evaluator.policy``).
STATUSES = (
    Status("ok", arch=True, task=True, own_failure=False),
    Status("crash", arch=True, task=True, own_failure=True),
    Status("memory", arch=True, task=True, own_failure=True),
    Status("error", arch=True, task=True, own_failure=True),
    Status("invalid_score", arch=True, task=True, own_failure=True),
    Status("timeout", arch=True, task=True, own_failure=False),
    Status("processes", arch=True, task=True, own_failure=False),  # the tree's process cap
    Status("disk", arch=True, task=True, own_failure=False),  # the private /tmp, /dev/shm full
    Status("cpu", arch=True, task=True, own_failure=False),  # the tree's CPU-time budget
    Status("rejected", arch=True, task=True, own_failure=False),
    Status("interrupted", arch=True, task=True, own_failure=False),  # Ctrl-C, total time limit
    Status("internal_error", arch=True, task=True, own_failure=False),  # the machinery failed
)
ARCH_STATUSES = tuple(s.name for s in STATUSES if s.arch)
TASK_STATUSES = tuple(s.name for s in STATUSES if s.task)
ARCH_FAILURES = tuple(s.name for s in STATUSES if s.own_failure)
OK = "ok"
INTERRUPTED = "interrupted"
INTERNAL_ERROR = "internal_error"

# ---- bounds --------------------------------------------------------------------------------------
MAX_LINE = 1 << 16  # bytes of one protocol line (the sandbox's reader drops longer ones too)
MAX_CONTAINERS = 16  # JSON objects + arrays in one line (a real event has at most 4)
MAX_INT_DIGITS = 20  # digits of a JSON integer (no 4,300-digit integer is ever converted)
MAX_SECONDS = 1e9
MAX_INDEX = 1 << 31
MAX_SHAPE_DIMS = 64  # torch and numpy allow at most 64 dimensions
MAX_INFO_FIELDS = 32  # entries of a ``started`` event's info
TEXT_LIMIT = 600  # characters of an exception message
TRACE_LIMIT = 1500  # characters of a traceback tail
REPR_LIMIT = 200  # characters of a returned value's repr
NAME_LIMIT = 120  # characters of a type name, dtype, stage, kind or info key
MAX_FRAMES = 5  # submission traceback frames of an exception (the innermost ones)
FRAME_LIMIT = 300  # characters of one frame (``path:line in function``)
STDERR_KEPT = 8000  # characters of a worker's stderr tail kept in reports and the store


class ProtocolError(ValueError):
    """A protocol line or field that is not what the protocol allows."""


# ---- safe text -----------------------------------------------------------------------------------
# Escaped everywhere: C0/C1 controls (but tab and newline in multi-line text), DEL, lone
# surrogates (undecodable bytes), line/paragraph separators and bidirectional overrides.
_UNSAFE_MULTILINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
ELLIPSIS = "..."


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(
    text: str, limit: int | None = None, *, multiline: bool = True, tail: bool = False
) -> str:
    """``text`` safe for every output: unsafe characters escaped (``\\x1b``, ``\\udcff``;
    newline and tab kept when ``multiline``), at most ``limit`` characters (its head, or its
    tail when ``tail``, marked with ``...``)."""
    if not isinstance(text, str):
        text = str(text)
    if limit is not None and len(text) > limit:  # cut first: escaping is then bounded too
        text = ELLIPSIS + text[-limit:] if tail else text[:limit] + ELLIPSIS
    pattern = _UNSAFE_MULTILINE if multiline else _UNSAFE_LINE
    if pattern.search(text):
        text = pattern.sub(_escape, text)
    if limit is not None and len(text) > limit + len(ELLIPSIS):
        text = ELLIPSIS + text[-limit:] if tail else text[:limit] + ELLIPSIS
    return text


FAULT_TRACE = 4000  # characters of the evaluator's own traceback kept for an internal_error


def describe_fault(exc: BaseException) -> tuple[str, str]:
    """(message, traceback tail) of a failure of the evaluator itself (``internal_error``)."""
    trace = "".join(traceback.format_exception(exc))
    message = f"the evaluator failed (not the submission's doing): {type(exc).__name__}: {exc}"
    return safe_text(message, TEXT_LIMIT), safe_text(trace, FAULT_TRACE, tail=True)


# ---- upload names --------------------------------------------------------------------------------
HEX_KEY = "hex:"  # prefix of an upload key that holds a file name's bytes in hex


def upload_key(name: str) -> str:
    """The results store's key of an upload file name (``os.listdir``'s ``str``, undecodable
    bytes as surrogates): the name itself when it is clean text, else ``hex:`` and the name's
    bytes in hex. Injective: every key starting with ``hex:`` is an encoding (a clean name that
    starts with ``hex:`` is encoded too), so two different file names never share a key."""
    if name.startswith(HEX_KEY) or _UNSAFE_LINE.search(name):
        try:
            raw = os.fsencode(name)
        except UnicodeEncodeError:  # a surrogate no file name decodes to (\ud800)
            raw = name.encode("utf-8", "surrogatepass")
        return HEX_KEY + raw.hex()
    return name


def display_name(key: str) -> str:
    """What reports show for an upload key: the name, undecodable bytes as ``\\xff`` escapes."""
    if key.startswith(HEX_KEY):
        try:
            raw = bytes.fromhex(key[len(HEX_KEY) :])
        except ValueError:
            return safe_text(key, multiline=False)
        return safe_text(raw.decode("utf-8", "backslashreplace"), multiline=False)
    return safe_text(key, multiline=False)


# ---- output escaping -----------------------------------------------------------------------------
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # spreadsheet formula injection


def csv_cell(value: Any) -> Any:
    """A CSV cell: text made safe and neutralised (a leading ``'``) when a spreadsheet would
    read it as a formula; numbers unchanged."""
    if not isinstance(value, str):
        return value
    value = safe_text(value)
    return "'" + value if value.startswith(FORMULA_START) else value


_MD_SPECIAL = re.compile(r"([\\`*|<>\[\]])")  # code, emphasis, cells, HTML, links


def md_text(value: Any, limit: int | None = None) -> str:
    """Text for a Markdown line or table cell: one line; backslashes, backticks, asterisks,
    pipes, angle and square brackets backslash-escaped (what could end a cell, open code, a tag
    or a link)."""
    text = " ".join(str(value).splitlines())
    return _MD_SPECIAL.sub(r"\\\1", safe_text(text, limit, multiline=False))


# ---- the job (evaluator -> worker, trusted) ------------------------------------------------------
@dataclass(frozen=True)
class JobArch:
    """One architecture to score: its position in the task's sample, NASLib key and seed."""

    index: int
    arch: str
    seed: int


@dataclass(frozen=True)
class JobPaths:
    """The job dir, submission dir and private tmp dir as the worker sees them."""

    job: str
    submission: str
    tmp: str


@dataclass(frozen=True)
class BatchMeta:
    """Provenance of the task's minibatch (``zcproxies.data.Batch`` fields besides x and y)."""

    dataset: str
    split: str
    seed: int
    source: str
    num_classes: int
    substitute_for: str | None
    note: str


@dataclass(frozen=True)
class Job:
    """``job.json``: everything a worker needs, and no accuracy."""

    form: str  # "native" | "competition" | "builtin"
    entry: str
    space: str
    task: str
    flavor: str  # ``zcproxies.build``'s model flavor: "benchmark" | "naslib"
    loader_images: int  # images after the minibatch (batch.pt's loader_x/y; competition form)
    uid: int | None  # the sandbox uid to switch to (None: keep the uid)
    limits: dict[str, Any]  # ``Limits.to_dict()``
    paths: JobPaths
    batch: BatchMeta
    archs: tuple[JobArch, ...]

    def dumps(self) -> str:
        """The job as JSON text."""
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> Job:
        """A job from ``dumps``'s text."""
        data = json.loads(text)
        return cls(
            **{
                **data,
                "paths": JobPaths(**data["paths"]),
                "batch": BatchMeta(**data["batch"]),
                "archs": tuple(JobArch(**a) for a in data["archs"]),
            }
        )


# ---- events (worker -> evaluator, untrusted) -----------------------------------------------------
class _Fields:
    """Typed, bounded access to the fields of one decoded JSON object."""

    def __init__(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise ProtocolError(f"expected an object, got {type(obj).__name__}")
        self.obj = obj

    def _get(self, key: str) -> Any:
        if key not in self.obj:
            raise ProtocolError(f"missing field {key!r}")
        return self.obj[key]

    def integer(self, key: str, low: int, high: int) -> int:
        value = self._get(key)
        if type(value) is not int or not low <= value < high:
            raise ProtocolError(f"{key}: not an integer in [{low}, {high})")
        return value

    def seconds(self, key: str) -> float:
        value = self._get(key)
        if type(value) not in (int, float) or not 0.0 <= value <= MAX_SECONDS:
            raise ProtocolError(f"{key}: not a duration in seconds")
        return float(value)

    def text(self, key: str, limit: int, *, multiline: bool = False, tail: bool = False) -> str:
        value = self._get(key)
        if type(value) is not str:
            raise ProtocolError(f"{key}: not a string")
        return safe_text(value, limit, multiline=multiline, tail=tail)

    def texts(self, key: str, count: int, limit: int) -> tuple[str, ...]:
        value = self._get(key)
        if type(value) is not list or len(value) > count:
            raise ProtocolError(f"{key}: not a list of at most {count} strings")
        if not all(type(item) is str for item in value):
            raise ProtocolError(f"{key}: not a list of strings")
        return tuple(safe_text(item, limit, multiline=False) for item in value)

    def child(self, key: str) -> _Fields:
        return _Fields(self._get(key))


@dataclass(frozen=True)
class ExceptionInfo:
    """An exception raised by submitted code: type name, message, traceback tail, and the
    traceback's frames in the submission's own files (``path:line in function``, innermost
    last; where a competitor should look)."""

    type: str
    message: str
    traceback: str = ""
    frames: tuple[str, ...] = ()

    @classmethod
    def parse(cls, f: _Fields) -> ExceptionInfo:
        return cls(
            f.text("type", NAME_LIMIT),
            f.text("message", TEXT_LIMIT, multiline=True),
            f.text("traceback", TRACE_LIMIT, multiline=True, tail=True),
            f.texts("frames", MAX_FRAMES, FRAME_LIMIT),
        )


@dataclass(frozen=True)
class ValueInfo:
    """Facts about a value a submission returned as a score (``worker.describe_value``)."""

    kind: str  # bool | int | float | numpy_scalar | tensor | ndarray | none | str | other
    type: str
    number: float | None  # the value when it is one real number (NaN/inf included)
    shape: tuple[int, ...] | None  # of a tensor or array
    dtype: str
    repr: str

    @classmethod
    def parse(cls, f: _Fields) -> ValueInfo:
        number = f._get("number")
        if number is not None:
            if type(number) not in (int, float):
                raise ProtocolError("number: not a number")
            number = float(number)  # at most MAX_INT_DIGITS digits: cannot overflow
        shape = f._get("shape")
        if shape is not None:
            if (
                type(shape) is not list
                or len(shape) > MAX_SHAPE_DIMS
                or not all(type(n) is int and 0 <= n < 1 << 63 for n in shape)
            ):
                raise ProtocolError("shape: not a list of dimensions")
            shape = tuple(shape)
        return cls(
            f.text("kind", NAME_LIMIT),
            f.text("type", NAME_LIMIT),
            number,
            shape,
            f.text("dtype", NAME_LIMIT),
            f.text("repr", REPR_LIMIT),
        )


@dataclass(frozen=True)
class Started:
    """The worker confined itself and is about to load the submission (``info``: pid, uid,
    limits as applied; flat scalars)."""

    NAME: ClassVar[str] = "started"
    info: dict[str, bool | int | float | str]

    @classmethod
    def parse(cls, f: _Fields) -> Started:
        info = f.child("info").obj
        if len(info) > MAX_INFO_FIELDS:
            raise ProtocolError("info: too many fields")
        clean: dict[str, bool | int | float | str] = {}
        for key, value in info.items():
            if type(value) is str:
                value = safe_text(value, REPR_LIMIT, multiline=False)
            elif type(value) is float and not math.isfinite(value):
                raise ProtocolError(f"info.{key}: not finite")
            elif type(value) not in (bool, int, float):
                raise ProtocolError(f"info.{key}: not a scalar")
            clean[safe_text(key, NAME_LIMIT, multiline=False)] = value
        return cls(clean)


@dataclass(frozen=True)
class Ready:
    """The submission is loaded and set up, after ``seconds``."""

    NAME: ClassVar[str] = "ready"
    seconds: float

    @classmethod
    def parse(cls, f: _Fields) -> Ready:
        return cls(f.seconds("seconds"))


@dataclass(frozen=True)
class LoadError:
    """Loading or setting up the submission failed at ``stage``
    (``import`` / ``interface`` / ``init`` / ``setup``)."""

    NAME: ClassVar[str] = "load_error"
    stage: str
    exception: ExceptionInfo

    @classmethod
    def parse(cls, f: _Fields) -> LoadError:
        return cls(f.text("stage", NAME_LIMIT), ExceptionInfo.parse(f.child("exception")))


@dataclass(frozen=True)
class ArchResult:
    """One architecture scored: seconds inside the proxy and building the model, and either
    the value returned or the exception raised."""

    NAME: ClassVar[str] = "arch"
    index: int
    seconds: float
    build_seconds: float
    value: ValueInfo | None = None
    exception: ExceptionInfo | None = None

    @classmethod
    def parse(cls, f: _Fields) -> ArchResult:
        value = exception = None
        if f.obj.get("exception") is not None:
            exception = ExceptionInfo.parse(f.child("exception"))
        else:
            value = ValueInfo.parse(f.child("value"))
        return cls(
            f.integer("index", 0, MAX_INDEX),
            f.seconds("seconds"),
            f.seconds("build_seconds"),
            value,
            exception,
        )


@dataclass(frozen=True)
class Done:
    """Every architecture of the job was scored."""

    NAME: ClassVar[str] = "done"

    @classmethod
    def parse(cls, f: _Fields) -> Done:
        return cls()


Event = Started | Ready | LoadError | ArchResult | Done
EVENTS: dict[str, type[Event]] = {
    kind.NAME: kind for kind in (Started, Ready, LoadError, ArchResult, Done)
}


def encode(event: Event) -> bytes:
    """One protocol line (worker side). Non-ASCII is escaped, so the line is valid UTF-8
    whatever the submission's text holds; NaN and infinities appear only in ``number``."""
    return (json.dumps({"event": event.NAME, **asdict(event)}) + "\n").encode()


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)  # linear: always matches


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ProtocolError("integer too long")
    return int(digits)


def decode_event(line: bytes) -> Event | None:
    """The typed event of one protocol line, or None for anything else (a garbage line).

    Bounds come before and during decoding: the line's length, the number of containers outside
    strings (so nesting depth, and with it recursion, is bounded before ``json`` sees the line),
    integer digits, then every field's type, range and size. Never raises for any input.
    """
    if len(line) > MAX_LINE:
        return None
    bare = _JSON_STRING.sub(b"", line)
    if bare.count(b"[") + bare.count(b"{") > MAX_CONTAINERS:
        return None
    try:
        obj = json.loads(line.decode("utf-8"), parse_int=_bounded_int)
        fields_ = _Fields(obj)
        kind = EVENTS.get(obj.get("event")) if isinstance(obj.get("event"), str) else None
        return kind.parse(fields_) if kind is not None else None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, ProtocolError
        return None


# ---- records -------------------------------------------------------------------------------------
@dataclass
class ArchRecord:
    """One sampled architecture: what it is, its accuracy, and what the submission made of it."""

    index: int  # position in the task's sample
    row: int  # row of the benchmark table
    arch: str  # NASLib key
    seed: int  # initialisation and proxy RNG seed
    accuracy: float  # the ranking target (negated for lower-is-better targets)
    status: str = "timeout"  # until decided
    score: float | None = None
    seconds: float | None = None  # inside the proxy, as timed by the worker
    build_seconds: float | None = None  # building the model, copying the batch, seeding
    message: str = ""


@dataclass(frozen=True)
class TreeUsage:
    """What one launch's whole process tree used, as the evaluator measured it from outside
    (its cgroup and private area: trusted, not worker output); None where not measurable."""

    cgroup: str = "none"  # v2 | v1 | none: the launch's group
    tmpfs: bool = False  # /tmp and /dev/shm were a private, capped tmpfs
    memory_peak_mb: float | None = None
    cpu_seconds: float | None = None  # user + system
    processes_peak: int | None = None  # processes and threads at once
    oom_kills: int = 0  # processes the kernel killed at the memory cap
    fork_refusals: int = 0  # forks/clones refused at the process cap
    disk_peak_mb: float | None = None  # of the private area, at the checks
    files_peak: int | None = None


@dataclass
class Launch:
    """One worker start: how it went and how it ended."""

    archs: int  # architectures it was given
    end: str = "died"  # done | died | killed | load_error | limit
    ready: bool = False
    startup_seconds: float | None = None  # launch to ``started``
    setup_seconds: float | None = None  # ``started`` to ``ready``, as timed by the worker
    worker: dict[str, Any] = field(default_factory=dict)  # the ``started`` event's info
    garbage_lines: int = 0  # lines that were not the expected event
    returncode: int | None = None
    stderr_tail: str = ""  # safe text, at most STDERR_KEPT characters
    limit: str | None = None  # the status of the whole tree's limit that ended it (end: limit)
    containment: TreeUsage = field(default_factory=TreeUsage)


@dataclass
class TaskMetrics:
    """The numbers of one task (``evaluator.runner.task_metrics``); NaN where undefined."""

    kendall_tau: float = 0.0  # counted: 0 unless the task is ok
    kendall_tau_ci_low: float = math.nan
    kendall_tau_ci_high: float = math.nan
    kendall_tau_scored: float = math.nan  # of the scored architectures alone
    spearman: float = 0.0
    precision_top10: float = 0.0
    n_ok: int = 0
    seconds_mean: float = math.nan
    seconds_median: float = math.nan
    seconds_max: float = math.nan
    cpu_seconds: float = math.nan  # of the whole process trees of its launches, where measured
    n_archs: int = 0


# Shown in reports and kept as their own columns in the results store (``n_archs``, also a
# metric, is one of the unit's facts there).
METRIC_COLUMNS = tuple(f.name for f in fields(TaskMetrics) if f.name != "n_archs")


@dataclass(frozen=True)
class LoaderInfo:
    """The competition form's dataloader (``runner.loader_images``): how many batches it yields
    (the minibatch first), how many images follow the minibatch, and the seed they were drawn
    with."""

    batches: int
    images: int
    seed: int


@dataclass(frozen=True)
class BatchInfo:
    """What the reports record about a task's one minibatch (``runner.batch_info``)."""

    fingerprint: str  # sha256 of its tensors
    describe: str
    dataset: str
    split: str
    seed: int
    size: int
    substitute_for: str | None  # the dataset it stands in for, if any
    note: str
    warnings: tuple[str, ...]  # what building it warned about (substitutions)
    loader: LoaderInfo | None = None  # the competition form's dataloader (None: other forms)


@dataclass
class TaskResult:
    """Everything measured on one task."""

    task: EvalTask
    archs: list[ArchRecord]
    batch: BatchInfo
    status: str = OK
    message: str = ""
    wall_seconds: float = 0.0
    launches: list[Launch] = field(default_factory=list)
    metrics: TaskMetrics = field(default_factory=TaskMetrics)
    error: str = ""  # the evaluator's own traceback of an internal_error
    model_flavor: str = ""  # ``zcproxies.build``'s flavor of the scored networks ("": none ran)


@dataclass
class UnitRecord:
    """One unit of a batch (an upload on a task) as the results store keeps it."""

    status: str
    message: str = ""
    error: str = ""  # traceback, or the last worker's stderr tail when not ok
    metrics: TaskMetrics = field(default_factory=TaskMetrics)
    space: str = ""
    task_name: str = ""
    form: str = ""
    model_flavor: str = ""  # ``TaskResult.model_flavor``
    uploaded_at: str = ""
    started_at: str = ""
    finished_at: str = ""
    wall_seconds: float = 0.0
    launches: int = 0
    seed: int | None = None
    n_archs: int | None = None
    batch_size: int | None = None
    batch_fingerprint: str = ""
    isolation: str = ""
    host: str = ""
    backend: str = ""
    config_fingerprint: str = ""
    run_id: int | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    batch: dict[str, Any] = field(default_factory=dict)  # ``BatchInfo`` as JSON
    environment: dict[str, Any] = field(default_factory=dict)
    launches_detail: list[dict[str, Any]] = field(default_factory=list)
    submission: dict[str, Any] = field(default_factory=dict)
    archs: list[ArchRecord] = field(default_factory=list)
