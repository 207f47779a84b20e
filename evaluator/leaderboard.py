"""The leaderboard of a results store: uploads ranked by mean Kendall-Tau over the tasks.

Each upload is ranked on its latest content (the hash seen last); a task that is not ``ok``,
or not evaluated yet, counts 0 (the evaluator's rule), and flags say why. Equal means (to 12
decimals, so that float noise cannot split identical submissions) share a rank; the next rank
skips accordingly (1, 1, 3). Outputs: ``leaderboard.csv``, ``leaderboard.json`` (with every
upload's provenance: limits, seeds, minibatch fingerprints and substitutions, versions),
``leaderboard.html`` (one self-contained file made for a laptop screen: tasks grouped under
their space, per task the Kendall-Tau with its 95 % interval in numbers and as a bar, badges for
statuses and substituted data, every column sortable) and ``report.md`` (the provenance,
readable). Every text from an upload is escaped for its format.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

import pandas as pd

from evaluator.protocol import OK, display_name, md_text
from evaluator.report import csv_frame, plain
from evaluator.store import STORE_NAME, ResultsStore, UnitKey, utc_now
from zcproxies.errors import DataError, UnknownName
from zcproxies.spaces import get_space

TIE_DECIMALS = 12
OUTPUTS = ("leaderboard.csv", "leaderboard.json", "leaderboard.html", "report.md")
PENDING = "pending"  # a task of the configuration not evaluated yet for an upload
SUSPICIOUS = "suspicious"  # the flag of a result no zero-cost proxy should reach


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
        "noise_ceiling": unit["noise_ceiling"],
        "suspicious": unit["suspicious"] or "",  # why the result is implausible
    }


def _flags(upload: dict[str, Any], cells: dict[str, dict], units: list[dict]) -> list[str]:
    """Why an upload's score is not a clean mean over ok tasks (empty when it is)."""
    if upload["rejected"]:
        return ["rejected"]
    counts = Counter(c["status"] for c in cells.values() if c["status"] != OK)
    flags = [f"{status} x{n}" for status, n in sorted(counts.items())]
    if suspicious := sum(bool(c.get("suspicious")) for c in cells.values()):
        flags.append(f"{SUSPICIOUS} x{suspicious}")
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
        "model_flavor": distinct([u["model_flavor"] for u in units if u["model_flavor"]]),
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
                "suspicious": sum(bool(c.get("suspicious")) for c in cells.values()),
                "status": ", ".join(flags) or OK,
                "form": upload["form"] or "",
                "uploaded_at": upload["uploaded_at"],
                "first_seen": upload["first_seen"],
                "rejected": upload["rejected"],
                "provenance": _provenance(units),
            }
        )
    rank_entries(entries)
    return {
        "generated_at": utc_now(),
        "config": config,
        "tasks": tasks,
        "task_info": _task_info(tasks, list(by_key.values())),
        "entries": entries,
    }


