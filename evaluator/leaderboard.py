"""The leaderboard of a results store: uploads ranked by mean Kendall-Tau over the tasks.

Each upload is ranked on its latest content (the hash seen last); a task that is not ``ok``,
or not evaluated yet, counts 0 (the evaluator's rule), and flags say why. Equal means (to 12
decimals, so that float noise cannot split identical submissions) share a rank; the next rank
skips accordingly (1, 1, 3). Outputs: ``leaderboard.csv``, ``leaderboard.json`` (with every
upload's provenance: limits, seeds, minibatch fingerprints and substitutions, versions),
``leaderboard.html`` (self-contained: sortable table, one inline SVG plot per task) and
``report.md`` (the provenance, readable).
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

import pandas as pd

from evaluator.protocol import OK, display_name, md_text
from evaluator.report import csv_frame, plain
from evaluator.store import STORE_NAME, ResultsStore, UnitKey, utc_now
from zcproxies.errors import DataError

TIE_DECIMALS = 12
OUTPUTS = ("leaderboard.csv", "leaderboard.json", "leaderboard.html", "report.md")
PENDING = "pending"  # a task of the configuration not evaluated yet for an upload


def load(results_dir: str | Path) -> ResultsStore:
    """The store of an existing results directory (``DataError`` if there is none)."""
    path = Path(results_dir) / STORE_NAME
    if not path.is_file():
        raise DataError(f"{path}: no results store (run zcp batch first)")
    return ResultsStore(path)


def _task_cell(unit: dict[str, Any] | None) -> dict[str, Any]:
    """The leaderboard's view of one unit (None: not evaluated yet)."""
    if unit is None:
        return {"status": PENDING, "kendall_tau": 0.0}
    return {
        "status": unit["status"],
        "kendall_tau": unit["kendall_tau"] or 0.0,
        "ci_low": unit["kendall_tau_ci_low"],
        "ci_high": unit["kendall_tau_ci_high"],
        "spearman": unit["spearman"],
        "precision_top10": unit["precision_top10"],
        "n_ok": unit["n_ok"],
        "n_archs": unit["n_archs"],
        "message": unit["message"],
    }


def _flags(upload: dict[str, Any], cells: dict[str, dict], units: list[dict]) -> list[str]:
    """Why an upload's score is not a clean mean over ok tasks (empty when it is)."""
    if upload["rejected"]:
        return ["rejected"]
    counts = Counter(c["status"] for c in cells.values() if c["status"] != OK)
    flags = [f"{status} x{n}" for status, n in sorted(counts.items())]
    if any(u["isolation"] == "none" for u in units):
        flags.append("no sandbox")
    return flags


def _provenance(units: list[dict[str, Any]]) -> dict[str, Any]:
    """Exactly what an upload's units ran with: limits, seeds, data per task, versions."""

    def distinct(values: list[Any]) -> list[Any]:
        kept: list[Any] = []
        for value in values:
            if value not in kept:
                kept.append(value)
        return kept

    return {
        "limits": distinct([u["limits"] for u in units]),
        "seed": distinct([u["seed"] for u in units]),
        "n_archs": distinct([u["n_archs"] for u in units]),
        "batch_size": distinct([u["batch_size"] for u in units]),
        "config_fingerprint": distinct([u["config_fingerprint"] for u in units]),
        "data": {
            u["task"]: {
                key: (u["batch"] or {}).get(key)
                for key in ("fingerprint", "dataset", "split", "substitute_for", "note")
            }
            for u in units
        },
        "versions": distinct(
            [
                {k: v for k, v in (u["environment"] or {}).items() if k not in ("cpus", "host")}
                for u in units
            ]
        ),
        "hosts": distinct([(u["environment"] or {}).get("host") for u in units]),
    }


