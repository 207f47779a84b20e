"""A local ingestion loop like the AutoDL challenge's: train, test, write, until done or time out.

``run_ingestion`` starts the clock (at the process start for ``zcp autodl run``), opens the
dataset and, before importing torch (``autodl.quick.first_step``, numpy only): reads the training
split, decodes every test record (a corrupt test split stops the run here, before any training),
fits the quick model (a ridge classifier on cheap features) and writes its test prediction as
prediction 0, an informative prediction within about a second of the process start on the
datasets of the comparison. Then it imports torch, builds ``Model(metadata)`` on that first step
(the search starts from the quick model) and alternates ``model.train(train, remaining)`` and
``model.test(test, remaining)``, writing every prediction to ``<out>/predictions/<name>
.predict_<i>`` with the seconds since the start, until the model says ``done_training`` or the
budget is spent. A prediction finished after the budget is not written (the challenge ignores it
too). The search log goes to ``<out>/ingestion.json``.

Prediction files are text (one row per test example, like the kit's ``.predict_<i>`` files)
with a first comment line ``# elapsed_seconds: <t>``; each is written to a temporary file in the
same directory and renamed into place, so a reader never sees a partial prediction.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autodl.dataset import load_dataset
from autodl.preprocess import spec_from_metadata
from autodl.quick import first_step
from autodl.settings import SearchConfig

PREDICT_RE = re.compile(r"^(?P<name>.+)\.predict_(?P<index>\d+)$")
ELAPSED_PREFIX = "# elapsed_seconds: "


def dataset_name(dataset_dir: str | os.PathLike[str]) -> str:
    """``<name>`` of a dataset directory holding ``<name>.data/``."""
    data_dirs = sorted(Path(dataset_dir).glob("*.data"))
    return data_dirs[0].name[: -len(".data")] if data_dirs else Path(dataset_dir).name


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory + rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_prediction(
    directory: str | os.PathLike[str], name: str, index: int, prediction: np.ndarray, elapsed: float
) -> Path:
    """Atomically write prediction ``index`` (n_test, n_classes) made ``elapsed`` s in."""
    prediction = np.asarray(prediction, dtype=np.float64)
    if prediction.ndim != 2 or not np.isfinite(prediction).all():
        raise ValueError(f"a prediction must be a finite 2-D array, got shape {prediction.shape}")
    rows = "\n".join(" ".join(f"{v:.8g}" for v in row) for row in prediction)
    path = Path(directory) / f"{name}.predict_{index}"
    atomic_write_text(path, f"{ELAPSED_PREFIX}{elapsed:.6f}\n{rows}\n")
    return path


def read_prediction(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """(prediction (n_test, n_classes), elapsed seconds) of a file ``write_prediction`` wrote."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        header = f.readline()
        if not header.startswith(ELAPSED_PREFIX):
            raise ValueError(f"{path}: first line must be '{ELAPSED_PREFIX}<seconds>'")
        return np.loadtxt(f, dtype=np.float64, ndmin=2), float(header[len(ELAPSED_PREFIX) :])


def list_predictions(directory: str | os.PathLike[str]) -> list[Path]:
    """The ``<name>.predict_<i>`` files of ``directory`` in index order (temporaries skipped)."""
    found = [
        (int(m["index"]), p)
        for p in Path(directory).iterdir()
        if (m := PREDICT_RE.match(p.name)) and not p.name.startswith(".")
    ]
    return [p for _, p in sorted(found)]


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``; 0.0 where that is not readable)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass(frozen=True)
class IngestionResult:
    """Where the predictions went and when they were made."""

    name: str
    prediction_dir: Path
    timestamps: list[float]
    duration: float  # seconds from the start to the end of the loop
    summary: dict  # Model.summary()


