"""The worker: ``python -m evaluator.worker <job dir>`` scores one task's architectures.

Started by the evaluator (never imported by it to run code) inside the sandbox. It reads
``job.json`` and ``batch.pt`` from the job dir, confines itself (``sandbox.confine``), loads the
submission, builds each architecture's model itself with ``zcproxies.build`` and calls the
submission once per architecture. It never receives accuracies.

Protocol (``evaluator.protocol``: the job and the events are typed there): one JSON object per
line on the original stdout, written with a single ``write`` and so flushed at once (everything
scored before a kill is kept); the submission's own prints go to stderr. Events, in order:
``started`` (after start-up, before any submitted code), ``ready`` (submission loaded and set
up) or ``load_error``, one ``arch`` per architecture (index, seconds inside the proxy, seconds
building the model, and a description of the value returned or of the exception raised),
``done``. The worker only describes what happened; the evaluator's ``policy`` decides what it
means.
"""

from __future__ import annotations

import faulthandler
import importlib
import math
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import zcproxies
from evaluator.protocol import (
    FRAME_LIMIT,
    MAX_FRAMES,
    NAME_LIMIT,
    REPR_LIMIT,
    TEXT_LIMIT,
    TRACE_LIMIT,
    ArchResult,
    Done,
    Event,
    ExceptionInfo,
    Job,
    LoadError,
    Ready,
    Started,
    ValueInfo,
    encode,
)
from evaluator.sandbox import confine
from zcproxies.data import Batch
from zcproxies.proxies.losses import targets_for_task
from zcproxies.spaces.naslib_graph import SS_TYPES, naslib_graph

COMPAT_DIR = Path(__file__).resolve().parent / "compat"


@dataclass(frozen=True)
class TaskInfo:
    """What ``setup(task)`` of a native submission receives about the task it will score."""

    space: str  # search space name, e.g. "nasbench201"
    task: str  # task name, e.g. "cifar10"
    num_classes: int
    input_shape: tuple[int, int, int]  # (channels, height, width) of one example
    dataset: str  # the minibatch's dataset
    batch_size: int
    num_archs: int  # architectures this worker will score


def competition_loader(
    batch: Batch, extra_x: torch.Tensor, extra_y: torch.Tensor, task: Any
) -> torch.utils.data.DataLoader:
    """The ``dataloader`` of the competition form, as NASLib's test loader: a real DataLoader
    (``shuffle=False``, so every iteration yields the same batches in the same order) over the
    task's images; its first batch is the evaluator's fixed minibatch, the next ones more images
    of the same data (``extra_x``, fresh copies). Targets are the task's (``targets_for_task``:
    class ids outside TransNAS)."""
    x = torch.cat([batch.x, extra_x.clone()])
    y = torch.cat([batch.y, extra_y.clone()])
    dataset = torch.utils.data.TensorDataset(x, targets_for_task(task, x, y))
    return torch.utils.data.DataLoader(
        dataset, batch_size=int(batch.x.shape[0]), shuffle=False, num_workers=0
    )


def submission_frames(exc: BaseException, root: str) -> tuple[str, ...]:
    """``file:line in function`` of the traceback frames in the submission's own files (its
    directory ``root``), innermost last: where a competitor should look."""
    if not root:  # a built-in proxy has no files
        return ()
    prefix = os.path.join(os.path.realpath(root), "")
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.realpath(frame.filename)
        if path.startswith(prefix):
            frames.append(
                _short(f"{path[len(prefix) :]}:{frame.lineno} in {frame.name}", FRAME_LIMIT)
            )
    return tuple(frames[-MAX_FRAMES:])


def as_number(value: Any) -> float | None:
    """``float(value)`` for objects NASLib's evaluator took as a score (anything ``float()``
    takes, except text); None when that fails."""
    if isinstance(value, str | bytes) or value is None:
        return None
    try:
        return _to_float(value)
    except (TypeError, ValueError, ArithmeticError, RuntimeError):
        return None


class Protocol:
    """Writes protocol lines to a private duplicate of stdout; fd 1 is redirected to stderr."""

    def __init__(self) -> None:
        self.fd = os.dup(1)  # not inherited by exec'd children (O_CLOEXEC)
        os.dup2(2, 1)
        self.pid = os.getpid()

    def emit(self, event: Event) -> None:
        """One line; a forked child of the submission exits here instead of writing."""
        if os.getpid() != self.pid:
            os._exit(0)
        os.write(self.fd, encode(event))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text_of(describe: Callable[[], str]) -> str:
    """``describe()``, or a note when submitted code makes it raise (a hostile ``__str__``)."""
    try:
        return str(describe())
    except Exception as exc:
        return f"<unprintable: {_short(type(exc).__name__, NAME_LIMIT)}>"