def build(store: ResultsStore) -> dict[str, Any]:
    """The leaderboard as a JSON-ready document (entries in rank order)."""
    config = store.config()
    if config is None:
        raise DataError(f"{store.path}: no batch has run yet")
    tasks: list[str] = config["tasks"]
    latest = store.latest_uploads()
    keys = [UnitKey(u["name"], u["sha256"], t) for u in latest for t in tasks]
    by_key = {UnitKey(u["upload"], u["sha256"], u["task"]): u for u in store.units(keys)}
    entries = []
    for upload in latest:
        mine = {t: by_key.get(UnitKey(upload["name"], upload["sha256"], t)) for t in tasks}
        units = [u for u in mine.values() if u is not None]
        cells = {t: _task_cell(u) for t, u in mine.items()}
        mean = sum(c["kendall_tau"] for c in cells.values()) / len(tasks)
        flags = _flags(upload, cells, units)
        entries.append(
            {
                "upload": upload["name"],  # the store's key (``protocol.upload_key``)
                "name": display_name(upload["name"]),  # what people read
                "sha256": upload["sha256"],
                "mean_kendall_tau": mean,
                "tasks": cells,
                "tasks_ok": sum(c["status"] == OK for c in cells.values()),
                "status": ", ".join(flags) or OK,
                "form": upload["form"] or "",
                "uploaded_at": upload["uploaded_at"],
                "first_seen": upload["first_seen"],
                "rejected": upload["rejected"],
                "provenance": _provenance(units),
            }
        )
    rank_entries(entries)
    return {"generated_at": utc_now(), "config": config, "tasks": tasks, "entries": entries}


def rank_entries(entries: list[dict[str, Any]]) -> None:
    """Sort by mean Kendall-Tau (then name) and give ranks; equal means share one (1, 1, 3)."""

    def level(entry: dict[str, Any]) -> float:
        return round(entry["mean_kendall_tau"], TIE_DECIMALS)

    entries.sort(key=lambda e: (-level(e), e["upload"]))
    for position, entry in enumerate(entries):
        tied = position > 0 and level(entries[position - 1]) == level(entry)
        entry["rank"] = entries[position - 1]["rank"] if tied else position + 1


