"""One writer per store: a second command that writes is refused with the holder named and exit code 2, the
first finishes, nothing is paid twice; readers keep working during a run; a killed writer leaves no lock."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from distilloop.core.types import Example
from distilloop.errors import StoreLocked
from distilloop.storage.lock import holder
from distilloop.storage.store import Store
from tests.conftest import replay_config, sqlite_count

CLI = [sys.executable, "-m", "distilloop.cli"]


def wait_for(db, sql, n, proc, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sqlite_count(db, sql) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError("the run ended early: " + proc.stderr.read().decode())
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {sql} >= {n}")


def test_a_second_run_is_refused_and_the_first_finishes_without_paying_twice(tmp_path):
    cfg = replay_config(tmp_path, latency=0.15, rounds="max_rounds = 2\ninitial_size = 20\nbatch_size = 20\n"
                                                      "concurrency = 1")
    db = tmp_path / "t.distilloop.db"
    first = subprocess.Popen([*CLI, "run", "-q", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(db, "select count(*) from teacher_calls where status = 'ok'", 5, first)
        # readers work during the run, and say who is writing
        status = subprocess.run([*CLI, "status", "--json", str(cfg)], capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["writer"]["pid"] == first.pid
        second = subprocess.run([*CLI, "run", "-q", str(cfg)], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "is being written by `distilloop run`" in lines[0]
        assert f"pid {first.pid}" in lines[0] and "status" in lines[0]
        review = subprocess.run([*CLI, "review", "pull", str(cfg)], capture_output=True, text=True, timeout=60)
        assert review.returncode == 2 and f"pid {first.pid}" in review.stderr
        # new data and relabeling write too: refused while the run holds the store, nothing added
        more = tmp_path / "more.jsonl"
        more.write_text(json.dumps({"id": "new-1", "text": "a new review"}) + "\n")
        add = subprocess.run([*CLI, "add", str(cfg), str(more)], capture_output=True, text=True, timeout=60)
        assert add.returncode == 2 and f"pid {first.pid}" in add.stderr, add.stderr
        relabel = subprocess.run([*CLI, "relabel", "--stale", str(cfg)], capture_output=True, text=True, timeout=60)
        assert relabel.returncode == 2 and f"pid {first.pid}" in relabel.stderr, relabel.stderr
        export = subprocess.run([*CLI, "export", "-o", str(tmp_path / "x.jsonl"), str(cfg)], capture_output=True,
                                text=True, timeout=60)
        assert export.returncode == 0, export.stderr
        assert first.wait(timeout=180) == 0, first.stderr.read().decode()
    finally:
        if first.poll() is None:
            first.kill()
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from teacher_calls where status in ('interrupted', 'in_flight')"
                       ).fetchone()[0] == 0
    dup = con.execute("select request_hash from teacher_calls where status = 'ok' group by request_hash "
                      "having count(*) > 1").fetchall()
    assert dup == []
    assert [r[0] for r in con.execute("select status from rounds order by round")] == ["done", "done"]
    assert con.execute("select count(*) from examples where id = 'new-1'").fetchone()[0] == 0
    assert holder(db) is None and not (tmp_path / "t.distilloop.db.lock").exists()


def test_the_lock_is_per_store_and_released_on_close(tmp_path):
    path = tmp_path / "c.db"
    store = Store.create(path, [Example("a", {"text": "x"})], {}, writer="run")
    with pytest.raises(StoreLocked, match=f"pid {os.getpid()}"):
        Store.open(path, writer="review pull")
    reader = Store.open(path)  # readers take no lock
    assert reader.examples() == store.examples()
    reader.close()
    store.close()
    Store.open(path, writer="review pull").close()


def test_a_killed_writer_leaves_no_lock(tmp_path):
    path = tmp_path / "c.db"
    Store.create(path, [Example("a", {"text": "x"})], {}).close()
    code = (f"from distilloop.storage.store import Store; s = Store.open({str(path)!r}, writer='run'); "
            "print('locked', flush=True); import time; time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"locked"
        with pytest.raises(StoreLocked):
            Store.open(path, writer="run")
        assert holder(path)["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    Store.open(path, writer="run").close()  # the kernel dropped the lock with the process


def test_two_processes_creating_one_store_never_both_win(tmp_path):
    cfg = replay_config(tmp_path, rounds="max_rounds = 1\ninitial_size = 5\nconcurrency = 1")
    procs = [subprocess.Popen([*CLI, "run", "-q", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    codes = [p.wait(timeout=180) for p in procs]
    assert 0 in codes and set(codes) <= {0, 2}, [p.stderr.read().decode() for p in procs]
    con = sqlite3.connect(tmp_path / "t.distilloop.db")
    assert con.execute("select count(*) from rounds").fetchone()[0] == 1
    dup = con.execute("select request_hash from teacher_calls where status = 'ok' group by request_hash "
                      "having count(*) > 1").fetchall()
    assert dup == [] and [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