def describe_exception(exc: BaseException, root: str) -> ExceptionInfo:
    """Type, message, traceback tail and the frames in the submission's directory ``root``
    of an exception raised by submitted code (the evaluator makes the text safe; here it is
    only shortened, so that a line stays far below ``protocol.MAX_LINE`` whatever a class or
    message holds)."""
    trace = _text_of(lambda: "".join(traceback.format_exception(exc)))
    return ExceptionInfo(
        _short(type(exc).__name__, NAME_LIMIT),
        _short(_text_of(lambda: str(exc)), TEXT_LIMIT),
        trace[-TRACE_LIMIT:],
        submission_frames(exc, root),
    )


def describe_value(value: Any) -> ValueInfo:
    """Facts about a returned score: its kind, shape, dtype, repr and, when it is a single
    real number, that number (NaN/inf included; JSON carries them as NaN/Infinity)."""
    kind, number, shape, dtype = "other", None, None, ""
    if isinstance(value, bool | np.bool_):
        kind = "bool"
    elif isinstance(value, int | float):
        kind, number = ("int" if isinstance(value, int) else "float"), _to_float(value)
    elif isinstance(value, np.generic):
        kind, dtype = "numpy_scalar", str(value.dtype)
        if _real_numpy(value.dtype):
            number = _to_float(value.item())
    elif isinstance(value, torch.Tensor):
        kind, shape, dtype = "tensor", tuple(value.shape), str(value.dtype)
        if value.numel() == 1 and not value.dtype.is_complex:
            number = _to_float(value.item())
    elif isinstance(value, np.ndarray):
        kind, shape, dtype = "ndarray", tuple(value.shape), str(value.dtype)
        if value.size == 1 and _real_numpy(value.dtype):
            number = _to_float(value.item())
    elif value is None:
        kind = "none"
    elif isinstance(value, str):
        kind = "str"
    if kind in ("bool", "other"):
        number = as_number(value)  # e.g. a Python object with __float__ (policy decides)
    text = _short(_text_of(lambda: repr(value)), REPR_LIMIT)
    name = _short(type(value).__qualname__, NAME_LIMIT)
    return ValueInfo(kind, name, number, shape, _short(dtype, NAME_LIMIT), text)


def _real_numpy(dtype: np.dtype) -> bool:
    """True for numpy integer and floating dtypes (not bool, complex or object)."""
    return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating))