def frame(board: dict[str, Any]) -> pd.DataFrame:
    """The leaderboard table (what ``leaderboard.csv`` holds): one row per upload."""
    rows = []
    for e in board["entries"]:
        row = {"rank": e["rank"], "upload": e["name"], "mean_kendall_tau": e["mean_kendall_tau"]}
        for task in board["tasks"]:
            row[f"tau {task}"] = e["tasks"][task]["kendall_tau"]
        for task in board["tasks"]:
            row[f"status {task}"] = e["tasks"][task]["status"]
        row.update(
            {
                "tasks_ok": e["tasks_ok"],
                "status": e["status"],
                "uploaded_at": e["uploaded_at"],
                "first_seen": e["first_seen"],
                "form": e["form"],
                "sha256": e["sha256"],
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


# ---- HTML ----------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    """One ``<td>``: numbers shown rounded but sorted by their exact value."""
    if isinstance(value, float):
        shown = f"{value:.4f}" if math.isfinite(value) else ""
        return f'<td class="num" data-sort="{value!r}">{shown}</td>'
    if isinstance(value, int):
        return f'<td class="num" data-sort="{value}">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table_html(table: pd.DataFrame) -> str:
    """The sortable table: headers say whether their column sorts as numbers."""
    heads = "".join(
        f'<th data-type="{"number" if pd.api.types.is_numeric_dtype(table[c]) else "text"}">'
        f"{html.escape(c)}</th>"
        for c in table.columns
    )
    body = "\n".join(
        "<tr>" + "".join(_cell(v.item() if hasattr(v, "item") else v) for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f'<table id="board"><thead><tr>{heads}</tr></thead>\n<tbody>\n{body}\n</tbody></table>'


def task_svg(board: dict[str, Any], task: str) -> str:
    """Inline SVG of one task: each upload's Kendall-Tau (95 % interval as a line), rank order;
    uploads whose task is not ok are red dots at their counted value (0)."""
    entries = board["entries"]
    left, width, row_h, top = 190, 420, 16, 28
    height = top + row_h * len(entries) + 24

    def x(tau: float) -> float:
        return left + (tau + 1.0) / 2.0 * width

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="task-plot" data-task="{html.escape(task)}"'
        f' width="{left + width + 20}" height="{height}" role="img">',
        f'<text x="{left}" y="16" class="title">{html.escape(task)}: Kendall-Tau per upload</text>',
    ]
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        parts.append(
            f'<line x1="{x(tick)}" x2="{x(tick)}" y1="{top - 6}" y2="{height - 20}" class="grid"/>'
            f'<text x="{x(tick)}" y="{height - 6}" class="tick">{tick:g}</text>'
        )
    for i, entry in enumerate(entries):
        cell = entry["tasks"][task]
        y = top + row_h * i + row_h / 2
        name = html.escape(entry["name"][:30])
        parts.append(f'<text x="{left - 8}" y="{y + 4}" class="label">{name}</text>')
        if cell.get("ci_low") is not None and cell.get("ci_high") is not None:
            parts.append(
                f'<line x1="{x(cell["ci_low"])}" x2="{x(cell["ci_high"])}" y1="{y}" y2="{y}"'
                ' class="ci"/>'
            )
        kind = "ok" if cell["status"] == OK else "bad"
        parts.append(
            f'<circle cx="{x(cell["kendall_tau"])}" cy="{y}" r="4" class="tau {kind}"'
            f' data-upload="{html.escape(entry["name"])}"><title>{name}: '
            f"{cell['kendall_tau']:.4f} ({html.escape(cell['status'])})</title></circle>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def page_html(board: dict[str, Any]) -> str:
    """The self-contained HTML page (inline CSS, JS and SVG; nothing fetched)."""
    template = Template(files("evaluator").joinpath("templates/leaderboard.html").read_text())
    config = board["config"]
    facts = (
        f"{len(board['entries'])} upload(s), {len(board['tasks'])} task(s); "
        f"{config['n_archs']} architectures per task, seed {config['seed']}, "
        f"batch size {config['batch_size']}; limits: "
        + ", ".join(f"{k} {v}" for k, v in config["limits"].items())
    )
    table = frame(board)
    table["sha256"] = table["sha256"].str[:12]  # the CSV and JSON keep the full digest
    return template.substitute(
        generated=html.escape(board["generated_at"]),
        facts=html.escape(facts),
        table=table_html(table),
        plots="\n".join(task_svg(board, task) for task in board["tasks"]),
    )


# ---- report.md -----------------------------------------------------------------------------------
def report_md(board: dict[str, Any]) -> str:
    """Per upload (rank order): score, task statuses and exactly what it ran with."""
    lines = [
        "# zcp batch: provenance of every ranked upload",
        "",
        f"Generated {board['generated_at']}. Configuration shared by every unit: "
        f"`{json.dumps(board['config'], sort_keys=True)}`",
        "",
    ]
    for e in board["entries"]:
        prov = e["provenance"]
        lines += [
            f"## {e['rank']}. {md_text(e['name'])}: mean Kendall-Tau {e['mean_kendall_tau']:.4f}",
            "",
            f"- content sha256 `{e['sha256']}`, form {md_text(e['form'] or '-')}, uploaded "
            f"{e['uploaded_at']}, first seen {e['first_seen']}, status: {md_text(e['status'])}",
            f"- limits: {json.dumps(prov['limits'])}",
            f"- seed {prov['seed']}, architectures per task {prov['n_archs']}, "
            f"batch size {prov['batch_size']}, configuration {prov['config_fingerprint']}",
            f"- versions: {json.dumps(prov['versions'])}; hosts {prov['hosts']}",
        ]
        for task in board["tasks"]:
            cell, data = e["tasks"][task], prov["data"].get(task)
            batch = (
                f"minibatch {data['fingerprint']} ({data['dataset']}/{data['split']}"
                + (
                    f", substitute for {data['substitute_for']}: {data['note']}"
                    if data["substitute_for"]
                    else ""
                )
                + ")"
                if data
                else "not evaluated"
            )
            lines.append(f"- {task}: {cell['status']}, tau {cell['kendall_tau']:.4f}; {batch}")
        lines.append("")
    return "\n".join(lines)


def write_leaderboard(results_dir: str | Path) -> tuple[dict[str, Any], list[Path]]:
    """Build the leaderboard of ``results_dir`` and write ``OUTPUTS`` there: (board, paths)."""
    out = Path(results_dir)
    with load(out) as store:
        board = plain(build(store))
    paths = [out / name for name in OUTPUTS]
    csv_frame(frame(board)).to_csv(paths[0], index=False)
    paths[1].write_text(json.dumps(board, indent=1, allow_nan=False) + "\n")
    paths[2].write_text(page_html(board))
    paths[3].write_text(report_md(board))
    return board, paths
