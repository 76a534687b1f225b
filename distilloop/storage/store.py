"""The campaign store on one SQLite file.

Everything a campaign knows lives here: examples, rounds and their selections, every teacher call (with
its request hash, raw response, usage and cost), consensus, human reviews, accepted labels, student
versions, the budget ledger, the embedding cache and the manifest of the vector shards beside it. WAL mode;
each unit of work is one transaction (``atomic()``), so a campaign killed at any point reopens in a consistent
state and ``distilloop run`` continues from it. Only this package names tables: every other part reads and
writes through these methods.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from distilloop.core.types import Example
from distilloop.errors import StoreError
from distilloop.storage.calls import CallsPart
from distilloop.storage.examples import ExamplesPart
from distilloop.storage.labels import LabelsPart
from distilloop.storage.manifest import ManifestPart
from distilloop.storage.migrations import migrations
from distilloop.storage.queries import QueriesPart
from distilloop.storage.students import StudentsPart
from distilloop.storage.vectors import VectorsPart


class Store(ExamplesPart, CallsPart, LabelsPart, StudentsPart, VectorsPart, ManifestPart, QueriesPart):
    """Typed access to one campaign's SQLite file. Use :meth:`create` for a new campaign, :meth:`open` after."""

    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path

    # -- lifecycle -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no campaign store at {path}; start one with `distilloop run <campaign.toml>`")
        try:
            db = Database(path)
            db.execute("PRAGMA busy_timeout = 30000")
            db.enable_wal()
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a distilloop campaign store ({exc}); move it away or pick "
                             "another [campaign] store path") from None
        return cls(db, path)

    @classmethod
    def memory(cls) -> Store:
        db = Database(memory=True)
        migrations.apply(db)
        return cls(db, None)

    @classmethod
    def create(cls, path: str | Path, examples: Sequence[Example], meta: dict[str, Any]) -> Store:
        """Write a new store atomically: built in a temporary file next to ``path``, renamed when complete.

        A failure (bad data, a full disk, Ctrl-C) leaves no partial campaign behind.
        """
        path = Path(path)
        if path.exists():
            raise StoreError(f"a campaign store already exists at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            db = Database(tmp)
            migrations.apply(db)
            store = cls(db, tmp)
            with db.atomic():
                store._insert_examples(examples)
                for key, value in meta.items():
                    store.set_meta(key, value)
            db.close()
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return cls.open(path)

    def close(self) -> None:
        self.db.close()
