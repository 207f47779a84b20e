"""The organizers' results store: one SQLite file (WAL mode) holding every evaluated unit.

A *unit* is one (upload name, content hash, task). Each finished unit is one row of ``units``
(status, metrics, timings, versions, limits, seeds, the task's minibatch fingerprint, the batch
configuration's fingerprint, error text, upload date) plus one row per sampled architecture in
``archs``, written in ONE transaction: a batch killed at any moment keeps every unit it recorded,
and a unit is either fully there or absent. ``uploads`` remembers when each (name, hash) was
seen, ``runs`` each batch invocation, and ``meta`` the configuration the store was created
with (a later batch must use the same one, so that every upload is judged alike).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from evaluator.protocol import METRIC_COLUMNS, ArchRecord, UnitRecord, safe_text
from evaluator.report import plain
from zcproxies.errors import ZcpError

STORE_NAME = "results.sqlite"
# The layout of the file (SQLite ``user_version``); a store of another version is refused, never
# altered. 1: first layout; 2: the metric column ``cpu_seconds`` (the whole tree's CPU time);
# 3: the column ``model_flavor`` (the networks scored, ``naslib`` or ``benchmark``).
SCHEMA_VERSION = 3
# ``UnitRecord`` fields stored as JSON documents (``environment``: versions, isolation, host and
# CPUs of the process that ran the unit); every other field but ``archs`` is a scalar column.
JSON_COLUMNS = ("metrics", "limits", "batch", "environment", "launches_detail", "submission")
UNIT_COLUMNS = tuple(
    f.name for f in fields(UnitRecord) if f.name not in JSON_COLUMNS and f.name != "archs"
)
ARCH_COLUMNS = ("idx", "row", "arch", "seed", "accuracy", "status", "score", "seconds", "message")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, backend TEXT,
    workers INTEGER, host TEXT, units_planned INTEGER, units_skipped INTEGER, units_done INTEGER
);
CREATE TABLE IF NOT EXISTS uploads (
    name TEXT NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL, form TEXT,
    rejected TEXT NOT NULL DEFAULT '', uploaded_at TEXT NOT NULL, first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL, PRIMARY KEY (name, sha256)
);
CREATE TABLE IF NOT EXISTS units (
    id INTEGER PRIMARY KEY,
    upload TEXT NOT NULL, sha256 TEXT NOT NULL, task TEXT NOT NULL,
    {", ".join(f"{c} REAL" for c in METRIC_COLUMNS)},
    {", ".join(f"{c}" for c in UNIT_COLUMNS)},
    {", ".join(f"{c}_json TEXT" for c in JSON_COLUMNS)},
    attempts INTEGER NOT NULL DEFAULT 1,
    history_json TEXT NOT NULL DEFAULT '[]',
    UNIQUE (upload, sha256, task)
);
CREATE TABLE IF NOT EXISTS archs (
    unit_id INTEGER NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, row INTEGER, arch TEXT, seed INTEGER, accuracy REAL, status TEXT,
    score REAL, seconds REAL, message TEXT, PRIMARY KEY (unit_id, idx)
);
"""


class ConfigMismatch(ZcpError, ValueError):
    """A batch asked to add results of another configuration to an existing store."""


class SchemaMismatch(ZcpError, ValueError):
    """The store was written by a zcp with another layout of the file (``SCHEMA_VERSION``)."""


@dataclass(frozen=True)
class UnitKey:
    """What identifies a unit: the upload's name, its content hash and the task (``space/task``)."""

    upload: str
    sha256: str
    task: str


