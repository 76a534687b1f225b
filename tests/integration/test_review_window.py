"""A kill right after a round's consensus is committed (before its reviews are pulled and its student trained),
in every round: the resumed campaign ends exactly where the uninterrupted one does, reviews, reliability and
students included."""

import os
import sqlite3
import subprocess
import sys

from tests.conftest import replay_config

CLI = [sys.executable, "-m", "distilloop.cli"]
ROUNDS = "max_rounds = 3\ninitial_size = 20\nbatch_size = 15\nconcurrency = 2"


def run(cfg, failpoint=None):
    env = {**os.environ}
    env.pop("DISTILLOOP_FAILPOINT", None)
    if failpoint:
        env["DISTILLOOP_FAILPOINT"] = failpoint
    return subprocess.run([*CLI, "run", "-q", str(cfg)], capture_output=True, text=True, timeout=300, env=env)


def state(db):
    con = sqlite3.connect(db)
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    return {
        "consensus": q("select example_id, round, label, agreement, route from consensus order by example_id"),
        "labels": q("select example_id, label, source, round from labels order by example_id"),
        "reviews": q("select example_id, round, label, source from reviews order by example_id"),
        "reliability": q("select teacher, true_label, given_label, round(prob, 9), n_items, n_known "
                         "from reliability_estimates order by 1, 2, 3"),
        "students": q("select version, round, metrics, promoted, active from students order by round"),
    }


def test_a_kill_between_the_commit_and_the_reviews_changes_nothing(tmp_path):
    extra = '[review]\nkind = "simulated"\n[aggregation]\nmethod = "dawid_skene"\n'
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    ref = replay_config(tmp_path / "ref", rounds=ROUNDS, extra=extra)
    cut = replay_config(tmp_path / "cut", rounds=ROUNDS, extra=extra)
    assert run(ref).returncode == 0
    kills = 0
    while (r := run(cut, failpoint="committed:1")).returncode == -9:
        kills += 1
    assert r.returncode == 0, r.stderr
    assert kills == 3  # once in every round
    a, b = state(tmp_path / "ref" / "t.distilloop.db"), state(tmp_path / "cut" / "t.distilloop.db")
    assert a["reviews"] and a["reliability"]
    for key in a:
        assert a[key] == b[key], key