def run_ingestion(
    dataset_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    time_budget: float,
    *,
    pruning: str = "proxy",
    proxy: str | None = None,
    seed: int = 0,
    config: SearchConfig | dict | None = None,
    device: str | None = None,
    threads: int | None = None,
    start: float | None = None,
    on_status: Callable[[dict], None] | None = None,
) -> IngestionResult:
    """Run the train/test loop on ``dataset_dir`` for ``time_budget`` seconds (see module doc).

    ``out_dir/predictions`` must not hold predictions already (they would be scored as this
    run's). ``config``: the search settings, or a dict of ``SearchConfig`` fields to change
    (``SearchConfig.with_overrides``). ``device``: the training device (default: CUDA when
    available; the data are read before torch is imported, at the CPU's working size unless
    ``device`` names CUDA, and read again at the GPU's when CUDA is found); ``threads``: torch's
    intra-op threads (None: torch's default); ``start``: the ``time.perf_counter()`` value the
    clock starts from (default: now);
    ``on_status``: called with a status dict (elapsed, phase, networks, scored, pool, val_nauc,
    predictions) at every step of the run.
    """
    start = time.perf_counter() if start is None else start
    if time_budget <= 0:
        raise ValueError(f"time budget must be positive, got {time_budget}")
    if not isinstance(config, SearchConfig):
        config = SearchConfig().with_overrides(config or {})
    name = dataset_name(dataset_dir)
    prediction_dir = Path(out_dir) / "predictions"
    prediction_dir.mkdir(parents=True, exist_ok=True)
    if list_predictions(prediction_dir):
        raise FileExistsError(f"{prediction_dir} already holds predictions; use a fresh --out")
    timestamps: list[float] = []
    cpu_seconds: list[float] = []  # the process's CPU time at each prediction (load-free)
    model = None
    phase = "starting"

    def status(now: str | None = None) -> None:
        """Report the status; ``now``: the ingestion's own phase (before the search's)."""
        nonlocal phase
        phase = now or phase
        if on_status is None:
            return
        search = None if model is None else model.search
        info = search.status() if search is not None else {"phase": phase}
        on_status({**info, "elapsed": time.perf_counter() - start, "predictions": len(timestamps)})

    def remaining() -> float:
        return time_budget - (time.perf_counter() - start)

    def write(prediction: np.ndarray) -> bool:
        elapsed = time.perf_counter() - start
        if elapsed > time_budget:
            return False
        write_prediction(prediction_dir, name, len(timestamps), prediction, elapsed)
        timestamps.append(elapsed)
        cpu_seconds.append(time.process_time())
        status()
        return True

    status("reading the data")
    train, test, _ = load_dataset(dataset_dir)
    spec = spec_from_metadata(train.metadata, config.max_size(device), config.max_frames)
    first = first_step(train, spec, config, seed, test)  # a corrupt test split fails here
    write(first.quick.predict(first.test_inputs))
    status("importing torch")
    import torch

    from autodl.model import Model

    if threads is not None:
        torch.set_num_threads(threads)
    model = Model(
        train.metadata,
        pruning=pruning,
        proxy=proxy,
        seed=seed,
        config=config,
        device=device,
        on_event=lambda _: status(),
        first=first,
    )
    while not model.done_training and remaining() > 0:
        model.train(train, remaining_time_budget=remaining())
        if remaining() <= 0 or not write(model.test(test, remaining_time_budget=remaining())):
            break
    duration = time.perf_counter() - start
    result = IngestionResult(name, prediction_dir, timestamps, duration, model.summary())
    atomic_write_text(
        Path(out_dir) / "ingestion.json",
        json.dumps(
            {
                "dataset": name,
                "dataset_dir": str(dataset_dir),
                "time_budget": time_budget,
                "duration": duration,
                "timestamps": timestamps,
                "cpu_seconds": cpu_seconds,
                "prediction_0": "quick model",
                "quick_model": {
                    "ridge": first.quick.ridge,
                    "sharpness": first.quick.sharpness,
                    "loo_cross_entropy": first.quick.loo_loss,
                },
                "model": result.summary,
            },
            indent=1,
        ),
    )
    return result
