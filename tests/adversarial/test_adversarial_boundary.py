"""The protocol boundary on its own (no worker): forged lines are garbage, never exceptions;
hostile text is safe for SQLite, JSON, CSV, Markdown and HTML; upload names keep their identity.

The same forged lines are written by a real submission in ``test_adversarial_evaluate.py``.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import json
import math
import re
import sqlite3
import time
from pathlib import Path
from types import ModuleType

import pytest

from evaluator import protocol
from evaluator.protocol import (
    ArchRecord,
    ArchResult,
    Done,
    ExceptionInfo,
    Job,
    JobArch,
    JobPaths,
    LoadError,
    Ready,
    Started,
    TaskMetrics,
    UnitRecord,
    ValueInfo,
    csv_cell,
    decode_event,
    display_name,
    encode,
    md_text,
    safe_text,
    upload_key,
)
from evaluator.report import plot_positions
from evaluator.sandbox import MAX_LINE
from evaluator.store import ResultsStore, UnitKey

UPLOADS = Path(__file__).parent / "uploads"
HOSTILE_TEXT = [
    "\ud800 lone surrogate",
    "\udcff\udcfe undecodable bytes",
    "NUL\x00 BEL\x07 ESC\x1b[31m DEL\x7f C1\x85",
    "bidi \u202e override \u2066 isolate, separators \u2028 \u2029",
    'a | pipe `tick` <script>alert("x")</script> & [link](http://x) *em* # h',
    '=HYPERLINK("http://x")',
    "x" * 100_000,
]
UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def forger() -> ModuleType:
    """The forging submission's module (its GARBAGE lines), loaded as test data."""
    spec = importlib.util.spec_from_file_location("forger_proxy", UPLOADS / "forger/proxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_forged_line_is_garbage_and_cheap() -> None:
    module = forger()
    began = time.perf_counter()
    for line in module.GARBAGE:
        assert decode_event(line) is None, line[:80]
    for line in module.OUT_OF_SEQUENCE:  # well-formed: the runner's sequence refuses them
        assert decode_event(line) is not None, line[:80]
    assert time.perf_counter() - began < 1.0  # bounds come before the work
    # the extremes the issue names, directly
    for line in (b"[" * 5000, b"{" * 100_000, b'"\\"' * 30_000, b"[" * (MAX_LINE + 1)):
        assert decode_event(line) is None


def test_bounds_and_types_of_each_field() -> None:
    good = json.loads(
        encode(ArchResult(0, 0.5, 0.25, ValueInfo("float", "float", 1.0, None, "", "1")))
    )

    def line(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    assert decode_event(line()) == ArchResult(
        0, 0.5, 0.25, ValueInfo("float", "float", 1.0, None, "", "1")
    )
    for bad in (
        {"index": True},
        {"index": 1.0},
        {"index": protocol.MAX_INDEX},
        {"seconds": protocol.MAX_SECONDS * 2},
        {"build_seconds": None},
        {"value": None},
        {"value": {**good["value"], "kind": 3}},
        {"value": {**good["value"], "shape": [1] * (protocol.MAX_SHAPE_DIMS + 1)}},
        {"value": {**good["value"], "number": True}},
        {"exception": {"type": "E", "message": 1, "traceback": "", "frames": []}},
        {"exception": {"type": "E", "message": "", "traceback": ""}},  # frames missing
        {"exception": {"type": "E", "message": "", "traceback": "", "frames": "a.py:1"}},
        {"exception": {"type": "E", "message": "", "traceback": "", "frames": [1]}},
        {"exception": {"type": "E", "message": "", "traceback": "", "frames": ["f"] * 6}},
        {"event": ["arch"]},
    ):
        assert decode_event(line(**bad)) is None, bad
    # NaN and infinities are allowed where they are the submission's answer: the score
    nan = decode_event(line().replace(b'"number": 1.0', b'"number": NaN'))
    assert isinstance(nan, ArchResult) and nan.value is not None and math.isnan(nan.value.number)
    huge = decode_event(line().replace(b'"number": 1.0', b'"number": 1e999'))
    assert isinstance(huge, ArchResult) and huge.value is not None
    assert huge.value.number == math.inf
    # a long message is cut, not refused; the traceback keeps its tail
    long = ExceptionInfo("E" * 1000, "m" * 10_000, "start" + "t" * 10_000 + "END")
    event = decode_event(encode(ArchResult(1, 0.0, 0.0, None, long)))
    assert isinstance(event, ArchResult) and event.exception is not None
    assert len(event.exception.message) <= protocol.TEXT_LIMIT + 3
    assert len(event.exception.type) <= protocol.NAME_LIMIT + 3
    assert event.exception.traceback.endswith("END")
    frames = ("x" * 5000, "sub.py:1 in \x1b[31mf\u202e")  # cut, one line each, escaped
    event = decode_event(encode(ArchResult(1, 0.0, 0.0, None, ExceptionInfo("E", "", "", frames))))
    assert isinstance(event, ArchResult) and event.exception is not None
    cut, escaped = event.exception.frames
    assert len(cut) <= protocol.FRAME_LIMIT + 3 and escaped == "sub.py:1 in \\x1b[31mf\\u202e"
    many = {"event": "started", "info": {str(i): i for i in range(protocol.MAX_INFO_FIELDS + 1)}}
    assert decode_event(json.dumps(many).encode()) is None


@pytest.mark.parametrize(
    "event",
    [
        Started({"pid": 12, "uid": 1_900_000_001, "uid_switched": True, "note": "x"}),
        Ready(0.25),
        LoadError("import", ExceptionInfo("SyntaxError", "invalid syntax", "Traceback ...")),
        ArchResult(3, 0.5, 0.1, ValueInfo("tensor", "Tensor", None, (2, 3), "float32", "t")),
        ArchResult(4, 0.5, 0.1, None, ExceptionInfo("ValueError", "no", "")),
        ArchResult(5, 0.5, 0.1, None, ExceptionInfo("E", "m", "t", ("a.py:1 in f", "b.py:2 in g"))),
        Done(),
    ],
)
def test_events_round_trip(event: protocol.Event) -> None:
    assert decode_event(encode(event)) == event


def test_job_round_trip() -> None:
    job = Job(
        "native",
        "proxy.py",
        "nasbench201",
        "cifar10",
        "naslib",
        4096,
        None,
        {"threads": 1},
        JobPaths("/zcp/job", "/zcp/submission", "/tmp"),
        protocol.BatchMeta("cifar10", "test", 0, "src", 10, None, ""),
        (JobArch(0, "(1, 2)", 5),),
    )
    assert Job.loads(job.dumps()) == job


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_text_is_safe_everywhere(text: str, tmp_path: Path) -> None:
    for multiline in (True, False):
        safe = safe_text(text, 2000, multiline=multiline)
        assert not UNSAFE.search(safe.replace("\n", "").replace("\t", ""))
        assert len(safe) <= 2003 and ("\n" not in safe or multiline)
        safe.encode("utf-8")  # strict
    # the store takes it raw (it makes text safe itself: SQLite refuses lone surrogates)
    record = UnitRecord(
        status="error",
        message=text,
        error=text,
        archs=[ArchRecord(0, 0, text, 1, 0.5, "error", None, None, None, text)],
        environment={"note": text},
        metrics=TaskMetrics(),
    )
    with ResultsStore.in_dir(tmp_path) as store:
        store.write_unit(UnitKey(upload_key(text), "sha", "s/t"), record)
        (unit,) = store.units()
        (arch,) = store.archs(unit["id"])
    assert arch["message"] == safe_text(text) and unit["environment"]["note"] == safe_text(text)
    # CSV: one cell, no formula
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(text), 1.0])
    (row,) = list(csv.reader(io.StringIO(out.getvalue())))
    assert len(row) == 2 and not row[0].startswith(protocol.FORMULA_START)
    # Markdown: one line, no unescaped pipe or backtick
    cell = md_text(text)
    assert "\n" not in cell and not re.search(r"(?<!\\)[|`]", cell)
    # HTML (as the leaderboard escapes it): no tag survives
    assert "<script" not in html.escape(display_name(upload_key(text)))
    sqlite3.connect(":memory:").execute("SELECT ?", (safe_text(text),))


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    for cell in ("=1+2", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1"):
        assert not csv_cell(cell).startswith(protocol.FORMULA_START)
    assert csv_cell("ok") == "ok" and csv_cell(-1.5) == -1.5 and csv_cell(None) is None


def test_upload_keys_are_injective_and_displayable() -> None:
    names = [
        "plain.zip",
        "with space and | pipe",
        "=cmd",
        "<b>x</b>",
        "bad\udcff.zip",
        "bad\udcfe.zip",
        "bad\\xff.zip",  # the text a display of bad\xff shows
        "a\nb",
        "a\rb",
        "hex:ff",
        "hex:" + b"bad\xff.zip".hex(),  # a clean name that looks like a key
        "\u202eevil",
    ]
    keys = [upload_key(n) for n in names]
    assert len(set(keys)) == len(names)
    assert keys[:4] == names[:4]  # clean names are their own keys
    for name, key in zip(names, keys, strict=True):
        key.encode("utf-8")
        shown = display_name(key)
        assert not UNSAFE.search(shown)
        if key.startswith(protocol.HEX_KEY):
            assert bytes.fromhex(key[len(protocol.HEX_KEY) :]) == name.encode(
                "utf-8", "surrogateescape"
            )
    assert display_name(upload_key("bad\udcff.zip")) == "bad\\xff.zip"


@pytest.mark.parametrize(
    ("scores", "raw"),
    [
        ([0.5, -2.0, 3e10, 1e-30], True),
        ([1.7e308, -1.7e308, 1.0], False),
        ([1e-320, -5e-324, 0.0], False),
        ([0.0, 0.0], True),
    ],
)
def test_any_finite_score_can_be_plotted(scores: list[float], raw: bool) -> None:
    xs, label = plot_positions(scores)
    assert (label == "submission score") == raw
    assert all(math.isfinite(x) for x in xs) and len(xs) == len(scores)
    if not raw:  # ranks keep the order
        assert sorted(range(len(scores)), key=lambda i: scores[i]) == sorted(
            range(len(scores)), key=lambda i: xs[i]
        )
