"""Reports of an evaluation: the per-task table and the files written to ``out_dir``.

``results.json`` (everything: versions, seeds, limits, isolation, batches, per-architecture
records), ``results.csv`` (one row per task), ``archs.csv`` (one row per architecture),
``summary.md`` (a Markdown table) and ``plots/<space>__<task>.png`` (score against accuracy).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from evaluator.runner import TaskResult

# The per-task metrics of ``evaluator.runner.task_metrics`` shown in reports and kept as their
# own columns in the results store (``n_archs``, also a metric, is one of the task's facts).
METRIC_COLUMNS = (
    "kendall_tau",
    "kendall_tau_ci_low",
    "kendall_tau_ci_high",
    "kendall_tau_scored",
    "spearman",
    "precision_top10",
    "n_ok",
    "seconds_mean",
    "seconds_median",
    "seconds_max",
)
COLUMNS = (
    "space",
    "task",
    "status",
    *METRIC_COLUMNS,
    "n_archs",
    "wall_seconds",
    "launches",
    "message",
)
STDERR_KEPT = 8000  # characters of each worker's stderr tail kept in results.json


def summary_frame(results: list[TaskResult]) -> pd.DataFrame:
    """One row per task; ``attrs["final_score"]`` is the mean Kendall-Tau (failed tasks: 0)."""
    rows = [
        {
            "space": r.task.space,
            "task": r.task.task,
            "status": r.status,
            "wall_seconds": r.wall_seconds,
            "launches": len(r.launches),
            "message": r.message,
            **r.metrics,
        }
        for r in results
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.attrs["final_score"] = float(frame["kendall_tau"].mean()) if len(frame) else 0.0
    return frame


def arch_frame(results: list[TaskResult]) -> pd.DataFrame:
    """One row per sampled architecture of every task."""
    return pd.DataFrame(
        [{"space": r.task.space, "task": r.task.task, **vars(a)} for r in results for a in r.archs]
    )


def plain(value: Any) -> Any:
    """``value`` made JSON-safe (NaN/inf -> null, numpy scalars and paths -> plain values), for
    every JSON the evaluator writes: results.json, the results store, the leaderboard."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def task_record(result: TaskResult) -> dict[str, Any]:
    """The results.json entry of one task."""
    launches = [
        {**info, "stderr_tail": str(info.get("stderr_tail", ""))[-STDERR_KEPT:]}
        for info in result.launches
    ]
    return {
        "space": result.task.space,
        "task": result.task.task,
        "status": result.status,
        "message": result.message,
        "metrics": result.metrics,
        "batch": result.batch,
        "benchmark": {
            "path": result.task.path,
            "target": result.task.target,
            "higher_is_better": result.task.higher_is_better,
            "metadata": result.task.metadata,
        },
        "wall_seconds": result.wall_seconds,
        "launches": launches,
        "archs": [vars(a) for a in result.archs],
    }


def markdown(frame: pd.DataFrame, run: dict[str, Any]) -> str:
    """The Markdown summary: final score, run facts and one table row per task."""
    sub = run["submission"]
    lines = [
        f"# zcp evaluation: final score {frame.attrs['final_score']:.4f}",
        "",
        f"Mean Kendall-Tau (tau-b) over {len(frame)} task(s); a task that is not `ok` counts 0.",
        "",
        f"- submission: `{sub.get('source')}` ({sub.get('form', 'rejected')})",
        f"- isolation: **{run['isolation']['mode']}** ({run['isolation']['detail']})",
        f"- architectures per task: {run['n_archs']}, batch size {run['batch_size']}, "
        f"seed {run['seed']}",
        "- versions: "
        + ", ".join(f"{k} {v}" for k, v in run["versions"].items() if k != "platform"),
        "",
        "| space | task | status | Kendall-Tau | 95 % CI | Spearman | P@10 % | ok/n | "
        "s/arch | note |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in frame.itertuples():
        ci = (
            "-"
            if math.isnan(row.kendall_tau_ci_low)
            else f"[{row.kendall_tau_ci_low:.3f}, {row.kendall_tau_ci_high:.3f}]"
        )
        note = str(row.message).replace("|", "/").replace("\n", " ")
        note = note if len(note) <= 120 else note[:117] + "..."
        lines.append(
            f"| {row.space} | {row.task} | {row.status} | {row.kendall_tau:.4f} | "
            f"{ci} | {row.spearman:.4f} | {row.precision_top10:.2f} | "
            f"{row.n_ok}/{row.n_archs} | {row.seconds_mean:.3g} | {note} |"
        )
    return "\n".join(lines) + "\n"


def benchmark_notes(results: list[TaskResult]) -> str:
    """What each task's benchmark is and how far it agrees with NAS-Bench-201, as its file's
    metadata says (``description``, ``agreement_*``: the embedded benchmark's build measures
    them); empty when no task carries them."""
    lines = []
    for result in results:
        meta = result.task.metadata
        if "description" not in meta:
            continue
        line = f"- `{result.task.key}`: {meta['description']}"
        if "agreement_nb201_kendall_tau" in meta:
            line += (
                f". Agreement with NAS-Bench-201 CIFAR-10 over its {len(result.task.frame)} "
                f"cells: Kendall-Tau {meta['agreement_nb201_kendall_tau']:.3f} between their "
                f"accuracies; seed-vs-seed Kendall-Tau {meta['agreement_seed_kendall_tau']:.3f}; "
                f"Spearman {meta['agreement_proxy_ranking_spearman']:.3f} between the Kendall-Taus "
                f"of {meta['agreement_proxies']} proxies on it and on NB201 CIFAR-10"
            )
        lines.append(line)
    return "\n## Benchmark\n\n" + "\n".join(lines) + "\n" if lines else ""


def plot_task(result: TaskResult, path: Path) -> None:
    """Scatter of score against accuracy; failed architectures marked at the left edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [a for a in result.archs if a.status == "ok"]
    failed = [a for a in result.archs if a.status != "ok"]
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=100)
    scores = np.array([a.score for a in ok], dtype=np.float64)
    if ok:
        ax.scatter(scores, [a.accuracy for a in ok], s=14, alpha=0.75, label="scored")
        if scores.min() > 0 and scores.max() / scores.min() > 1e3:
            ax.set_xscale("log")
    if failed:
        edge = float(scores.min()) if ok else 0.0
        ax.scatter(
            [edge] * len(failed),
            [a.accuracy for a in failed],
            marker="x",
            c="tab:red",
            s=24,
            label=f"failed ({len(failed)}), ranked last",
        )
    tau = result.metrics.get("kendall_tau", 0.0)
    ax.set_title(f"{result.task.key}: Kendall-Tau {tau:.3f} ({result.status})", fontsize=10)
    ax.set_xlabel("submission score")
    ax.set_ylabel(result.task.target + ("" if result.task.higher_is_better else " (negated)"))
    if ok or failed:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_reports(
    out_dir: Path, frame: pd.DataFrame, results: list[TaskResult], run: dict[str, Any]
) -> None:
    """Write every report file of the module doc into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {**run, "tasks": [task_record(r) for r in results]}
    (out_dir / "results.json").write_text(json.dumps(plain(payload), indent=1) + "\n")
    frame.to_csv(out_dir / "results.csv", index=False)
    arch_frame(results).to_csv(out_dir / "archs.csv", index=False)
    (out_dir / "summary.md").write_text(markdown(frame, run) + benchmark_notes(results))
    plots = out_dir / "plots"
    plots.mkdir(exist_ok=True)
    for result in results:
        plot_task(result, plots / f"{result.task.space}__{result.task.task}.png")
