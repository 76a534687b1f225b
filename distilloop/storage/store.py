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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from distilloop.core.types import Example
from distilloop.errors import NotAStore, StoreError, UserInputError
from distilloop.storage.calls import CallsPart
from distilloop.storage.examples import ExamplesPart
from distilloop.storage.labels import LabelsPart
from distilloop.storage.lock import WriterLock
from distilloop.storage.manifest import ManifestPart
from distilloop.storage.migrations import migrations
from distilloop.storage.queries import QueriesPart
from distilloop.storage.students import StudentsPart
from distilloop.storage.vectors import VectorsPart
from distilloop.storage.versions import VersionsPart


class Store(ExamplesPart, CallsPart, LabelsPart, StudentsPart, VectorsPart, ManifestPart, QueriesPart, VersionsPart):
    """Typed access to one campaign's SQLite file. Use :meth:`create` for a new campaign, :meth:`open` after."""

    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path
        self.lock: WriterLock | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, writer: str | None = None, lock: WriterLock | None = None) -> Store:
        """Open an existing store. ``writer`` (the command's name) takes the store's writer lock first
        (:mod:`distilloop.storage.lock`), or ``lock`` hands over one already taken; it is held until
        :meth:`close`. Readers take none.

        A file that is not a distilloop store (empty, not SQLite, another application's database) is refused
        before anything is written to it; a read-only store opens read-only for readers."""
        return cls._locked(Path(path), writer, lock, lambda: None)

    @classmethod
    def _open(cls, path: Path, writer: str | None) -> Store:
        check_store_file(path)
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        try:
            pending = inspect_store(path)
            if not writable:
                if writer is not None or pending:
                    why = (f"`distilloop {writer}` writes to it" if writer else
                           "it was written by an earlier distilloop and must be upgraded once")
                    raise StoreError(f"{path} is read-only and {why}; make the file and its folder writable "
                                     f"(chmod u+w), or copy the campaign folder somewhere writable")
                return cls(Database(read_only(path)), path)
            if pending and writer is None:  # a reader upgrading an old store: as a writer, briefly
                upgrade = WriterLock.acquire(path, "status")
                try:
                    db = Database(path)
                    db.execute("PRAGMA busy_timeout = 30000")
                    migrations.apply(db)
                    db.close()
                finally:
                    upgrade.release()
            db = Database(path)
            db.execute("PRAGMA busy_timeout = 30000")
            db.enable_wal()
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a readable distilloop campaign store ({exc}); move it away or pick "
                             "another [campaign] store path") from None
        return cls(db, path)

    @classmethod
    def memory(cls) -> Store:
        db = Database(memory=True)
        migrations.apply(db)
        return cls(db, None)

    @classmethod
    def create(cls, path: str | Path, examples: Sequence[Example], meta: dict[str, Any], *,
               source: str = "", sha256: str | None = None, writer: str | None = None,
               lock: WriterLock | None = None) -> Store:
        """Write a new store atomically: built in a temporary file next to ``path`` and published with a hard
        link, which fails if a store appeared there meanwhile (never a replace). ``examples`` are data version 1
        (read from ``source``, whose hash is ``sha256``). ``writer`` takes the writer lock first, and the opened
        store keeps it.

        A failure (bad data, a full disk, Ctrl-C) leaves no partial campaign behind.
        """
        path = Path(path)
        return cls._locked(path, writer, lock, lambda: cls._create(path, examples, meta, source, sha256))

    @classmethod
    def _locked(cls, path: Path, writer: str | None, lock: WriterLock | None, before: Callable[[], None]) -> Store:
        """Open ``path`` (after ``before``) holding the writer lock (taken for ``writer`` unless handed over as
        ``lock``), released again if anything fails."""
        if lock is None and writer:
            lock = WriterLock.acquire(path, writer)
        try:
            before()
            store = cls._open(path, lock.command if lock else None)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        store.lock = lock
        return store

    @classmethod
    def _create(cls, path: Path, examples: Sequence[Example], meta: dict[str, Any], source: str,
                sha256: str | None) -> None:
        if path.exists():
            raise StoreError(f"a campaign store already exists at {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise UserInputError(f"cannot create the campaign store in {path.parent} ({exc.strerror}); choose a "
                                 "writable folder with [campaign] store") from None
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            db = Database(tmp)
            migrations.apply(db)
            store = cls(db, tmp)
            with db.atomic():
                store._insert_examples(examples, data_version=1)
                store._record_data_version(1, examples, path=source, sha256=sha256, n_rows=len(examples),
                                           n_skipped=0)
                for key, value in meta.items():
                    store.set_meta(key, value)
            db.close()
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise StoreError(f"a campaign store appeared at {path} while this one was being created; "
                                 "run the command again to use it") from None
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None


SQLITE_HEADER = b"SQLite format 3\x00"


def check_store_file(path: Path) -> None:
    """Refuse what cannot be a store without writing to it: nothing there, a folder, an empty file, not SQLite."""
    if not path.exists():
        raise NotAStore(f"no campaign store at {path}; start one with `distilloop run <campaign.toml>`")
    if path.is_dir():
        raise NotAStore(f"{path} is a folder, not a campaign store; set [campaign] store to a file name")
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"{path} cannot be read ({exc.strerror}); check its permissions") from None
    if not head:
        raise NotAStore(f"{path} is an empty file (0 bytes), not a campaign store; remove it, or set another "
                         "[campaign] store path")
    if head != SQLITE_HEADER:
        raise NotAStore(f"{path} is not a distilloop campaign store (not an SQLite file); move it away or set "
                         "another [campaign] store path")


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection (``immutable`` where SQLite cannot create the WAL's shared-memory file)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        con.execute("select count(*) from sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
        return sqlite3.connect(f"file:{path}?immutable=1", uri=True, check_same_thread=False)


def inspect_store(path: Path) -> list[str]:
    """The migrations a store still needs, read without writing; raise if the file is another application's."""
    con = read_only(path)
    try:
        db = Database(con)
        if not migrations.applied(db):
            tables = [t for t in db.table_names() if not t.startswith("sqlite_")]
            raise StoreError(f"{path} is an SQLite database but not a distilloop campaign store (its tables: "
                             f"{', '.join(tables[:6]) or 'none'}); it was left untouched: set another [campaign] "
                             "store path")
        return [m.name for m in migrations.pending(db)]
    finally:
        con.close()


def stores_reading(folder: Path, sha256: str, *, besides: Path) -> list[tuple[Path, int]]:
    """The campaign stores in ``folder`` (other than ``besides``) that read a data file of this sha256, with how
    many labels each holds: read-only, and a file that is not a readable store is passed over."""
    found = []
    for path in sorted(folder.glob("*.db")):
        if path.resolve() == besides.resolve():
            continue
        try:
            con = read_only(path)
        except sqlite3.Error:
            continue
        try:
            if con.execute("select count(*) from data_versions where sha256 = ?", (sha256,)).fetchone()[0]:
                found.append((path, con.execute("select count(*) from labels").fetchone()[0]))
        except sqlite3.Error:
            pass
        finally:
            con.close()
    return found
