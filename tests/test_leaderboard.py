"""Leaderboard: ranks, ties, flags, columns and provenance on a store with known contents, and
the HTML page in a real headless Chromium (renders, sorts on a header click, fetches nothing)."""

from __future__ import annotations

import base64
import fcntl
import json
import math
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from evaluator import policy
from evaluator.batch_cli import cli
from evaluator.leaderboard import build, write_leaderboard
from evaluator.protocol import TaskMetrics, UnitRecord
from evaluator.store import SCHEMA_VERSION, STORE_NAME, ResultsStore, UnitKey

TASKS = ["nasbench201/cifar10", "nasbench201/cifar100"]
CONFIG = {"tasks": TASKS, "n_archs": 8, "seed": 3, "batch_size": 16, "limits": {"threads": 1}}
LIMITS = {"task_timeout": 5.0, "threads": 1}
# upload -> per-task (status, Kendall-Tau); None: not evaluated yet. Means in the comments.
UPLOADS: dict[str, list[tuple[str, float] | None]] = {
    "u01": [("ok", 0.5), ("ok", 0.3)],  # 0.4
    "u02": [("ok", 0.3), ("ok", 0.5)],  # 0.4: tie with u01
    "u03": [("ok", 0.1 + 0.2), ("ok", 0.4)],  # 0.35000000000000003: float noise, still a tie
    "u04": [("ok", 0.3), ("ok", 0.4)],  # 0.35
    "u05": [("ok", 0.6), ("timeout", 0.0)],  # 0.3
    "u06": [("ok", 0.2), ("ok", 0.2)],  # 0.2 (its older content scored 0.9)
    "u07": [("ok", 0.5), None],  # 0.25, the second task still pending
    "u08": [("rejected", 0.0), ("rejected", 0.0)],  # 0
    "u09": [("ok", 0.1), ("ok", 0.1)],  # 0.1, run without the sandbox
    "u10": [("ok", -0.2), ("ok", -0.4)],  # -0.3
    "u11": [("internal_error", 0.0), ("internal_error", 0.0)],  # 0
}
RANKS = {
    "u01": 1,
    "u02": 1,
    "u03": 3,
    "u04": 3,
    "u05": 5,
    "u07": 6,
    "u06": 7,
    "u09": 8,
    "u08": 9,
    "u11": 9,
    "u10": 11,
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS_SCREENSHOT = Path(__file__).parent.parent / "docs" / "leaderboard.png"
REQUIRE_BROWSER = os.environ.get("ZCP_REQUIRE_BROWSER") == "1"


def unit(task: str, status: str, tau: float, isolation: str = "bwrap") -> UnitRecord:
    """A stored unit as ``batch`` writes it (only what the leaderboard reads)."""
    return UnitRecord(
        space=task.split("/")[0],
        task_name=task.split("/")[1],
        status=status,
        message="" if status == "ok" else f"{status} happened",
        metrics=TaskMetrics(kendall_tau=tau, kendall_tau_ci_low=tau - 0.1, spearman=tau),
        isolation=isolation,
        limits=LIMITS,
        seed=3,
        n_archs=8,
        batch_size=16,
        batch={
            "fingerprint": f"fp-{task}",
            "dataset": "cifar10",
            "split": "test",
            "substitute_for": "cifar10" if task.endswith("cifar10") else None,
            "note": "test split stands in",
        },
        environment={"python": "3.11", "torch": "2.13.0", "host": "h", "cpus": [0]},
        config_fingerprint="cfg",
        model_flavor="benchmark",
    )


def fill(store: ResultsStore) -> None:
    """The uploads of ``UPLOADS`` (u06 with an older content first)."""
    store.adopt_config(CONFIG)
    store.see_upload("u06", "old", "dir", "native", "", "2024-01-01T00:00:00+00:00")
    for task in TASKS:
        store.write_unit(UnitKey("u06", "old", task), unit(task, "ok", 0.9))
    for name, cells in UPLOADS.items():
        rejected = "not a zip" if name == "u08" else ""
        store.see_upload(name, f"h-{name}", "dir", "native", rejected, "2024-02-01T00:00:00+00:00")
        for task, cell in zip(TASKS, cells, strict=True):
            if cell is not None:
                isolation = "none" if name == "u09" else "bwrap"
                store.write_unit(UnitKey(name, f"h-{name}", task), unit(task, *cell, isolation))


# ---- a competition as organizers see it: 8 tasks, 20 uploads -----------------------------------
LAPTOP_TASKS = [
    "nasbench201/cifar10",
    "nasbench201/cifar100",
    "nasbench201/ImageNet16-120",
    "transbench101_micro/class_scene",
    "transbench101_micro/segmentsemantic",
    "transbench101_micro/autoencoder",
    "nasbench301/cifar10",
    "nasbench101/cifar10",
]
# upload name -> {task index: status} of its tasks that are not ok (all others ok)
LAPTOP_UPLOADS: dict[str, dict[int, str]] = {
    "synflow-baseline": {},
    "team-alpha_jacov_v3.zip": {2: "timeout"},
    "grad_norm": {},
    "zen-nas ensemble (final, really)": {5: "memory"},
    "snip": {6: "processes"},
    "fisher.zip": {1: "disk"},
    "<script>alert(1)</script>": {},
    "epe-nas": {3: "error", 4: "error"},
    '=HYPERLINK("http://x")': {},
    "a-very-long-upload-name-that-goes-on-and-on-2024-final-v7.zip": {},
    "naswot_é_ünïcode": {0: "crash"},
    "params-only": {},
    "flops-only": {7: "invalid_score"},
    "random-guess": {},
    "lookup-attempt": {},
    "broken-upload.zip": dict.fromkeys(range(8), "rejected"),
    "slow-but-good": {4: "interrupted", 5: "interrupted", 6: "interrupted", 7: "interrupted"},
    "machinery-victim": {3: "internal_error"},
    "t-cet": {7: "pending"},
    "anti-correlated": {},
}


def laptop_store(results_dir: Path, tasks: list[str] = LAPTOP_TASKS) -> None:
    """A store with ``LAPTOP_UPLOADS`` on ``tasks``: seeded Kendall-Taus with intervals, every
    status a unit can end with, a substituted task, one upload run without the sandbox, noise
    ceilings where a benchmark has seeds (NB201 here) and a lookup flagged suspicious."""
    rng = np.random.default_rng(7)
    ceilings = {
        t: rng.uniform(0.6, 0.8) if t.startswith("nasbench201/") else math.nan for t in tasks
    }
    config = {**CONFIG, "tasks": tasks, "n_archs": 100, "batch_size": 64}
    with ResultsStore.in_dir(results_dir) as store:
        store.adopt_config(config)
        for name, bad in LAPTOP_UPLOADS.items():
            base = -0.35 if name == "anti-correlated" else rng.uniform(0.05, 0.65)
            rejected = "not a zip file" if name == "broken-upload.zip" else ""
            store.see_upload(name, f"h-{name}", "file", "native", rejected, "2024-03-01T10:00:00")
            for i, task in enumerate(tasks):
                status = bad.get(i % len(LAPTOP_TASKS), "ok")
                if status == "pending":
                    continue
                tau = float(np.clip(base + rng.normal(0, 0.08), -1, 1)) if status == "ok" else 0.0
                half = rng.uniform(0.04, 0.12)
                if name == "lookup-attempt":
                    tau, half = 0.99, 0.01
                record = unit(task, status, tau, "none" if name == "params-only" else "bwrap")
                record.metrics = TaskMetrics(
                    kendall_tau=tau,
                    kendall_tau_ci_low=tau - half if status == "ok" else math.nan,
                    kendall_tau_ci_high=tau + half * 0.9 if status == "ok" else math.nan,
                    spearman=tau * 1.3,
                    n_ok=100 if status == "ok" else 0,
                    n_archs=100,
                    noise_ceiling=ceilings[task],
                )
                if name == "lookup-attempt":
                    record.metrics.ceiling_margin_low = tau - half - ceilings[task] - 0.05
                    record.suspicious = policy.plausibility(record.metrics)
                store.write_unit(UnitKey(name, f"h-{name}", task), record)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results directory holding ``UPLOADS``."""
    with ResultsStore.in_dir(tmp_path) as store:
        fill(store)
    return tmp_path


def test_ranks_ties_flags_and_latest_content(results: Path) -> None:
    with ResultsStore.in_dir(results) as store:
        board = build(store)
    entries = {e["upload"]: e for e in board["entries"]}
    assert {name: e["rank"] for name, e in entries.items()} == RANKS
    assert [e["upload"] for e in board["entries"]] == sorted(RANKS, key=lambda u: (RANKS[u], u))
    assert entries["u01"]["mean_kendall_tau"] == pytest.approx(0.4)
    assert entries["u06"]["sha256"] == "h-u06" and entries["u06"]["mean_kendall_tau"] == 0.2
    assert entries["u07"]["mean_kendall_tau"] == 0.25  # the pending task counts 0
    flags = {name: e["status"] for name, e in entries.items()}
    assert flags["u01"] == "ok" and flags["u08"] == "rejected"
    assert flags["u05"] == "timeout x1" and flags["u07"] == "pending x1"
    assert flags["u09"] == "no sandbox" and flags["u11"] == "internal_error x2"
    assert entries["u05"]["tasks"][TASKS[1]]["status"] == "timeout"
    assert entries["u05"]["tasks_ok"] == 1
    prov = entries["u01"]["provenance"]
    assert prov["limits"] == [LIMITS] and prov["seed"] == [3]
    assert prov["data"][TASKS[0]]["fingerprint"] == f"fp-{TASKS[0]}"
    assert prov["data"][TASKS[0]]["substitute_for"] == "cifar10"
    assert prov["versions"] == [{"python": "3.11", "torch": "2.13.0"}]
    assert prov["model_flavor"] == ["benchmark"]


def test_files_csv_json_report_and_command(results: Path) -> None:
    outcome = CliRunner().invoke(cli, ["leaderboard", str(results)])
    assert outcome.exit_code == 0, outcome.output
    assert "   1  +0.4000  u01  [ok]" in outcome.output
    table = pd.read_csv(results / "leaderboard.csv")
    assert list(table.columns) == [
        "rank",
        "upload",
        "mean_kendall_tau",
        *(f"tau {t}" for t in TASKS),
        *(f"status {t}" for t in TASKS),
        "tasks_ok",
        "suspicious",
        "status",
        "uploaded_at",
        "first_seen",
        "form",
        "sha256",
    ]
    assert dict(zip(table["upload"], table["rank"], strict=True)) == RANKS
    assert table.loc[table["upload"] == "u07", f"status {TASKS[1]}"].item() == "pending"

    def no_nan(text: str) -> None:
        raise AssertionError(f"not strict JSON: {text}")

    board = json.loads((results / "leaderboard.json").read_text(), parse_constant=no_nan)
    assert board["tasks"] == TASKS and board["config"] == CONFIG
    assert [e["rank"] for e in board["entries"]] == sorted(RANKS.values())
    report = (results / "report.md").read_text()
    assert report.count("\n## ") == len(UPLOADS)
    assert '- limits: [{"task_timeout": 5.0, "threads": 1}]' in report
    assert "minibatch fp-nasbench201/cifar10 (cifar10/test, substitute for cifar10" in report
    assert '"torch": "2.13.0"' in report and "networks: benchmark flavor" in report
    page = (results / "leaderboard.html").read_text()
    assert not re.search(r"<link|<img|src=|@import|url\(|fetch\(|XMLHttpRequest", page)
    assert not re.findall(r"https?://", page)
    missing = CliRunner().invoke(
        cli, ["leaderboard", str(results / "plots")], catch_exceptions=False
    )
    assert missing.exit_code == 2  # no such directory


def test_leaderboard_of_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(cli, ["leaderboard", str(tmp_path)])
    assert outcome.exit_code == 2 and "run zcp batch first" in outcome.output


@pytest.mark.parametrize("old", range(1, SCHEMA_VERSION))
def test_a_store_of_another_schema_is_refused_and_left_alone(old: int, tmp_path: Path) -> None:
    """A results store written with an older layout (user_version 1: no ``cpu_seconds``
    column; 2: no ``model_flavor`` nor plausibility columns) gives one error line naming the
    fix, for ``leaderboard`` and ``batch``, and is not altered."""
    store = tmp_path / STORE_NAME
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE units (id INTEGER PRIMARY KEY, kendall_tau REAL)")
        conn.execute(f"PRAGMA user_version = {old}")
    conn.close()
    before = store.read_bytes()
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for argv in (
        ["leaderboard", str(tmp_path)],
        ["batch", str(uploads), "--out", str(tmp_path), "--no-progress"],
    ):
        outcome = CliRunner().invoke(cli, argv)
        assert outcome.exit_code == 2, outcome.output
        (line,) = outcome.output.splitlines()
        assert line.startswith("error: ") and f"schema version {old}," in line
        assert f"version {SCHEMA_VERSION}" in line and "new results directory" in line
    assert store.read_bytes() == before


# ---- the page in a real browser -----------------------------------------------------------------
class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    fds 3 and 4, NUL-separated JSON). No extra Python package and no chromedriver whose version
    must match; clicks are real mouse events at the element's position."""

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
        "--remote-debugging-pipe",
    )

    def __init__(self, binary: str, profile: Path) -> None:
        def high(fd: int) -> int:  # out of the way of fds 3 and 4
            new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            os.close(fd)
            return new

        self.inbox, theirs_out = map(high, os.pipe())
        theirs_in, self.outbox = map(high, os.pipe())
        self.proc = subprocess.Popen(
            [
                "bash",
                "-c",
                f'exec "$0" "$@" 3<&{theirs_in} 4>&{theirs_out}',
                binary,
                *self.FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(theirs_in, theirs_out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(theirs_in)
        os.close(theirs_out)
        self.buffer, self.last_id, self.session = b"", 0, ""
        self.events: list[dict[str, Any]] = []
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.inbox], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.inbox, 1 << 16) if ready else b""
            if not chunk:
                raise TimeoutError("chromium did not answer")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command (to the page once attached) and return its result."""
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self.outbox, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self.last_id:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str) -> None:
        """Read until ``event`` arrived (it may have already)."""
        deadline = time.monotonic() + 30
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._message(deadline))

    def js(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page: its value."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real left click in the middle of the element."""
        box = self.js(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def close(self) -> None:
        """Close the browser; kill its process group if it lingers."""
        try:
            self.call("Browser.close")
            self.proc.wait(timeout=10)
        except (OSError, TimeoutError, subprocess.TimeoutExpired, AssertionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        finally:
            os.close(self.inbox)
            os.close(self.outbox)


@pytest.fixture
def browser(tmp_path: Path) -> Chromium:
    """A headless Chromium (skipped where none is installed, unless ZCP_REQUIRE_BROWSER=1)."""
    if CHROMIUM is None:
        if REQUIRE_BROWSER:
            pytest.fail("ZCP_REQUIRE_BROWSER=1 but chromium is not installed")
        pytest.skip("chromium not installed (apt-get install chromium); CI requires it")
    chromium = Chromium(CHROMIUM, tmp_path / "profile")
    yield chromium
    chromium.close()


def open_page(browser: Chromium, page: Path, width: int = 1366, height: int = 768) -> None:
    """Load ``page`` in a viewport of ``width`` x ``height`` CSS pixels (a laptop by default)."""
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.events.clear()
    browser.call("Page.navigate", url=page.as_uri())
    browser.wait_for("Page.loadEventFired")


def uploads(browser: Chromium) -> list[str]:
    """The uploads (store keys) of the table's rows, top to bottom."""
    return browser.js(
        "Array.from(document.querySelectorAll('#board tbody tr'), r => r.dataset.upload)"
    )


def keys(browser: Chromium, col: int) -> list[float]:
    """The sort values of one numeric column, top to bottom."""
    rows = "document.querySelectorAll('#board tbody tr')"
    return browser.js(f"Array.from({rows}, r => parseFloat(r.cells[{col}].dataset.sort))")


def header(browser: Chromium, label: str) -> int:
    """The column index (``data-col``) of the header whose title is ``label``."""
    return browser.js(
        "Array.from(document.querySelectorAll('#board th[data-col]'))"
        f".find(th => th.title === {json.dumps(label)}).dataset.col * 1"
    )


def click_header(browser: Chromium, col: int) -> None:
    """A real click on the header of column ``col``."""
    browser.click(f'#board th[data-col="{col}"]')


def no_script_errors_and_no_requests(browser: Chromium, page: Path) -> None:
    """No script error happened and the page fetched nothing but itself."""
    assert "Runtime.exceptionThrown" not in [e.get("method") for e in browser.events]
    requests = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests == [page.as_uri()]


def test_page_renders_and_sorts_in_chromium(results: Path, browser: Chromium) -> None:
    write_leaderboard(results)
    page = results / "leaderboard.html"
    open_page(browser, page)
    ranked = sorted(RANKS, key=lambda u: (RANKS[u], u))
    assert uploads(browser) == ranked
    groups = browser.js(
        "Array.from(document.querySelectorAll('#board th.group'), th => [th.textContent,"
        " th.title, th.colSpan])"
    )
    assert groups == [["nb201", "nasbench201", 2]]
    heads = browser.js("Array.from(document.querySelectorAll('#board th.task'), th => th.title)")
    assert [h.split("\n")[0] for h in heads] == TASKS
    assert "stands in for cifar10" in heads[0] and "\n" not in heads[1]  # the substitution
    rank, upload, mean = (
        header(browser, h) for h in ("rank", "upload name", "mean Kendall-Tau over all tasks")
    )
    second, flags = header(browser, TASKS[1]), header(browser, "why the score is not a clean mean")

    click_header(browser, rank)  # shown ascending already: the first click reverses
    assert keys(browser, rank) == sorted(RANKS.values(), reverse=True)  # 11 first (not "9")
    click_header(browser, rank)
    assert keys(browser, rank) == sorted(RANKS.values())
    click_header(browser, mean)
    means = keys(browser, mean)
    assert means == sorted(means) and means[0] == pytest.approx(-0.3)
    click_header(browser, upload)
    assert uploads(browser) == sorted(UPLOADS)
    click_header(browser, second)  # a task sorts by the value it counts (0 when not ok)
    assert keys(browser, second) == sorted(keys(browser, second))
    # -0.4, then the tasks that count 0 (timeout, pending, rejected, internal_error) in the order
    # the previous sort left them (a stable sort)
    assert uploads(browser)[:5] == ["u10", "u05", "u07", "u08", "u11"]
    browser.js(f"document.querySelector('#board th[data-col=\"{flags}\"]').focus()")
    for kind in ("keyDown", "keyUp"):  # the keyboard sorts too
        browser.call(
            "Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13
        )
    shown = browser.js(
        "Array.from(document.querySelectorAll('#board tbody tr'), r => r.cells"
        f"[{flags}].dataset.sort)"
    )
    assert shown == sorted(shown, key=str.lower)
    no_script_errors_and_no_requests(browser, page)


def layout(browser: Chromium) -> dict[str, Any]:
    """Widths that say whether anything overflows: the page, the scroll area, every cell."""
    return browser.js(
        """(() => {
        const area = document.querySelector('.scroll');
        const cells = Array.from(document.querySelectorAll('#board th, #board td'));
        return {
          page: document.documentElement.scrollWidth, viewport: window.innerWidth,
          area: area.scrollWidth, visible: area.clientWidth,
          overflowing: cells.filter(c => c.scrollWidth > c.clientWidth + 1)
                            .map(c => c.textContent),
          // header words: [text, width shown, full width] (CSS cuts a long one with '...')
          words: Array.from(document.querySelectorAll('#board th.task .w'),
                            w => [w.textContent, w.clientWidth, w.scrollWidth]),
        };
        })()"""
    )


def test_laptop_page_fits_shows_badges_and_bars_and_screenshots(
    tmp_path: Path, browser: Chromium
) -> None:
    """8 tasks and 20 uploads at 1366 x 768: no horizontal overflow, headers and cells readable
    (nothing spills out of its cell), a badge per status, interval bars where their numbers say,
    upload names escaped; a screenshot that shows the page (kept under tmp_path)."""
    laptop_store(tmp_path)
    write_leaderboard(tmp_path)
    page = tmp_path / "leaderboard.html"
    open_page(browser, page)
    fit = layout(browser)
    assert fit["page"] <= fit["viewport"] and fit["area"] <= fit["visible"], fit
    assert fit["overflowing"] == []
    assert all(shown >= min(full, 60) for _, shown, full in fit["words"]), fit["words"]
    # headers: spaces by alias, tasks shortened, full names on hover
    groups = browser.js(
        "Array.from(document.querySelectorAll('#board th.group'), th => [th.textContent,"
        " th.title, th.colSpan])"
    )
    assert groups == [
        ["nb201", "nasbench201", 3],
        ["tnb101_micro", "transbench101_micro", 3],
        ["nb301", "nasbench301", 1],
        ["nb101", "nasbench101", 1],
    ]
    heads = browser.js(
        "Array.from(document.querySelectorAll('#board th.task'), th => [Array.from("
        "th.querySelectorAll('.w'), w => w.textContent).join('|'), th.title.split('\\n')[0],"
        " th.querySelectorAll('.st-subst').length])"
    )
    words = ["cifar10", "cifar100", "ImageNet16-|120", "class|scene", "segmentsemantic"]
    words += ["autoencoder", "cifar10", "cifar10"]
    substituted = [1, 0, 0, 0, 0, 0, 1, 1]  # ``unit`` substitutes cifar10
    assert heads == [list(h) for h in zip(words, LAPTOP_TASKS, substituted, strict=True)]
    # one badge per task that is not ok, in its own cell
    cells = browser.js(
        """Object.fromEntries(Array.from(document.querySelectorAll('#board tbody tr'), r =>
        [r.dataset.upload, Array.from(r.querySelectorAll('td.task'), c => {
          const badge = c.querySelector('.badge');
          return badge ? badge.className + ' ' + badge.textContent : null; })]))"""
    )
    for name, bad in LAPTOP_UPLOADS.items():
        expected = [
            f"badge st-{bad[i].replace('_', '-')} {bad[i]}" if i in bad else None
            for i in range(len(LAPTOP_TASKS))
        ]
        if name == "lookup-attempt":  # ok everywhere, and suspicious everywhere
            expected = ["badge st-suspicious suspicious"] * len(LAPTOP_TASKS)
        assert cells[name] == expected, name
    flags = browser.js(
        "Object.fromEntries(Array.from(document.querySelectorAll('#board tbody tr'), r =>"
        " [r.dataset.upload, Array.from(r.querySelectorAll('td.flags .badge'),"
        " b => b.textContent)]))"
    )
    assert flags["params-only"] == ["no sandbox"] and flags["grad_norm"] == ["ok"]
    assert flags["epe-nas"] == ["error x2"] and flags["broken-upload.zip"] == ["rejected"]
    assert flags["lookup-attempt"] == ["suspicious x8"]
    assert browser.js("document.querySelectorAll('#board tr.flagged').length") == 1
    # noise ceilings: NB201's tasks have one (in the header and as a line on every bar)
    notes = browser.js(
        "Array.from(document.querySelectorAll('#board th.task'), th =>"
        " (th.querySelector('.ceil-note') || {}).textContent || null)"
    )
    assert [n is not None for n in notes] == [True] * 3 + [False] * 5
    assert all(re.fullmatch(r"ceiling 0\.[78]\d", n) for n in notes[:3])
    # interval bars where their numbers say, labelled with the numbers
    with ResultsStore.in_dir(tmp_path) as store:
        board = build(store)
    drawn = browser.js(
        """Array.from(document.querySelectorAll('#board tbody tr'), r =>
        Array.from(r.querySelectorAll('td.task'), c => {
          const bar = c.querySelector('.bar'); if (!bar) { return null; }
          const box = bar.getBoundingClientRect();
          const iv = c.querySelector('.iv').getBoundingClientRect();
          const pt = c.querySelector('.pt').getBoundingClientRect();
          return [c.querySelector('.tau').textContent, c.querySelector('.sub').textContent,
                  (iv.left - box.left) / box.width, (iv.right - box.left) / box.width,
                  (pt.left + pt.width / 2 - box.left) / box.width]; }))"""
    )
    checked = 0
    for entry, row in zip(board["entries"], drawn, strict=True):
        for task, shown in zip(LAPTOP_TASKS, row, strict=True):
            cell = entry["tasks"][task]
            if cell["status"] != "ok":
                assert shown is None
                continue
            tau, low, high = cell["kendall_tau"], cell["ci_low"], cell["ci_high"]
            assert shown[0] == f"{tau:.3f}".replace("-", "\u2212").replace("\u22120.000", "0.000")
            assert shown[1].replace("\u202f", "") == "\u2013".join(
                f"{v:.2f}".replace("-", "\u2212") if round(v, 2) else "0.00" for v in (low, high)
            )
            clamp = lambda v: min(1.0, max(0.0, v))  # noqa: E731
            assert shown[2] == pytest.approx(clamp(low), abs=0.03)
            assert shown[3] == pytest.approx(clamp(high), abs=0.03)
            assert shown[4] == pytest.approx(clamp(tau), abs=0.03)
            checked += 1
    assert checked > 120
    # upload names are text, never markup
    assert browser.js("document.scripts.length") == 1
    names = browser.js(
        "Object.fromEntries(Array.from(document.querySelectorAll('#board tbody tr'), r =>"
        " [r.dataset.upload, r.querySelector('td.upload').title.split('\\n')[0]]))"
    )
    assert names == {name: name for name in LAPTOP_UPLOADS}
    no_script_errors_and_no_requests(browser, page)
    shot = tmp_path / "leaderboard-1366x768.png"
    screenshot(browser, shot, (1366, 768))
    if os.environ.get("ZCP_UPDATE_SCREENSHOT") == "1":  # docs/organizers.md shows it
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def screenshot(browser: Chromium, path: Path, size: tuple[int, int]) -> None:
    """Capture the viewport to ``path`` and check it shows the page: its size, not blank, and
    the colours of badges and an interval bar where the page says they are (the first of each
    in view below the headers)."""
    shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    path.write_bytes(shot)
    image = Image.open(path).convert("RGB")
    assert image.size == size
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50  # not blank
    samples = browser.js(
        """Array.from(['#board .badge.st-suspicious', '#board .bar .pt', '#board .badge.st-ok'],
          s => {
          const e = Array.from(document.querySelectorAll(s)).find(e => {
            const r = e.getBoundingClientRect();
            return r.top > 150 && r.bottom < innerHeight && r.right < innerWidth; });
          const r = e.getBoundingClientRect();
          return [s, Math.floor(r.left + Math.min(3, r.width / 2)),
                  Math.floor(r.top + r.height / 2), getComputedStyle(e).backgroundColor]; })"""
    )
    for selector, x, y, colour in samples:
        expected = [int(v) for v in re.findall(r"\d+", colour)[:3]]
        pixel = image.getpixel((x, y))
        assert max(abs(a - b) for a, b in zip(pixel, expected, strict=True)) < 12, selector


def test_many_tasks_scroll_with_sticky_columns(tmp_path: Path, browser: Chromium) -> None:
    """More tasks than a laptop shows: the page itself never scrolls sideways, the table's
    scroll area does, and rank and upload stay in view (and the header rows on top)."""
    tasks = LAPTOP_TASKS + [f"space{i}/task{i}" for i in range(8)]
    laptop_store(tmp_path, tasks)
    write_leaderboard(tmp_path)
    open_page(browser, tmp_path / "leaderboard.html")
    fit = layout(browser)
    assert fit["page"] <= fit["viewport"] and fit["area"] > fit["visible"] * 1.3, fit
    where = """(() => {
      const area = document.querySelector('.scroll').getBoundingClientRect();
      const row = document.querySelector('#board tbody tr:nth-child(15)');
      const box = s => row.querySelector(s).getBoundingClientRect();
      const head = document.querySelector('#board th.group').getBoundingClientRect();
      return [area.left, area.top, box('td.rank').left, box('td.upload').left,
              box('td.upload').right, box('td.mean').left, head.top]; })()"""
    left, top, rank, upload, upload_end, mean, head = browser.js(where)
    browser.js(
        "const a = document.querySelector('.scroll'); a.scrollLeft = a.scrollWidth;"
        " a.scrollTop = a.scrollHeight;"
    )
    after = browser.js(where)
    assert after[:5] == pytest.approx([left, top, rank, upload, upload_end], abs=1)
    assert after[5] < mean - 500  # the rest moved
    assert after[6] == pytest.approx(head, abs=1) and after[6] >= top
    assert browser.js("document.documentElement.scrollWidth") <= 1366
