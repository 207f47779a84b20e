"""A local ingestion loop like the AutoDL challenge's: train, test, write, until done or time out.

``run_ingestion`` opens a dataset, starts the clock, builds ``Model(metadata)`` and alternates
``model.train(train, remaining)`` and ``model.test(test, remaining)``, writing every prediction to
``<out>/predictions/<name>.predict_<i>`` with the seconds since the start, until the model says
``done_training`` or the budget is spent. A prediction finished after the budget is not written
(the challenge ignores it too). The search log goes to ``<out>/ingestion.json``.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autodl.dataset import load_dataset
from autodl.model import Model
from autodl.search import SearchConfig

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
    config: SearchConfig | None = None,
    device: str | None = None,
) -> IngestionResult:
    """Run the train/test loop on ``dataset_dir`` for ``time_budget`` seconds (see module doc).

    ``out_dir/predictions`` must not hold predictions already (they would be scored as this
    run's). ``device``: the training device (default: CUDA when available).
    """
    if time_budget <= 0:
        raise ValueError(f"time budget must be positive, got {time_budget}")
    name = dataset_name(dataset_dir)
    prediction_dir = Path(out_dir) / "predictions"
    prediction_dir.mkdir(parents=True, exist_ok=True)
    if list_predictions(prediction_dir):
        raise FileExistsError(f"{prediction_dir} already holds predictions; use a fresh --out")
    train, test, _ = load_dataset(dataset_dir)
    start = time.perf_counter()
    model = Model(
        train.metadata, pruning=pruning, proxy=proxy, seed=seed, config=config, device=device
    )
    timestamps: list[float] = []

    def remaining() -> float:
        return time_budget - (time.perf_counter() - start)

    while not model.done_training and remaining() > 0:
        model.train(train, remaining_time_budget=remaining())
        if remaining() <= 0:
            break
        prediction = model.test(test, remaining_time_budget=remaining())
        elapsed = time.perf_counter() - start
        if elapsed > time_budget:
            break
        write_prediction(prediction_dir, name, len(timestamps), prediction, elapsed)
        timestamps.append(elapsed)
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
                "model": result.summary,
            },
            indent=1,
        ),
    )
    return result
