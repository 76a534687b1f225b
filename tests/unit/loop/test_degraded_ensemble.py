"""A degraded ensemble never looks unanimous: a teacher that fails, answers outside the label set or is refused
by the budget votes as dissent; an even split is never settled by the order of the labels."""

from __future__ import annotations

import gzip
import json

from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import FIXTURES, campaign_toml


def recording(tmp_path, answers):
    """A replay file: teacher 'a' as recorded in the fixture, and teachers answering by ``answers(row)``."""
    rows = [json.loads(x) for x in gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt")]
    out = [r for r in rows if r["teacher"] == "a"]
    for r in rows:
        if r["teacher"] == "a":
            for name, label in answers(r).items():
                out.append({**r, "teacher": name, "raw": json.dumps({"rationale": "because", "label": label})})
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    return path


def campaign(tmp_path, rec, teachers, extra=""):
    tmp_path.mkdir(parents=True, exist_ok=True)
    body = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "m"\npath = "{rec}"\nsource = "{t}"\n'
                   for t in teachers)
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(rounds="max_rounds = 1\ninitial_size = 30", extra=body + extra))
    return Campaign.open(load_config(path))


def test_a_teacher_answering_outside_the_label_set_is_dissent_even_at_min_agreement_1(tmp_path):
    rec = recording(tmp_path, lambda r: {"bad": "neutral"})
    c = campaign(tmp_path, rec, ["a", "bad"], '[routing]\nmin_agreement = 1.0\n[review]\nkind = "simulated"\n'
                                              'delay_rounds = 5\n')
    c.run()
    rows = c.store.consensus_rows(1)
    assert len(rows) == 30
    assert all(r["route"] == "review" and r["agreement"] <= 0.5 and r["n_votes"] == 1 and r["n_asked"] == 2
               for r in rows)
    assert not [r for r in c.store.labeled() if r["source"] == "teachers"]  # nothing accepted as agreed
    c.close()


def test_a_teacher_with_no_answer_at_all_counts_as_dissent(tmp_path):
    # 'ghost' has a recorded answer for one pool item only: its call fails on every other item
    rec = recording(tmp_path, lambda r: {"ghost": "positive"} if r["example_id"] == "rt-02169" else {})
    c = campaign(tmp_path, rec, ["a", "ghost"], "[routing]\nmin_agreement = 0.75\n")
    c.env.retry.backoff_s = 0.0
    c.run()
    rows = [r for r in c.store.consensus_rows(1) if r["example_id"] != "rt-02169"]
    assert rows and all(r["n_asked"] == 2 and r["n_votes"] == 1 and r["agreement"] <= 0.5 for r in rows)
    assert all(r["route"] == "review" for r in rows)
    assert any(v["teacher"] == "ghost" and not v["valid"] for v in rows[0]["votes"])  # shown as a missing vote
    c.close()


def test_two_teachers_without_confidences_do_not_settle_an_even_split_by_label_order(tmp_path):
    def flip(r):
        said = json.loads(r["raw"])["label"]
        return {"contrary": "positive" if said == "negative" else "negative"}

    rec = recording(tmp_path, flip)
    for order in (["a", "contrary"], ["contrary", "a"]):
        c = campaign(tmp_path / "x".join(order), rec, order, '[routing]\nmin_agreement = 0.5\n')
        c.run()
        rows = c.store.consensus_rows(1)
        assert rows and all(r["label"] is None for r in rows), order  # nobody won: left to review
        assert c.store.labeled() == []  # the automatic reviewer has nothing to accept
        c.close()


def test_items_no_teacher_answered_are_said_and_go_back_to_the_pool(tmp_path):
    """Rows added after the teachers' answers were recorded (or items a provider refuses every time): each teacher
    failed them while it answered the rest, and the round showed only fewer labels than items asked. It says
    how many, why and which; they stay unlabeled in the pool."""
    import subprocess
    import sys

    rows = (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()
    extra = [json.dumps({"id": f"new-{k}", "text": f"an unseen review {k}", "label": "positive", "split": "pool"})
             for k in range(6)]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(rows + extra) + "\n")
    rec = recording(tmp_path, lambda r: {"b": json.loads(r["raw"])["label"]})
    body = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "m"\npath = "{rec}"\nsource = "{t}"\n'
                   for t in ("a", "b"))
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(data=data, rounds="max_rounds = 1\ninitial_size = 126", extra=body))
    proc = subprocess.run([sys.executable, "-m", "distilloop.cli", "run", "-q", str(path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "round 1: 6 of 126 item(s) got no answer from any teacher (a: cannot estimate: teacher a: no recorded " \
           "answer for example 'new-" in said, said
    assert "they went back to the pool unlabeled (e.g. new-" in said
    c = Campaign.open(load_config(path))
    try:
        labeled = {r["example_id"] for r in c.store.labeled()}
    finally:
        c.close()
    assert len(labeled) == 120 and not any(i.startswith("new-") for i in labeled)
