"""A campaign killed (SIGKILL) in the middle of a round resumes without paying twice or losing labels."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from tests.conftest import replay_config, sqlite_count


def start_then_wait_in_round_2(tmp_path, max_rounds, settled):
    """A replay campaign run by the CLI in its own session, once ``settled`` calls of its round 2 are answered:
    (campaign file, store, process)."""
    cfg = replay_config(tmp_path, latency=0.05, rounds=f"max_rounds = {max_rounds}\ninitial_size = 20\n"
                                                       "batch_size = 20\nconcurrency = 2")
    db = tmp_path / "t.distilloop.db"
    proc = subprocess.Popen([sys.executable, "-m", "distilloop.cli", "run", "-q", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while sqlite_count(db, "select count(*) from teacher_calls where round = 2 and status = 'ok'") < settled:
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError("the campaign never reached round 2: " + proc.stderr.read())
        time.sleep(0.02)
    return cfg, db, proc


def test_sigkill_mid_round_then_resume(tmp_path):
    cfg, db, proc = start_then_wait_in_round_2(tmp_path, 3, 10)  # killed inside round 2, some of its calls settled
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    labeled_before = sqlite_count(db, "select count(*) from labels")
    assert labeled_before >= 20  # round 1 finished

    resumed = subprocess.run([sys.executable, "-m", "distilloop.cli", "run", "-q", str(cfg)],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    con = sqlite3.connect(db)
    # no answer was bought twice
    dup = con.execute("select request_hash, count(*) from teacher_calls where status = 'ok' "
                      "group by request_hash having count(*) > 1").fetchall()
    assert dup == []
    # nothing labeled was lost; three full rounds are done
    assert con.execute("select count(*) from labels").fetchone()[0] >= labeled_before
    assert [r[0] for r in con.execute("select status from rounds order by round")] == ["done"] * 3
    # every round-1 and round-2 selection got its answers
    missing = con.execute("select count(*) from selections s where not exists (select 1 from consensus c "
                          "where c.example_id = s.example_id)").fetchone()[0]
    assert missing == 0
    # the ledger is exactly the sum of the recorded calls
    ledger = con.execute("select sum(tokens_in), sum(tokens_out), round(sum(usd), 9) from ledger").fetchone()
    calls = con.execute("select sum(tokens_in), sum(tokens_out), round(sum(cost_usd), 9) from teacher_calls").fetchone()
    assert ledger == calls
    assert con.execute("select count(*) from teacher_calls where status = 'in_flight'").fetchone()[0] == 0


def test_sigterm_mid_round_stops_as_ctrl_c_does_and_resumes(tmp_path):
    """SIGTERM (``kill``, ``docker stop``, a scheduler's time limit) stops a run with one line and exit code 143,
    the writer's lock released and nothing in flight left open; ``run`` then finishes without paying twice.
    Before, the process died on the signal's default action, saying nothing."""
    from distilloop.storage.lock import holder

    cfg, db, proc = start_then_wait_in_round_2(tmp_path, 2, 5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == ("terminated (SIGTERM): the campaign is checkpointed; `distilloop run` "
                                            "resumes it")
    assert holder(db) is None
    con = sqlite3.connect(db)
    assert con.execute("select status from rounds where round = 2").fetchone()[0] != "done"
    con.close()
    resumed = subprocess.run([sys.executable, "-m", "distilloop.cli", "run", "-q", str(cfg)],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("select status from rounds order by round")] == ["done", "done"]
    assert con.execute("select count(*) from teacher_calls where status = 'ok' group by request_hash "
                       "having count(*) > 1").fetchall() == []
