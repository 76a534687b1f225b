"""Inputs longer than a teacher's context window (``context_tokens``; a local model's ``n_ctx``): ``[data] too_long
= "truncate"`` (the default) cuts the longest field to fit, with a marker, and says so each round with how much
of the text the teachers read; ``"skip"`` leaves such items out of the pool and says how many."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from distilloop.annotators.replay import ReplayTeacher
from distilloop.core.types import LabelingItem
from distilloop.loop import fit
from tests.conftest import FIXTURES, campaign_toml

WINDOW = 1200


def cli(*args):
    return subprocess.run([sys.executable, "-m", "distilloop.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def long_data(tmp_path):
    """rt_tiny with every tenth pool row's text forty times over (about 4,000 characters)."""
    rows = [json.loads(line) for line in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()]
    pool = [r for r in rows if r["split"] == "pool"]
    long_ids = {r["id"] for r in pool[::10]}
    for r in rows:
        if r["id"] in long_ids:
            r["text"] = " ".join([r["text"]] * 40)
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data, long_ids


def config(tmp_path, policy):
    data, long_ids = long_data(tmp_path)
    teachers = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "m"\npath = '
                       f'"{FIXTURES / "rt_tiny_replay.jsonl.gz"}"\nsource = "{t}"\ncontext_tokens = {WINDOW}\n'
                       for t in ("a", "c"))
    cfg = tmp_path / f"{policy}.toml"
    body = campaign_toml(name=policy, data=data, rounds="max_rounds = 3\ninitial_size = 40\nbatch_size = 40",
                         extra=teachers)
    cfg.write_text(body.replace(f'path = "{data}"', f'path = "{data}"\ntoo_long = "{policy}"'))
    return cfg, long_ids


def test_a_long_input_is_cut_to_the_longest_prefix_that_fits_with_a_marker():
    teacher = ReplayTeacher(name="a", model="m", path=str(FIXTURES / "rt_tiny_replay.jsonl.gz"), context_tokens=WINDOW)
    text = "A deft, warm and very funny film. " * 60
    item = LabelingItem("x", {"text": text}, ("negative", "positive"), "Classify the sentiment.")
    assert fit.overflows(item, [teacher])
    cut = fit.fit(item, [teacher], "truncate")
    assert cut is not None and cut.fields["text"].endswith(fit.MARK) and not fit.overflows(cut, [teacher])
    kept = cut.fields["text"].removesuffix(fit.MARK)
    assert text.startswith(kept) and 0 < len(kept) < len(text)
    longer = LabelingItem("x", {"text": text[:len(kept) + 40] + fit.MARK}, item.labels, item.task)
    assert fit.overflows(longer, [teacher])  # the longest prefix: forty more characters do not fit
    assert fit.fit(item, [teacher], "skip") is None
    short = LabelingItem("y", {"text": "Fine."}, item.labels, item.task)
    assert fit.fit(short, [teacher], "truncate") is short


def test_truncated_items_are_said_each_round_with_how_much_the_teachers_read(tmp_path):
    cfg, long_ids = config(tmp_path, "truncate")
    run = cli("run", cfg)
    assert run.returncode == 0, run.stderr
    err = " ".join(run.stderr.split())
    notes = re.findall(r"round (\d): (\d+) of 40 item\(s\) were cut to fit the context window of a "
                       rf"\({WINDOW:,} tokens\): the teachers read (\d+)% of their text on average", err)
    assert notes and all(0 < int(n) <= len(long_ids) and 2 <= int(pct) <= 60 for _, n, pct in notes), err
    assert sum(int(n) for _, n, _ in notes) == len(long_ids)  # three rounds of 40 pick the whole pool: each long item once
    assert 'too_long = "skip" leaves such items out instead' in err


def test_skipped_items_never_enter_a_round(tmp_path):
    cfg, long_ids = config(tmp_path, "skip")
    run = cli("run", cfg)
    assert run.returncode == 0, run.stderr
    err = " ".join(run.stderr.split())
    assert f"{len(long_ids)} pool item(s) are too long for a teacher's context window and are skipped" in err
    assert "were cut to fit" not in err
    import sqlite3

    con = sqlite3.connect(tmp_path / "skip.distilloop.db")
    picked = {r[0] for r in con.execute("select example_id from selections")}
    assert picked and not picked & long_ids
