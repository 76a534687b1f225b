"""What is and is not a campaign store: refused before anything is written to it, with the fix on one line."""

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from distilloop.core.types import Example
from distilloop.errors import StoreError
from distilloop.storage.store import Store
from tests.conftest import replay_config

CLI = [sys.executable, "-m", "distilloop.cli"]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_empty_file_is_not_adopted_as_an_empty_campaign(tmp_path):
    path = tmp_path / "c.db"
    path.touch()
    with pytest.raises(StoreError, match="empty file"):
        Store.open(path, writer="run")
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]


def test_another_applications_database_is_refused_untouched(tmp_path):
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("create table customers (id integer primary key, name text)")
    con.execute("insert into customers values (1, 'a')")
    con.commit()
    con.close()
    before = digest(path)
    with pytest.raises(StoreError, match="not a distilloop campaign store .*customers"):
        Store.open(path, writer="run")
    with pytest.raises(StoreError, match="not a distilloop campaign store"):
        Store.open(path)
    assert digest(path) == before and not (tmp_path / "app.db-wal").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_store_opens_for_readers_and_refuses_writers_clearly(tmp_path):
    path = tmp_path / "c.db"
    Store.create(path, [Example("a", {"text": "x"})], {"name": "n"}).close()
    path.chmod(stat.S_IRUSR)
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        store = Store.open(path)
        assert store.get_meta("name") == "n" and [e.id for e in store.examples()] == ["a"]
        store.close()
        with pytest.raises(StoreError, match="read-only"):
            Store.open(path, writer="run")
    finally:
        tmp_path.chmod(stat.S_IRWXU)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_store_without_write_access_is_read_read_only(tmp_path, monkeypatch):
    """The same as above where the tests run as root (who may write anywhere): no write access is reported."""
    import distilloop.storage.store as store_module

    path = tmp_path / "c.db"
    Store.create(path, [Example("a", {"text": "x"})], {"name": "n"}).close()
    before = digest(path)
    monkeypatch.setattr(store_module.os, "access", lambda p, mode: False)
    store = Store.open(path)
    assert store.get_meta("name") == "n"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.set_meta("name", "changed")
    store.close()
    with pytest.raises(StoreError, match="read-only and `distilloop run` writes to it"):
        Store.open(path, writer="run")
    assert digest(path) == before


def test_cli_store_problems_are_one_line_exit_codes(tmp_path):
    cfg = replay_config(tmp_path)
    (tmp_path / "t.distilloop.db").write_bytes(b"")
    r = subprocess.run([*CLI, "run", "-q", str(cfg)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "empty file" in r.stderr
    assert "internal error" not in r.stderr
