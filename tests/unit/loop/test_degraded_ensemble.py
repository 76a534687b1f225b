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
