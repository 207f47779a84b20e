"""The local scoring program: score a run's predictions against ``<name>.solution``.

Like the challenge's ``score.py``: each prediction gets its NAUC (2 * AUC - 1) and normalised
balanced accuracy; the learning curve of NAUC against the transformed time (t0 = 60 s) over the
budget gives the ALC (``autodl.metrics``). Writes ``scores.json`` and ``learning_curve.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from autodl.errors import ScoringError
from autodl.ingestion import atomic_write_text, list_predictions, read_prediction
from autodl.metrics import T0, LearningCurve, balanced_accuracy, nauc


def score_run(
    prediction_dir: str | os.PathLike[str],
    solution: np.ndarray,
    time_budget: float,
    out_dir: str | os.PathLike[str],
    task_name: str = "",
    t0: float = T0,
) -> dict:
    """Score every prediction of ``prediction_dir``; write and return the scores.

    Predictions made after ``time_budget`` are listed but left out of the ALC (as the
    challenge does); ``final_nauc``/``final_bac`` are those of the last prediction within it.
    """
    paths = list_predictions(prediction_dir)
    curve = LearningCurve(time_budget, t0)
    rows = []
    for path in paths:
        prediction, elapsed = read_prediction(path)
        if prediction.shape != solution.shape:
            raise ScoringError(
                f"{path}: prediction {prediction.shape} but solution {solution.shape}"
            )
        row = {
            "file": path.name,
            "seconds": elapsed,
            "nauc": nauc(solution, prediction),
            "bac": balanced_accuracy(solution, prediction),
            "within_budget": elapsed <= time_budget,
        }
        if row["within_budget"]:
            curve.add(elapsed, row["nauc"])
        rows.append(row)
    kept = [row for row in rows if row["within_budget"]]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores = {
        "task": task_name,
        "time_budget": time_budget,
        "t0": t0,
        "alc": curve.plot(out / "learning_curve.png", task_name),
        "final_nauc": kept[-1]["nauc"] if kept else None,
        "final_bac": kept[-1]["bac"] if kept else None,
        "first_prediction_seconds": kept[0]["seconds"] if kept else None,
        "num_predictions": len(kept),
        "predictions": rows,
    }
    atomic_write_text(out / "scores.json", json.dumps(scores, indent=1))
    return scores