def _task_info(tasks: list[str], units: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task what every upload shares: its minibatch (dataset, split, the dataset it stands
    in for, if any) and the noise ceiling of its sample, from any unit that recorded them."""
    info: dict[str, dict[str, Any]] = {task: {} for task in tasks}
    for unit in units:
        batch = unit["batch"] or {}
        if batch.get("fingerprint") and not info[unit["task"]]:
            info[unit["task"]] = {
                key: batch.get(key)
                for key in ("fingerprint", "dataset", "split", "substitute_for", "note")
            }
            info[unit["task"]]["noise_ceiling"] = unit["noise_ceiling"]
    return info


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
                "suspicious": e["suspicious"],
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
GROUP_LIMIT = 11  # characters of a space's header per task column; the full name is its tooltip


def short_label(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters (its head and an ellipsis)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def space_label(space: str) -> str:
    """A registered space's first alias (``nb201``, ``tnb101_micro``), else the name itself."""
    try:
        aliases = get_space(space).aliases
    except UnknownName:
        return space
    return aliases[0] if aliases else space


def task_label(task: str) -> str:
    """The HTML of a task name's column header: one span per word (underscores and spaces
    separate words, hyphens end one), so that it wraps between words and the page's CSS cuts a
    word too long for the column with an ellipsis, whatever the font."""
    words = [re.findall(r"[^-]+-?", word) for word in task.replace("_", " ").split()]
    return " ".join(
        "<wbr>".join(f'<span class="w">{_attr(part)}</span>' for part in parts) for parts in words
    )


def column_groups(tasks: list[str]) -> list[tuple[str, list[str]]]:
    """The tasks (``space/task``) grouped by space, spaces in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for task in tasks:
        groups.setdefault(task.split("/", 1)[0], []).append(task)
    return list(groups.items())


def _attr(text: Any) -> str:
    """Text for an HTML attribute value or element content (quotes escaped too)."""
    return html.escape(str(text), quote=True)


def _num(value: float, decimals: int) -> str:
    """A number as shown: fixed decimals, a real minus sign, no negative zero."""
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text.replace("-", "\u2212")


def _pos(value: float) -> float:
    """Where ``value`` sits on an interval bar (per cent of its width; the axis is 0 to 1)."""
    return round(100.0 * min(1.0, max(0.0, value)), 2)


def _badge(status: str, text: str | None = None) -> str:
    """A coloured badge; its class names the status (``st-timeout``)."""
    kind = re.sub(r"[^a-z0-9]+", "-", status.lower()).strip("-")
    shown = _attr(text or status).replace("_", "_<wbr>")  # may wrap in a narrow cell
    return f'<span class="badge st-{kind}">{shown}</span>'


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None (missing, NaN, null)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def task_cell_html(task: str, cell: dict[str, Any]) -> str:
    """One task's cell: Kendall-Tau, its 95 % interval in numbers and as a bar with the task's
    noise ceiling marked (sorted by the counted value), and a badge when the result is
    suspicious; a badge instead when the task is not ok (it counts 0)."""
    tau = cell["kendall_tau"]
    if cell["status"] != OK:
        tip = f"{task}: {cell['status']}, counts 0" + (
            f"; {cell['message']}" if cell.get("message") else ""
        )
        return (
            f'<td class="task bad" data-sort="{tau!r}" title="{_attr(tip)}">'
            f'{_badge(cell["status"])}<div class="sub">counts 0</div></td>'
        )
    low, high = _finite(cell.get("ci_low")), _finite(cell.get("ci_high"))
    tip = f"{task}: Kendall-Tau {tau:.4f}"
    interval = bar = ""
    if low is not None and high is not None:
        tip += f", 95 % CI [{low:.4f}, {high:.4f}]"
        interval = f"{_num(low, 2)}\u202f\u2013\u202f{_num(high, 2)}"  # narrow spaces
        bar = f'<i class="iv" style="left:{_pos(low)}%;width:{_pos(high) - _pos(low)}%"></i>'
    for key, name in (("spearman", "Spearman"), ("precision_top10", "P@10 %")):
        if _finite(cell.get(key)) is not None:
            tip += f", {name} {cell[key]:.3f}"
    if cell.get("n_archs"):
        tip += f", {cell['n_ok']}/{cell['n_archs']} scored"
    if (ceiling := _finite(cell.get("noise_ceiling"))) is not None:
        tip += f"; noise ceiling {ceiling:.4f}"
        bar += f'<i class="ceil" style="left:{_pos(ceiling)}%"></i>'
    flag = kind = ""
    if cell.get("suspicious"):
        tip += f"\n{SUSPICIOUS}: {cell['suspicious']}"
        flag, kind = f'<div class="flag">{_badge(SUSPICIOUS)}</div>', " flagged"
    below = " neg" if tau < 0 else ""
    return (
        f'<td class="task{kind}" data-sort="{tau!r}" title="{_attr(tip)}">'
        f'<div class="tau">{_num(tau, 3)}</div>'
        f'<div class="bar">{bar}<i class="pt{below}" style="left:{_pos(tau)}%"></i></div>'
        f'<div class="sub">{interval}</div>{flag}</td>'
    )


def row_html(entry: dict[str, Any], tasks: list[str]) -> str:
    """One upload's row."""
    name = entry["name"]
    tip = f"{name}\ncontent sha256 {entry['sha256']}\nuploaded {entry['uploaded_at']}"
    if entry["form"]:
        tip += f", {entry['form']} form"
    if flavors := entry["provenance"]["model_flavor"]:
        tip += f", {'/'.join(flavors)} networks"
    flags = entry["status"].split(", ")
    cells = [
        f'<td class="num rank sticky" data-sort="{entry["rank"]}">{entry["rank"]}</td>',
        f'<td class="upload sticky" data-sort="{_attr(name.lower())}" title="{_attr(tip)}">'
        f'<span class="name">{_attr(name)}</span></td>',
        f'<td class="num mean" data-sort="{entry["mean_kendall_tau"]!r}">'
        f"{_num(entry['mean_kendall_tau'], 3)}</td>",
        *(task_cell_html(task, entry["tasks"][task]) for task in tasks),
        f'<td class="num" data-sort="{entry["tasks_ok"]}">{entry["tasks_ok"]}/{len(tasks)}</td>',
        f'<td class="flags" data-sort="{_attr(entry["status"])}">'
        + "".join(_badge(flag.split(" x")[0], flag) for flag in flags)
        + "</td>",
    ]
    kind = ' class="flagged"' if entry["suspicious"] else ""
    return f'<tr data-upload="{_attr(entry["upload"])}"{kind}>{"".join(cells)}</tr>'


def table_html(board: dict[str, Any]) -> str:
    """The sortable table: tasks grouped under their space; every leaf header sorts its column
    (``data-col``; ``data-type`` says numbers or text)."""
    groups = column_groups(board["tasks"])
    tasks = [task for _, members in groups for task in members]
    info = board["task_info"]

    def head(col: int, label: str, kind: str, title: str, extra: str = "") -> str:
        return (
            f'<th data-col="{col}" data-type="{kind}" title="{_attr(title)}" tabindex="0"'
            f"{extra}>{label}</th>"
        )

    first = [
        head(0, "#", "number", "rank", ' rowspan="2" class="sticky rank" aria-sort="ascending"'),
        head(1, "upload", "text", "upload name", ' rowspan="2" class="sticky upload"'),
        head(2, "mean \u03c4", "number", "mean Kendall-Tau over all tasks", ' rowspan="2"'),
        *(
            f'<th colspan="{len(members)}" class="group" title="{_attr(space)}">'
            f"{_attr(short_label(space_label(space), GROUP_LIMIT * len(members)))}</th>"
            for space, members in groups
        ),
        head(3 + len(tasks), "ok", "number", "tasks ok", ' rowspan="2"'),
        head(4 + len(tasks), "flags", "text", "why the score is not a clean mean", ' rowspan="2"'),
    ]
    second = []
    for i, task in enumerate(tasks):
        data = info.get(task) or {}
        label = task_label(task.split("/", 1)[1])
        title = task
        if data.get("substitute_for"):
            note = f"data: {data['dataset']}/{data['split']} stands in for {data['substitute_for']}"
            title += f"\n{note}" + (f" ({data['note']})" if data.get("note") else "")
            label += " " + _badge("subst", "subst.")
        if (ceiling := _finite(data.get("noise_ceiling"))) is not None:
            title += f"\nnoise ceiling (seed vs seed Kendall-Tau on this sample) {ceiling:.4f}"
            label += f'<div class="ceil-note">ceiling {_num(ceiling, 2)}</div>'
        second.append(head(3 + i, label, "number", title, ' class="task"'))
    body = "\n".join(row_html(e, tasks) for e in board["entries"])
    return (
        '<table id="board"><thead>'
        f"<tr>{''.join(first)}</tr><tr>{''.join(second)}</tr></thead>\n"
        f"<tbody>\n{body}\n</tbody></table>"
    )


def page_html(board: dict[str, Any]) -> str:
    """The self-contained HTML page (inline CSS and JS; nothing fetched)."""
    template = Template(files("evaluator").joinpath("templates/leaderboard.html").read_text())
    config = board["config"]
    flagged = sum(1 for e in board["entries"] if e["suspicious"])
    facts = (
        f"{len(board['entries'])} upload(s), {len(board['tasks'])} task(s); "
        f"{config['n_archs']} architectures per task, seed {config['seed']}, "
        f"batch size {config['batch_size']}; limits: "
        + ", ".join(f"{k} {v}" for k, v in config["limits"].items())
    )
    review = (
        f"<strong>{flagged} upload(s) flagged {SUSPICIOUS}</strong>: ranked as scored, but "
        "review them before publishing (hover a flagged cell for the reason)."
        if flagged
        else ""
    )
    return template.substitute(
        generated=html.escape(board["generated_at"]),
        facts=html.escape(facts),
        review=review,
        table=table_html(board),
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
            f"batch size {prov['batch_size']}, configuration {prov['config_fingerprint']}, "
            f"networks: {', '.join(prov['model_flavor']) or '-'} flavor",
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
            flag = (
                f"; **{SUSPICIOUS}**: {md_text(cell['suspicious'])}" if cell.get(SUSPICIOUS) else ""
            )
            lines.append(
                f"- {task}: {cell['status']}, tau {cell['kendall_tau']:.4f}; {batch}{flag}"
            )
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
