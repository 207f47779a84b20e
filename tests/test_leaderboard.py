"""Leaderboard: ranks, ties, flags, columns and provenance on a store with known contents, and
the HTML page in a real headless Chromium (renders, sorts on a header click, fetches nothing)."""

from __future__ import annotations

import fcntl
import json
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

import pandas as pd
import pytest
from click.testing import CliRunner

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
    assert '"torch": "2.13.0"' in report
    page = (results / "leaderboard.html").read_text()
    assert not re.search(r"<link|<img|src=|@import|url\(|fetch\(|XMLHttpRequest", page)
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * len(TASKS)
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
    column; 2: no ``model_flavor``) gives one error line naming the fix, for ``leaderboard`` and
    ``batch``, and is not altered."""
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


def column(browser: Chromium, index: int) -> list[str]:
    """The text of one column of the leaderboard table, top to bottom."""
    rows = "document.querySelectorAll('#board tbody tr')"
    return browser.js(f"Array.from({rows}, r => r.cells[{index}].textContent)")


def test_page_renders_and_sorts_in_chromium(results: Path, browser: Chromium) -> None:
    write_leaderboard(results)
    url = (results / "leaderboard.html").as_uri()
    browser.call("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired")
    heads = browser.js("Array.from(document.querySelectorAll('#board th'), th => th.textContent)")
    rank, upload, mean = (heads.index(h) for h in ("rank", "upload", "mean_kendall_tau"))
    assert column(browser, upload) == sorted(RANKS, key=lambda u: (RANKS[u], u))
    # The plots: one SVG per task, one dot per upload, drawn with a real size.
    plots = browser.js(
        "Array.from(document.querySelectorAll('svg.task-plot'), s => [s.dataset.task,"
        " s.querySelectorAll('circle.tau').length, s.getBBox().width, s.getBBox().height])"
    )
    assert [p[:2] for p in plots] == [[t, len(UPLOADS)] for t in TASKS]
    assert all(width > 300 and height > 100 for *_, width, height in plots)

    browser.click(f"#board th:nth-child({rank + 1})")  # ascending, numerically: 1, 1, 3, ...
    assert [int(r) for r in column(browser, rank)] == sorted(RANKS.values())
    browser.click(f"#board th:nth-child({rank + 1})")  # descending: 11 first (not "9")
    assert [int(r) for r in column(browser, rank)] == sorted(RANKS.values(), reverse=True)
    browser.click(f"#board th:nth-child({mean + 1})")
    means = [float(m) for m in column(browser, mean)]
    assert means == sorted(means) and means[0] == -0.3
    browser.click(f"#board th:nth-child({upload + 1})")
    assert column(browser, upload) == sorted(UPLOADS)

    methods = [e.get("method") for e in browser.events]
    assert "Runtime.exceptionThrown" not in methods
    requests = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests == [url]  # self-contained: the page itself and nothing else
