"""What every part of the store shares: the sqlite-utils database, JSON columns and timestamps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def loads(value: Any, default: Any = None) -> Any:
    """A JSON column's value (``default`` for NULL or empty)."""
    return json.loads(value) if value else default


class StoreBase:
    """The database handle the store's parts share (see :class:`distilloop.storage.store.Store`)."""

    db: Database

    @contextmanager
    def atomic(self) -> Iterator[Any]:
        """One transaction around a unit of work (nested calls join the outer one)."""
        with self.db.atomic():
            yield self

    def round_summary(self, round_no: int) -> dict[str, Any]:
        """A round's verdicts summed up, kept on the round as it finishes (see the reports' read models)."""
        return {}

    def _one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = list(self.db.query(sql, list(params)))
        return rows[0] if rows else None

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """Insert one row by plain SQL (sqlite-utils' ``insert`` reads the table's schema on every call, which a
        row per teacher call pays for); returns its rowid. Values must already be SQL values (JSON as text)."""
        cols = ", ".join(f"[{k}]" for k in row)
        cur = self.db.execute(f"insert into [{table}] ({cols}) values ({', '.join('?' * len(row))})",
                              list(row.values()))
        return int(cur.lastrowid or 0)

    def _update(self, table: str, rowid: int, values: dict[str, Any]) -> None:
        """Set ``values`` on the row with ``id = rowid``, by plain SQL (see :meth:`_insert`)."""
        sets = ", ".join(f"[{k}] = ?" for k in values)
        self.db.execute(f"update [{table}] set {sets} where id = ?", [*values.values(), rowid])

    def _scalar(self, sql: str, params: Any = ()) -> Any:
        row = self._one(sql, params)
        return next(iter(row.values())) if row else None

    # -- meta ------------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.db.table("meta").upsert({"key": key, "value": json.dumps(value)}, pk="key")

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._one("select value from meta where key = ?", [key])
        return json.loads(row["value"]) if row else default
