"""SQLite sink (the default database: a file, no server).

One table per view (columns as in :mod:`minectl_py.reduce.views`, ``ts`` as epoch seconds,
``ts_ms`` as epoch milliseconds), primary key = the view's key columns. Rows are upserted
(``INSERT OR REPLACE``), so running the same input again leaves every table identical.
Each batch is one transaction: a crash keeps every committed batch.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from minectl_py.reduce.views import View

SQL_TYPE = {"ts": "INTEGER", "tsms": "INTEGER", "int": "INTEGER", "float": "REAL", "str": "TEXT"}
BATCH = 20_000


def ddl(view: View) -> str:
    cols = ", ".join(f'"{c.name}" {SQL_TYPE[c.kind]}' for c in view.cols)
    keys = ", ".join(f'"{c.name}"' for c in view.keys)
    return f'CREATE TABLE IF NOT EXISTS "{view.name}" ({cols}, PRIMARY KEY ({keys}))'


class SQLiteSink:
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path)
            self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as e:
            raise OSError(f"sqlite {path}: {e}") from None
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.pending: dict[str, tuple[View, list[tuple[Any, ...]]]] = {}
        self.n = 0
        self.ready: set[str] = set()
        self.written = 0

    def _ensure(self, view: View) -> None:
        if view.name not in self.ready:
            self.db.execute(ddl(view))
            self.ready.add(view.name)

    def write(self, view: View, rows: list[tuple[Any, ...]]) -> None:
        ent = self.pending.get(view.name)
        if ent is None:
            ent = self.pending[view.name] = (view, [])
        ent[1].extend(rows)
        self.n += len(rows)
        if self.n >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.n:
            return
        with self.db:
            for view, rows in self.pending.values():
                if not rows:
                    continue
                self._ensure(view)
                cols = ", ".join(f'"{c}"' for c in view.names)
                marks = ", ".join("?" * len(view.cols))
                self.db.executemany(f'INSERT OR REPLACE INTO "{view.name}" ({cols}) VALUES ({marks})', rows)
                self.written += len(rows)
                rows.clear()
        self.n = 0

    def close(self) -> None:
        self.flush()
        self.db.close()


def dump(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted (for comparing two databases)."""
    db = sqlite3.connect(path)
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: sorted(db.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        db.close()