def utc_now() -> str:
    """The current time as ISO 8601 UTC, seconds precision (what every date column holds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def fingerprint(document: Mapping[str, Any]) -> str:
    """sha256 of a JSON document with sorted keys (configurations are compared through it)."""
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _dumps(value: Any) -> str:
    """Strict JSON (NaN/inf as null) for the ``*_json`` columns."""
    return json.dumps(plain(value), sort_keys=True, allow_nan=False)


def _cell(value: Any) -> Any:
    """A scalar column value; text made safe (SQLite refuses lone surrogates)."""
    return safe_text(value) if isinstance(value, str) else value


def _real(value: Any) -> float | None:
    """A metric as a column value: NULL for missing or non-finite numbers."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class ResultsStore:
    """The SQLite store of one results directory; the batch scheduler is its only writer."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):  # checked first: nothing of the file is touched
            self.conn.close()
            raise SchemaMismatch(
                f"{self.path}: a results store of schema version {version}, this zcp reads and "
                f"writes version {SCHEMA_VERSION}: evaluate into a new results directory, or "
                "use the zcp version that wrote this one"
            )
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")  # a committed unit survives a power cut too
        self.conn.execute("PRAGMA foreign_keys=ON")
        if version == 0:  # a new file (the script is idempotent should two processes race)
            self.conn.executescript(
                f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )

    @classmethod
    def in_dir(cls, results_dir: str | Path) -> ResultsStore:
        """The store of ``results_dir`` (created with the directory if absent)."""
        directory = Path(results_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / STORE_NAME)

    def close(self) -> None:
        """Close the connection (everything is committed already)."""
        self.conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> _Transaction:
        """``with store.transaction():`` runs the block as one write transaction."""
        return _Transaction(self.conn)

    # ---- configuration and runs -------------------------------------------------------------
    def config(self) -> dict[str, Any] | None:
        """The batch configuration this store holds results of (None while empty)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        return json.loads(row["value"]) if row else None

    def adopt_config(self, config: Mapping[str, Any]) -> str:
        """Record ``config`` in a new store, or check that it equals the recorded one; its
        fingerprint. Raises ``ConfigMismatch`` naming the fields that differ."""
        with self.transaction():
            held = self.config()
            if held is None:
                self.conn.execute(
                    "INSERT INTO meta VALUES ('config', ?)", (json.dumps(config, sort_keys=True),)
                )
            elif held != json.loads(json.dumps(config)):
                fields = sorted(k for k in set(held) | set(config) if held.get(k) != config.get(k))
                changes = "; ".join(f"{k}: {held.get(k)!r} -> {config.get(k)!r}" for k in fields)
                raise ConfigMismatch(
                    f"{self.path} holds results of another configuration ({changes}); "
                    "every upload must be judged alike: use a new results directory"
                )
        return fingerprint(config)

    def begin_run(self, backend: str, workers: int, host: str) -> int:
        """Record the start of a batch invocation; its id (stored in each unit it writes)."""
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO runs (started_at, backend, workers, host) VALUES (?, ?, ?, ?)",
                (utc_now(), backend, workers, host),
            )
        return int(cursor.lastrowid or 0)

    def update_run(self, run_id: int, finished: bool = False, **counts: int) -> None:
        """Set counters (``units_planned``, ``units_skipped``, ``units_done``) of a run."""
        sets = [f"{name} = ?" for name in counts] + (["finished_at = ?"] if finished else [])
        values = [*counts.values(), *([utc_now()] if finished else [])]
        with self.transaction():
            self.conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*values, run_id))

    def runs(self) -> list[dict[str, Any]]:
        """Every batch invocation, oldest first."""
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]

    # ---- uploads ----------------------------------------------------------------------------
    def see_upload(
        self, name: str, sha256: str, kind: str, form: str, rejected: str, uploaded_at: str
    ) -> None:
        """Note that upload ``name`` holds content ``sha256`` now (first/last seen times)."""
        now = utc_now()
        with self.transaction():
            self.conn.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name, sha256) DO UPDATE SET last_seen = excluded.last_seen, "
                "uploaded_at = excluded.uploaded_at",
                tuple(map(_cell, (name, sha256, kind, form, rejected, uploaded_at, now, now))),
            )

    def latest_uploads(self) -> list[dict[str, Any]]:
        """Per upload name, the content seen last (the one the leaderboard ranks)."""
        rows = self.conn.execute(
            "SELECT * FROM uploads ORDER BY name, last_seen DESC, first_seen DESC, rowid DESC"
        )
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest.setdefault(row["name"], dict(row))
        return list(latest.values())

    # ---- units ------------------------------------------------------------------------------
    def statuses(self) -> dict[UnitKey, str]:
        """The status of every recorded unit."""
        rows = self.conn.execute("SELECT upload, sha256, task, status FROM units")
        return {UnitKey(r["upload"], r["sha256"], r["task"]): r["status"] for r in rows}

    def write_unit(self, key: UnitKey, unit: UnitRecord) -> int:
        """Record one finished unit and its architectures in ONE transaction; the row id.

        A unit recorded before (a retry) is replaced; its attempt count goes up and its earlier
        outcome is kept in ``history_json``.
        """
        values: dict[str, Any] = {
            "upload": _cell(key.upload),
            "sha256": _cell(key.sha256),
            "task": _cell(key.task),
            **{c: _real(getattr(unit.metrics, c)) for c in METRIC_COLUMNS},
            **{c: _cell(getattr(unit, c)) for c in UNIT_COLUMNS},
            "metrics_json": _dumps(asdict(unit.metrics)),
            **{f"{c}_json": _dumps(getattr(unit, c)) for c in JSON_COLUMNS if c != "metrics"},
        }
        with self.transaction():
            old = self.conn.execute(
                "SELECT id, attempts, history_json, status, message, finished_at, run_id "
                "FROM units WHERE upload = ? AND sha256 = ? AND task = ?",
                (key.upload, key.sha256, key.task),
            ).fetchone()
            if old is not None:
                earlier = {k: old[k] for k in ("status", "message", "finished_at", "run_id")}
                values["attempts"] = old["attempts"] + 1
                values["history_json"] = json.dumps([*json.loads(old["history_json"]), earlier])
                self.conn.execute("DELETE FROM units WHERE id = ?", (old["id"],))
            names = ", ".join(values)
            cursor = self.conn.execute(
                f"INSERT INTO units ({names}) VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
            )
            unit_id = int(cursor.lastrowid or 0)
            self.conn.executemany(
                f"INSERT INTO archs (unit_id, {', '.join(ARCH_COLUMNS)}) "
                f"VALUES (?, {', '.join('?' * len(ARCH_COLUMNS))})",
                [_arch_row(unit_id, a) for a in unit.archs],
            )
        return unit_id

    def units(self, keys: Iterable[UnitKey] | None = None) -> list[dict[str, Any]]:
        """Recorded units (all, or those of ``keys``) as dicts, JSON columns decoded."""
        rows = [self._decode(r) for r in self.conn.execute("SELECT * FROM units ORDER BY id")]
        if keys is None:
            return rows
        wanted = set(keys)
        return [r for r in rows if UnitKey(r["upload"], r["sha256"], r["task"]) in wanted]

    def archs(self, unit_id: int) -> list[dict[str, Any]]:
        """The architecture rows of one unit, in sample order."""
        rows = self.conn.execute("SELECT * FROM archs WHERE unit_id = ? ORDER BY idx", (unit_id,))
        return [dict(r) for r in rows]

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict[str, Any]:
        """A ``units`` row as a dict with its ``*_json`` columns parsed (names without _json)."""
        out = dict(row)
        for column in (*JSON_COLUMNS, "history"):
            out[column] = json.loads(out.pop(f"{column}_json") or "null")
        return out


def _arch_row(unit_id: int, a: ArchRecord) -> tuple[Any, ...]:
    """The ``archs`` row of one architecture record."""
    return (
        unit_id,
        a.index,
        a.row,
        _cell(a.arch),
        a.seed,
        _real(a.accuracy),
        _cell(a.status),
        _real(a.score),
        _real(a.seconds),
        _cell(a.message),
    )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an exception); nests as a no-op."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if self.outer:
            self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
