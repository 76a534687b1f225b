"""Training is idempotent: a kill after a round's student was saved, or recorded and promoted, leaves one student
per round with its files, the same as the uninterrupted run; and a campaign folder moved elsewhere resumes."""

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from distilloop.students.base import Student
from tests.conftest import replay_config

CLI = [sys.executable, "-m", "distilloop.cli"]
ROUNDS = "max_rounds = 3\ninitial_size = 20\nbatch_size = 15\nconcurrency = 2"


def run(cfg, failpoint=None, *args):
    env = {**os.environ}
    env.pop("DISTILLOOP_FAILPOINT", None)
    if failpoint:
        env["DISTILLOOP_FAILPOINT"] = failpoint
    return subprocess.run([*CLI, *(args or ("run", "-q")), str(cfg)], capture_output=True, text=True, timeout=300,
                          env=env)


def students(folder):
    con = sqlite3.connect(folder / "t.distilloop.db")
    return con.execute("select version, round, metrics, promoted, active, path from students order by round").fetchall()


@pytest.mark.parametrize("point", ["student_saved", "student_recorded"])
def test_a_kill_in_training_trains_each_round_once(tmp_path, point):
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    ref, cut = replay_config(tmp_path / "ref", rounds=ROUNDS), replay_config(tmp_path / "cut", rounds=ROUNDS)
    assert run(ref).returncode == 0
    kills = 0  # killed in round 1, then (the resumed run reaching the point once more for that round) in the next
    while (r := run(cut, f"{point}:{1 if kills == 0 else 2}")).returncode == -9 and kills < 10:
        kills += 1
    assert r.returncode == 0, r.stderr
    assert kills >= 2
    a, b = students(tmp_path / "ref"), students(tmp_path / "cut")
    assert [row[:5] for row in a] == [row[:5] for row in b]  # one student a round, the same, the same promoted
    assert sum(row[4] for row in b) == 1
    for row in b:  # every recorded student has its files, stored relative to the campaign folder
        assert not os.path.isabs(row[5])
        Student.load(tmp_path / "cut" / row[5])


def test_a_moved_campaign_folder_resumes(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    cfg = replay_config(a, rounds=ROUNDS)
    assert run(cfg, None, "run", "-q", "--rounds", "1").returncode == 0
    b = tmp_path / "elsewhere" / "b"
    shutil.move(str(a), str(b))
    r = run(b / "campaign.toml")
    assert r.returncode == 0, r.stderr
    rows = students(b)
    assert len(rows) == 3 and all(not os.path.isabs(p) for *_, p in rows)
    listed = run(b / "campaign.toml", None, "students")
    assert listed.returncode == 0 and listed.stdout.count("round") == 3
    exported = run(b / "campaign.toml", None, "students", "--export", str(tmp_path / "out"))
    assert exported.returncode == 0, exported.stderr
    assert Student.load(tmp_path / "out").is_fitted()
