"""Reports of an evaluation: the per-task table and the files written to ``out_dir``.

``results.json`` (everything: versions, seeds, limits, isolation, batches, per-architecture
records), ``results.csv`` (one row per task), ``archs.csv`` (one row per architecture),
``summary.md`` (a Markdown table) and ``plots/<space>__<task>.png`` (score against accuracy).
Every text a submission can influence is escaped for its format (``evaluator.protocol``:
``csv_cell``, ``md_text``, ``safe_text``), and any finite score can be plotted.
"""

from __future__ import annotations

import json
import math
import numbers
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluator.protocol import (
    METRIC_COLUMNS,
    OK,
    Launch,
    TaskResult,
    csv_cell,
    md_text,
    safe_text,
)
from zcproxies.errors import ZcpError

COLUMNS = (
    "space",
    "task",
    "status",
    "suspicious",
    *METRIC_COLUMNS,
    "n_archs",
    "wall_seconds",
    "launches",
    "data",
    "message",
)
PLOT_RANGE = 1e100  # scores whose magnitudes lie outside [1/PLOT_RANGE, PLOT_RANGE] plot as ranks


class UnwritableOutput(ZcpError, OSError):
    """The output directory cannot be created or written."""


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` (and its ``plots``) and prove a file can be written there, before any
    work; ``UnwritableOutput`` naming the directory otherwise."""
    try:
        (out_dir / "plots").mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".zcp-write-test-"):
            pass
    except OSError as exc:
        shown = safe_text(str(out_dir), multiline=False)
        raise UnwritableOutput(
            f"{shown}: cannot write the reports there ({exc.strerror or exc}); "
            "give a writable directory with --out"
        ) from None


def data_note(result: TaskResult) -> str:
    """``"SUBSTITUTED DATA: cifar10/test stands in for ImageNet16-120"`` when the task's
    minibatch is another dataset's (a substitution), else ""."""
    batch = result.batch
    if not batch.substitute_for:
        return ""
    return f"SUBSTITUTED DATA: {batch.dataset}/{batch.split} stands in for {batch.substitute_for}"


def summary_frame(results: list[TaskResult]) -> pd.DataFrame:
    """One row per task; ``attrs["final_score"]`` is the mean Kendall-Tau (failed tasks: 0)."""
    rows = [
        {
            "space": r.task.space,
            "task": r.task.task,
            "status": r.status,
            "suspicious": r.suspicious,
            "wall_seconds": r.wall_seconds,
            "launches": len(r.launches),
            "data": data_note(r),
            "message": r.message,
            **asdict(r.metrics),
        }
        for r in results
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.attrs["final_score"] = float(frame["kendall_tau"].mean()) if len(frame) else 0.0
    return frame


def arch_frame(results: list[TaskResult]) -> pd.DataFrame:
    """One row per sampled architecture of every task."""
    rows = [
        {"space": r.task.space, "task": r.task.task, "model_flavor": r.model_flavor, **asdict(a)}
        for r in results
        for a in r.archs
    ]
    return pd.DataFrame(rows)


def plain(value: Any) -> Any:
    """``value`` made JSON-safe (NaN/inf -> null, numpy scalars and paths -> plain values, text
    made safe), for every JSON the evaluator writes: results.json, the results store, the
    leaderboard."""
    if isinstance(value, dict):
        return {safe_text(str(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return safe_text(value)
    return value


def launch_record(launch: Launch) -> dict[str, Any]:
    """The JSON form of one worker launch (results.json, the results store)."""
    return asdict(launch)


def task_record(result: TaskResult) -> dict[str, Any]:
    """The results.json entry of one task."""
    return {
        "space": result.task.space,
        "task": result.task.task,
        "status": result.status,
        "message": result.message,
        "suspicious": result.suspicious,
        "model_flavor": result.model_flavor,
        "error": result.error,
        "metrics": asdict(result.metrics),
        "batch": asdict(result.batch),
        "benchmark": {
            "path": result.task.path,
            "target": result.task.target,
            "higher_is_better": result.task.higher_is_better,
            "metadata": result.task.metadata,
        },
        "wall_seconds": result.wall_seconds,
        "launches": [launch_record(info) for info in result.launches],
        "archs": [asdict(a) for a in result.archs],
    }


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell made safe for a CSV file opened in a spreadsheet."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):  # text, objects, mixed
            out[column] = out[column].map(csv_cell)
    return out


def markdown(frame: pd.DataFrame, run: dict[str, Any]) -> str:
    """The Markdown summary: final score, run facts and one table row per task."""
    sub = run["submission"]
    lines = [
        f"# zcp evaluation: final score {frame.attrs['final_score']:.4f}",
        "",
        f"Mean Kendall-Tau (tau-b) over {len(frame)} task(s); a task that is not `ok` counts 0.",
        "",
        f"- submission: {md_text(sub.get('source'))} ({md_text(sub.get('form', 'rejected'))})",
        f"- isolation: **{run['isolation']['mode']}** ({md_text(run['isolation']['detail'])})",
        f"- architectures per task: {run['n_archs']}, batch size {run['batch_size']}, "
        f"seed {run['seed']}, networks: {md_text(run.get('model_flavor') or '-')} flavor",
        "- versions: "
        + ", ".join(f"{k} {md_text(v)}" for k, v in run["versions"].items() if k != "platform"),
    ]
    if run.get("interrupted"):
        lines.append("- **interrupted** (Ctrl-C): tasks not finished are `interrupted`, count 0")
    lines += [
        "",
        "| space | task | status | Kendall-Tau | 95 % CI | noise ceiling | Spearman | P@10 % | "
        "ok/n | s/arch | note |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    flagged = []
    for row in frame.itertuples():
        ci = (
            "-"
            if math.isnan(row.kendall_tau_ci_low)
            else f"[{row.kendall_tau_ci_low:.3f}, {row.kendall_tau_ci_high:.3f}]"
        )
        ceiling = "-" if math.isnan(row.noise_ceiling) else f"{row.noise_ceiling:.3f}"
        status = f"{row.status}, **suspicious**" if row.suspicious else row.status
        if row.suspicious:
            flagged.append(f"- {md_text(row.space)}/{md_text(row.task)}: {md_text(row.suspicious)}")
        note = "; ".join(filter(None, [row.data, str(row.message)]))
        lines.append(
            f"| {md_text(row.space)} | {md_text(row.task)} | {status} | "
            f"{row.kendall_tau:.4f} | {ci} | {ceiling} | {row.spearman:.4f} | "
            f"{row.precision_top10:.2f} | {row.n_ok}/{row.n_archs} | {row.seconds_mean:.3g} | "
            f"{md_text(note, 240)} |"
        )
    if flagged:
        lines += [
            "",
            "**Suspicious** (a result no zero-cost proxy should reach; it still counts, for a "
            "person to review):",
            "",
            *flagged,
        ]
    return "\n".join(lines) + "\n"


def benchmark_notes(results: list[TaskResult]) -> str:
    """What each task's benchmark is and how far it agrees with NAS-Bench-201, as its file's
    metadata says (``description``, ``agreement_*``: the embedded benchmark's build measures
    them); empty when no task carries them. File text is escaped, figures must be numbers."""
    lines = []
    keys = ("nb201_kendall_tau", "seed_kendall_tau", "proxy_ranking_spearman", "proxies")
    for result in results:
        meta = result.task.metadata
        if "description" not in meta:
            continue
        line = f"- {md_text(result.task.key)}: {md_text(meta['description'], 400)}"
        figures = [meta.get(f"agreement_{key}") for key in keys]
        if all(isinstance(v, numbers.Real) for v in figures):
            nb201, seeds, ranking, proxies = figures
            line += (
                f". Agreement with NAS-Bench-201 CIFAR-10 over its {len(result.task.frame)} "
                f"cells: Kendall-Tau {nb201:.3f} between their accuracies; seed-vs-seed "
                f"Kendall-Tau {seeds:.3f}; Spearman {ranking:.3f} between the Kendall-Taus of "
                f"{proxies:.0f} proxies on it and on NB201 CIFAR-10"
            )
        lines.append(line)
    return "\n## Benchmark\n\n" + "\n".join(lines) + "\n" if lines else ""


def plot_positions(scores: list[float]) -> tuple[np.ndarray, str]:
    """Where to plot finite scores on the x axis, and the axis label: the scores themselves, or
    their ranks when a magnitude lies outside ``[1/PLOT_RANGE, PLOT_RANGE]`` (e.g. +-1.7e308 or
    1e-320), which no axis can show."""
    values = np.asarray(scores, dtype=np.float64)
    magnitudes = np.abs(values[values != 0])
    if magnitudes.size and (magnitudes.max() > PLOT_RANGE or magnitudes.min() < 1 / PLOT_RANGE):
        _, ranks = np.unique(values, return_inverse=True)
        return ranks.astype(np.float64), "rank of the submission's score (scores beyond plot range)"
    return values, "submission score"


def plot_task(result: TaskResult, path: Path) -> None:
    """Scatter of score against accuracy; failed architectures marked at the left edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [a for a in result.archs if a.status == OK]
    failed = [a for a in result.archs if a.status != OK]
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=100)
    xs, label = plot_positions([float(a.score) for a in ok if a.score is not None])
    if ok:
        ax.scatter(xs, [a.accuracy for a in ok], s=14, alpha=0.75, label="scored")
        if xs.min() > 0 and xs.max() / xs.min() > 1e3:
            ax.set_xscale("log")
    if failed:
        edge = float(xs.min()) if ok else 0.0
        ax.scatter(
            [edge] * len(failed),
            [a.accuracy for a in failed],
            marker="x",
            c="tab:red",
            s=24,
            label=f"failed ({len(failed)}), ranked last",
        )
    tau = result.metrics.kendall_tau
    title = safe_text(f"{result.task.key}: Kendall-Tau {tau:.3f} ({result.status})", 100)
    note = data_note(result)
    if note:  # a substitution shows in the plot too
        title += "\n" + safe_text(note, 100, multiline=False)
    ax.set_title(title.replace("$", r"\$"), fontsize=8 if note else 10)  # no mathtext
    ax.set_xlabel(label)
    target = result.task.target + ("" if result.task.higher_is_better else " (negated)")
    ax.set_ylabel(safe_text(target, 60, multiline=False).replace("$", r"\$"))
    if ok or failed:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_reports(
    out_dir: Path, frame: pd.DataFrame, results: list[TaskResult], run: dict[str, Any]
) -> None:
    """Write every report file of the module doc into ``out_dir`` (created if needed);
    results.json first, so that the complete record exists whatever comes after."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {**run, "tasks": [task_record(r) for r in results]}
    text = json.dumps(plain(payload), indent=1, allow_nan=False)
    (out_dir / "results.json").write_text(text + "\n")
    csv_frame(frame).to_csv(out_dir / "results.csv", index=False)
    csv_frame(arch_frame(results)).to_csv(out_dir / "archs.csv", index=False)
    (out_dir / "summary.md").write_text(markdown(frame, run) + benchmark_notes(results))
    plots = out_dir / "plots"
    plots.mkdir(exist_ok=True)
    for result in results:
        plot_task(result, plots / f"{result.task.space}__{result.task.task}.png")