def _to_float(value: Any) -> float:
    """float(value), with ints too large for a float given as +/-inf."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs (each architecture starts alike)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


ScoreFn = Callable[[torch.nn.Module, Batch, int], Any]  # (model, batch, arch seed) -> value


def load_submission(
    job: Job, info: TaskInfo, proto: Protocol, loader_data: tuple[torch.Tensor, torch.Tensor]
) -> ScoreFn | None:
    """Import and set up the submission: a ``(model, batch, seed)`` scoring callable, or None
    after reporting a ``load_error`` (stage ``import`` / ``interface`` / ``init`` / ``setup``)."""
    form, entry = job.form, job.entry
    stage = "import"
    try:
        if form == "builtin":
            from zcproxies.proxies import get_proxy, score

            sign = 1.0 if get_proxy(entry).higher_is_better else -1.0
            # space/task: for proxies normalised per pair (zcp_ensemble)
            return lambda model, batch, seed: (
                sign * score(entry, model, batch, seed=seed, space=info.space, task=info.task)
            )
        sys.path.insert(0, job.paths.submission)
        if form == "competition":
            sys.path.append(str(COMPAT_DIR))  # last: a real NASLib, if installed, wins
            os.chdir(job.paths.submission)  # relative files open as under NASLib's kit
        module = importlib.import_module(Path(entry).stem)
        stage = "interface"
        if form == "native":
            score_fn = getattr(module, "score", None)
            if not callable(score_fn):
                raise TypeError(f"{entry} must define a function score(model, batch)")
            setup = getattr(module, "setup", None)
            if setup is not None and not callable(setup):
                raise TypeError(f"{entry}: setup must be a function setup(task)")
            if setup is not None:
                stage = "setup"
                setup(info)
            return lambda model, batch, seed: score_fn(model, batch)
        cls = getattr(module, "ZeroCostPredictor", None)
        if not isinstance(cls, type):
            raise TypeError(f"{entry} must define a class ZeroCostPredictor")
        stage = "init"
        predictor = cls()
        stage = "interface"
        if not hasattr(predictor, "method_type"):
            raise TypeError("ZeroCostPredictor must set the attribute method_type")
        if not callable(getattr(predictor, "query", None)):
            raise TypeError("ZeroCostPredictor must define query(graph, dataloader)")
        stage = "setup"
        return competition_query(predictor, info, loader_data)
    except BaseException as exc:
        proto.emit(LoadError(stage, describe_exception(exc, job.paths.submission)))
        return None


def competition_query(
    predictor: Any, info: TaskInfo, loader_data: tuple[torch.Tensor, torch.Tensor]
) -> ScoreFn:
    """NASLib's evaluator lifecycle: ``set_ss_type(<NASLib's type>)`` then ``pre_process()``
    once; per architecture ``query(graph, dataloader=<the task's loader>)`` by keyword."""
    if callable(getattr(predictor, "set_ss_type", None)):
        predictor.set_ss_type(SS_TYPES[info.space])
    if callable(getattr(predictor, "pre_process", None)):
        predictor.pre_process()
    task = zcproxies.get_space(info.space).task(info.task)
    return lambda graph, batch, seed: predictor.query(
        graph, dataloader=competition_loader(batch, *loader_data, task)
    )


def loader_data(job: Job, saved: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The competition loader's images after the minibatch (``job.loader_images`` of them,
    saved beside it in batch.pt; none for the other forms)."""
    if not job.loader_images:
        return saved["x"][:0], saved["y"][:0]
    x, y = saved["loader_x"], saved["loader_y"]
    if len(x) != job.loader_images or len(y) != job.loader_images:
        raise ValueError(f"batch.pt holds {len(x)} loader images, the job says {job.loader_images}")
    return x, y


def run(job_dir: Path, proto: Protocol) -> None:
    """Score every architecture of the job, streaming one line each (see module doc)."""
    job = Job.loads((job_dir / "job.json").read_text())
    saved = torch.load(job_dir / "batch.pt", weights_only=True)
    if job.form == "builtin":  # our own code: loaded before the uid switch (see docs)
        importlib.import_module("zcproxies.proxies").get_proxy(job.entry)
    elif job.form == "competition":  # the NASLib stand-in's proxies, likewise
        importlib.import_module("zcproxies.proxies").list_proxies()
    applied = confine(job.limits, job.uid)
    os.chdir(job.paths.tmp)  # the competition form moves to its own directory (load)
    threads = int(job.limits["threads"])
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    space = zcproxies.get_space(job.space)
    spec = space.task(job.task)
    meta = asdict(job.batch)
    info = TaskInfo(
        space.name,
        spec.name,
        spec.num_classes,
        tuple(spec.input_shape),
        job.batch.dataset,
        int(saved["x"].shape[0]),
        len(job.archs),
    )
    proto.emit(Started({"pid": os.getpid(), **applied}))
    start = time.perf_counter()
    score_fn = load_submission(job, info, proto, loader_data(job, saved))
    if score_fn is None:
        return
    proto.emit(Ready(time.perf_counter() - start))
    for item in job.archs:
        began = start = time.perf_counter()
        value = exception = None
        try:
            model = space.build(item.arch, spec.name, item.seed, job.flavor)
            if job.form == "competition":  # what NASLib's evaluator passed to query
                model = naslib_graph(space.name, item.arch, spec, model)
            batch = Batch(x=saved["x"].clone(), y=saved["y"].clone(), **meta)  # a fresh copy
            seed_everything(item.seed)
            start = time.perf_counter()
            value = describe_value(score_fn(model, batch, item.seed))
        except BaseException as exc:  # SystemExit included: it is this architecture's failure
            exception = describe_exception(exc, job.paths.submission)
        seconds = time.perf_counter() - start
        build_seconds = start - began  # model, batch copy and seeding (0 if building failed)
        proto.emit(ArchResult(item.index, seconds, build_seconds, value, exception))
        model = batch = exception = None  # free them before the next architecture
    proto.emit(Done())


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m evaluator.worker <job dir>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m evaluator.worker <job dir>")
    proto = Protocol()
    faulthandler.enable()  # a crash leaves the Python stack in the stderr tail of the report
    run(Path(args[0]), proto)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: submitted objects' finalisers may hang or crash


if __name__ == "__main__":
    main()
