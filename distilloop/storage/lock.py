"""One writer per store: an exclusive lock held for the whole of a command that writes (``run``, ``review
push``/``pull``, ``students --rollback``, and later ``add`` and ``relabel``).

SQLite serialises transactions, not commands: two ``distilloop run`` on one store would each recover the
other's calls in flight as interrupted, charge them, and buy their answers again. So a writer takes an
``flock`` on ``<store>.lock`` (beside the store) before it reads or creates the store, and keeps it until it
closes, then removes the file. The kernel drops the lock when the process ends in any way (``kill -9``
included), so a crash never leaves a stale lock, only a file that nobody holds; what the file says about the holder (pid, host, command, since when) is only there to
name it in the refusal. Readers (``status``, ``report``, ``export``, ``estimate``) take no lock: WAL lets
them read while the writer writes.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from distilloop.errors import StoreLocked, UserInputError


def lock_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".lock")


class WriterLock:
    """The exclusive lock of one store, taken by :meth:`acquire` (never waits) and released by :meth:`release`."""

    def __init__(self, store_path: str | Path, command: str) -> None:
        self.store_path = Path(store_path)
        self.path = lock_path(self.store_path)
        self.command = command
        self._fd: int | None = None

    @classmethod
    def acquire(cls, store_path: str | Path, command: str) -> WriterLock:
        lock = cls(store_path, command)
        lock._take()
        return lock

    def _take(self) -> None:
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read(fd)
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise StoreLocked(f"{self.store_path} is being written by {_describe(holder)}; one command writes "
                                  f"to a campaign at a time: wait for it to end (or stop it), then run `distilloop "
                                  f"{self.command}` again. `distilloop status`, `report` and `export` work "
                                  "meanwhile") from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder before us removed the file as we opened it: lock the new one
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserInputError(f"cannot create the lock file {self.path} ({exc.strerror}); the campaign store's "
                                 "folder must be writable to run a command that writes") from None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # removed while held: the next writer locks a file of its own
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def holder(store_path: str | Path) -> dict[str, object] | None:
    """Who holds the writer lock of a store now (``None`` when nobody does); for ``status``."""
    path = lock_path(Path(store_path))
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read(fd) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read(fd: int) -> dict[str, object] | None:
    try:
        data = os.pread(fd, 4096, 0)
        value = json.loads(data) if data else None
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def _describe(info: dict[str, object] | None) -> str:
    if not info:
        return "another process"
    return (f"`distilloop {info.get('command', '?')}` (pid {info.get('pid', '?')} on {info.get('host', '?')}, since "
            f"{info.get('since', '?')})")
