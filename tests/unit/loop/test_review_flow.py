"""The campaign's verdict and review flow on the synthetic replay fixture (teachers a 90%, b 75%, c 60% right)."""

import json
import re

import pytest

from distilloop.cli import main
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import replay_config

ONE_ROUND = "max_rounds = 1\ninitial_size = 40\nbatch_size = 20\nconcurrency = 4"


def run(tmp_path, extra="", rounds=ONE_ROUND, min_agreement=None, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = replay_config(tmp_path, extra=extra, rounds=rounds, **kw)
    if min_agreement is not None:
        path.write_text(path.read_text().replace("min_agreement = 0.7", f"min_agreement = {min_agreement}"))
    c = Campaign.open(load_config(path))
    c.run()
    return path, c


def test_cascade_asks_later_tiers_only_for_unsure_items(tmp_path):
    _, full = run(tmp_path / "full")
    full_calls = len(full.store.calls())
    full.close()
    (tmp_path / "c2").mkdir()
    path = replay_config(tmp_path / "c2", rounds=ONE_ROUND)
    text = path.read_text().replace("min_agreement = 0.7", 'min_agreement = 0.7\ncascade = ["a", "b", "c"]')
    path.write_text(text)
    c = Campaign.open(load_config(path))
    c.run()
    calls = c.store.calls()
    by_teacher = {t: sum(1 for x in calls if x.teacher == t) for t in "abc"}
    assert by_teacher["a"] == by_teacher["b"] == 40  # the fixture has no confidences: a is always "unsure"
    assert 0 < by_teacher["c"] < 40  # c only where a and b disagree
    assert len(calls) < full_calls
    for ex in c.store.selection(1):
        cons = c.store.consensus(ex)
        votes = {v["teacher"]: v["label"] for v in cons["votes"]}
        assert cons["tiers_asked"] == (3 if votes["a"] != votes["b"] else 2)
    c.close()


def test_cascade_config_names_real_teachers(tmp_path):
    from distilloop.errors import ConfigError

    path = replay_config(tmp_path)
    path.write_text(path.read_text().replace("min_agreement = 0.7", 'min_agreement = 0.7\ncascade = ["a", "z"]'))
    with pytest.raises(ConfigError, match="no teacher named 'z'"):
        load_config(path)


def test_dawid_skene_campaign_stores_reliability_and_agreement(tmp_path, capsys):
    path, c = run(tmp_path, extra='[aggregation]\nmethod = "dawid_skene"\n[review]\nkind = "simulated"\n',
                  min_agreement=0.97)
    rel = {(r["teacher"], r["true_label"], r["given_label"]): r["prob"] for r in c.store.reliability()}
    assert rel and rel[("a", "positive", "positive")] > rel[("c", "positive", "positive")]
    cons = [c.store.consensus(ex) for ex in c.store.selection(1)]
    assert all(x["method"] == "dawid_skene" and x["vote_share"] is not None for x in cons)
    assert all(abs(sum(x["soft_label"].values()) - 1) < 1e-6 for x in cons)
    sources = {r["source"] for r in c.store.labeled()}
    assert "simulated" in sources  # reviewed items answered from gold, named as such
    assert all(r["source"] == "simulated" for r in c.store.reviews())
    c.close()
    assert main(["status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "teacher reliability per class" in out and "SIMULATED" in out


def test_review_cap_per_round(tmp_path):
    path = replay_config(tmp_path, rounds=ONE_ROUND)
    path.write_text(path.read_text().replace("min_agreement = 0.7", "min_agreement = 0.7\nmax_review_per_round = 2"))
    c = Campaign.open(load_config(path))
    c.run()
    assert sum(1 for ex in c.store.selection(1) if c.store.consensus(ex)["route"] == "review") == 2
    c.close()


def test_unreachable_label_studio_does_not_stop_the_campaign(tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LS_TEST_KEY", "k")
    extra = f'[review]\nkind = "label_studio"\nurl = "http://127.0.0.1:{port}"\napi_key_env = "LS_TEST_KEY"\ntimeout_s = 2\nmax_retries = 0\n'
    path, c = run(tmp_path, extra=extra)
    pending = c.store.pending_reviews()
    assert pending and all(r["external_id"] is None for r in pending)  # queued, not lost, not sent
    assert [r["status"] for r in c.store.rounds()] == ["done"]
    c.close()
    assert main(["review", "status", str(path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["pending"] == len(pending)
    assert main(["review", "push", str(path)]) == 1  # still unreachable: one clear line, no traceback
    assert "unreachable" in capsys.readouterr().err
    # the run's last lines said the items "wait for a reviewer" as if they were in Label Studio
    path.write_text(path.read_text().replace("max_rounds = 1", "max_rounds = 2"))
    assert main(["run", "-q", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    waiting = re.search(r"review: (\d+) item\(s\) wait for a reviewer \(label_studio\), (\d+) of them not sent \(the "
                        r"reviewer could not be reached", out)
    assert waiting and waiting[1] == waiting[2] and int(waiting[1]) >= len(pending), out


def test_reviewer_kappa_and_cli_pull_with_the_simulated_reviewer(tmp_path, capsys):
    extra = '[review]\nkind = "simulated"\ndelay_rounds = 5\n'
    path, c = run(tmp_path, extra=extra)
    pending = c.store.pending_reviews()
    assert pending and not c.store.reviews()  # delayed: nothing answered yet, nothing lost
    c.close()
    path.write_text(path.read_text().replace("delay_rounds = 5", "delay_rounds = 0"))
    assert main(["review", "pull", str(path)]) == 0
    assert f"pulled {len(pending)} review(s); 0 still pending" in capsys.readouterr().out
    from distilloop.storage.store import Store

    store = Store.open(load_config(path).store_path)
    ids = [r["example_id"] for r in pending][:4]
    # a second (human) reviewer on the same items: agrees on all but one
    for k, ex in enumerate(ids):
        gold = store.example(ex).gold
        other = gold if k else next(x for x in ("negative", "positive") if x != gold)
        store.record_review(ex, round_no=1, reviewer="ann", label=other, rationale=None, seconds_spent=3.0,
                            source="human")
    store.close()
    assert main(["status", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    ra = s["review_agreement"]
    assert ra["items_multi"] == len(ids) and ra["method"] == "cohen" and ra["kappa"] < 1.0
    assert s["teacher_reliability"]
    assert main(["status", str(path)]) == 0
    assert "reviewer agreement: cohen kappa" in capsys.readouterr().out
    assert main(["review", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"reviews recorded: \d+ \((human|simulated): \d+, (human|simulated): \d+\)", out)
    # who reviewed how many, how long each took, and how often they overturned the teachers' ensemble
    assert "  ann: 4 review(s), median 3 s each; " in out and " gave another label than the teachers' ensemble" in out


class Lines:
    def __init__(self):
        self.lines = []

    def print(self, text):
        self.lines.append(text)


def reliability_lines(items, known=None):
    from distilloop.annotators.aggregation import DawidSkene, reliability_rows
    from distilloop.cli.inspect import _print_reliability
    from distilloop.core.types import Vote

    ds = DawidSkene()
    ds.fit({ex: [Vote(t, lab) for t, lab in vs] for ex, vs in items.items()}, ("negative", "positive"), known)
    rows = [{**r, "method": ds.name, "n_items": ds.n_informative_, "n_known": len(known or {})}
            for r in reliability_rows(ds.reliability_)]
    out = Lines()
    _print_reliability(out, rows)
    return out.lines


def test_status_says_what_teacher_reliability_rests_on():
    # a cascade whose first teacher was sure everywhere: nothing to estimate from, and status says so
    alone = {f"x{i}": [("a", "positive" if i % 2 else "negative")] for i in range(40)}
    assert reliability_lines(alone) == [
        "teacher reliability per class: not estimated yet (no item has answers of two teachers or a human review; a "
        "cascade asks its next teacher only where the first is unsure)"]
    # 4 items answered together: counted, too few to show rates, and the two-teacher caveat
    both = {f"y{i}": [("a", "positive"), ("b", "positive" if i % 2 else "negative")] for i in range(4)}
    lines = reliability_lines({**alone, **both})
    assert "over 4 items answered by two or more teachers or reviewed, 0 human-reviewed" in lines[0]
    assert lines[1:] == ["  a: not estimated yet (it answered 4 of those items; 10 needed)",
                         "  b: not estimated yet (it answered 4 of those items; 10 needed)"]
    # 12 items answered together without a review: rates, resting on agreement alone, and said so
    twelve = {f"w{i}": [("a", "positive"), ("b", "positive" if i % 4 else "negative")] for i in range(12)}
    lines = reliability_lines({**alone, **twelve})
    assert lines[1].startswith("  a: balanced accuracy") and "nothing says which is right" in lines[-1]
    # 30 items answered together, 10 reviewed: per-class rates, and no caveat
    many = {f"z{i}": [("a", "positive" if i % 3 else "negative"), ("b", "positive")] for i in range(30)}
    lines = reliability_lines({**alone, **many}, known={f"z{i}": "positive" for i in range(10)})
    assert "over 30 items" in lines[0] and "10 human-reviewed as known truth" in lines[0]
    assert any(line.startswith("  a: balanced accuracy") for line in lines)
    assert not any("nothing says which is right" in line for line in lines)


def test_a_reviewer_who_overrules_the_label_does_not_get_the_overruled_rationale(tmp_path):
    """A reviewer who gives another label and writes no rationale: the training rationale is that of a teacher
    who answered the reviewer's label (the most confident), else none, never the verdict's rationale arguing for
    the overruled label (a step-by-step student would learn to explain one label with the other's reasons)."""
    from distilloop.loop.steps.review import rationale_for

    _, c = run(tmp_path, extra='[review]\nkind = "simulated"\ndelay_rounds = 0\n', min_agreement=0.99)
    try:
        labels = {r["example_id"]: r for r in c.store.labeled()}
        overruled = 0
        for r in c.store.reviews():
            cons = c.store.consensus(r["example_id"])
            got = labels[r["example_id"]]["rationale"]
            if r["label"] == cons["label"]:
                assert got == (r["rationale"] or cons["rationale"])
                continue
            overruled += 1
            votes = [v for v in cons["votes"] if v["label"] == r["label"] and v.get("rationale")]
            want = max(votes, key=lambda v: v["confidence"] or 0.0)["rationale"] if votes else None
            assert got == (r["rationale"] or want) and (got is None or got != cons["rationale"] or votes)
        assert overruled > 0
    finally:
        c.close()
    space = c.env.parts.space
    cons = {"label": "positive", "rationale": "glowing praise",
            "votes": [{"teacher": "a", "label": "positive", "rationale": "glowing praise", "confidence": 0.9},
                      {"teacher": "b", "label": "negative", "rationale": "a dull plot", "confidence": 0.6},
                      {"teacher": "c", "label": "negative", "rationale": "tedious", "confidence": 0.7}]}
    assert rationale_for("positive", cons, space) == "glowing praise"
    assert rationale_for("negative", cons, space) == "tedious"
    assert rationale_for("negative", {**cons, "votes": cons["votes"][:1]}, space) is None


def test_an_item_several_people_reviewed_takes_their_majority_then_the_teachers_label_on_a_tie(tmp_path):
    """A review project with two or three annotators per task sends every finished annotation of an item at
    once. Before, each was accepted in turn and the last one read won, whatever the others said; now every
    review is kept (reviewer agreement reads them) and the label is the majority's, on a tie the teachers' if it
    is among the tied, else the latest review's, with the latest rationale written for that label."""
    from distilloop.annotators.review import Reviewer
    from distilloop.core.types import ReviewDecision
    from distilloop.loop.steps.review import by_reviewer, pull_reviews, review_agreement

    path, c = run(tmp_path)
    space = c.config.space
    a, b, d = sorted(c.store.selection(1))[:3]
    teachers = {ex: c.store.consensus(ex)["label"] for ex in (a, b, d)}
    other = {ex: next(x for x in space.labels if x != teachers[ex]) for ex in (a, b, d)}

    class Panel(Reviewer):
        name = "panel"

        def submit(self, items):
            return {}

        def collect(self, pending):
            return [ReviewDecision(a, other[a], "x is right", "ann", "human"),
                    ReviewDecision(a, teachers[a], None, "bob", "human"),
                    ReviewDecision(a, other[a], "yes, x", "cy", "human"),
                    ReviewDecision(a, teachers[a], None, "dan", "human"),
                    ReviewDecision(a, other[a], None, "eve", "human"),
                    ReviewDecision(b, teachers[b], None, "bob", "human"),
                    ReviewDecision(b, other[b], "no", "ann", "human"),
                    ReviewDecision(d, other[d], "one", "ann", "human"),
                    ReviewDecision(d, other[d], None, "bob", "human"),
                    ReviewDecision(d, "seven", None, "cy", "human")]  # not a label: said, and not counted

    for ex in (a, b, d):
        c.store.enqueue_review(ex, 2, "panel")
    said: list[str] = []
    assert pull_reviews(c.store, Panel(), space, 2, warn=said.append) == 9
    assert said == [f"review of {d} gave 'seven', which is not one of the {space.describe()}; ignored (an item sent "
                    "for review stays in the queue until a review gives one of them)"]
    labels = {r["example_id"]: r for r in c.store.labeled()}
    assert (labels[a]["label"], labels[a]["rationale"]) == (other[a], "yes, x")  # 3 of 5
    assert labels[b]["label"] == teachers[b]  # 1 to 1: the teachers' label breaks the tie
    assert (labels[d]["label"], labels[d]["rationale"]) == (other[d], "one")  # the latest rationale for it
    assert sum(r["source"] == "human" for r in c.store.reviews(a)) == 5 and c.store.pending_review_count() == 0
    people = [(p["reviewer"], p["reviews"], p["changed"]) for p in by_reviewer(c.store)]  # for `review status`
    assert people == [("ann", 3, 3), ("bob", 3, 1), ("cy", 1, 1), ("dan", 1, 0), ("eve", 1, 1)]
    agreement = review_agreement(c.store, space)
    assert agreement["items_multi"] == 3 and agreement["kappa"] is not None
    c.close()


def test_a_review_changed_after_its_item_was_taken_replaces_the_recorded_one(tmp_path):
    """A reviewer corrects a slip in Label Studio after the campaign took the item: the review recorded is replaced
    (not counted twice), the item's label is settled again from its reviews (keeping the round it was labeled in),
    a review added later counts with the others, and the change is said. Before, what was taken was final."""
    from distilloop.annotators.review import Reviewer
    from distilloop.core.types import ReviewDecision
    from distilloop.loop.steps.review import pull_reviews

    path, c = run(tmp_path)
    space = c.config.space
    a, b = sorted(c.store.selection(1))[:2]
    teachers = {ex: c.store.consensus(ex)["label"] for ex in (a, b)}
    other = {ex: next(x for x in space.labels if x != teachers[ex]) for ex in (a, b)}
    seen: list[list[tuple[str, str | None, str | None]]] = []

    class Desk(Reviewer):
        name = "desk"
        later: list[ReviewDecision] = []

        def submit(self, items):
            return {}

        def collect(self, pending):
            return [ReviewDecision(a, other[a], "slip", "ann", "human", external_id="7", ref="70", version="v1"),
                    ReviewDecision(b, teachers[b], None, "bob", "human", external_id="8", ref="80", version="v1")]

        gone: list[tuple[str, str]] = []

        def revised(self, taken):
            seen.append([(r["example_id"], r["ref"], r["version"]) for r in taken])
            out, self.later = self.later, []
            return out

        def retracted(self):
            out, self.gone = self.gone, []
            return out

    desk = Desk()
    for ex, task in ((a, "7"), (b, "8")):
        c.store.enqueue_review(ex, 2, "desk", external_id=task)
    notes: list[str] = []
    assert pull_reviews(c.store, desk, space, 2, note=notes.append) == 2 and notes == []
    assert seen[-1] == [(a, "70", "v1"), (b, "80", "v1")]
    desk.later = [ReviewDecision(a, teachers[a], "read it again", "ann", "human", external_id="7", ref="70",
                                 version="v2"),
                  ReviewDecision(b, other[b], None, "cy", "human", external_id="8", ref="81", version="v1")]
    assert pull_reviews(c.store, desk, space, 3, note=notes.append) == 2
    labels = {r["example_id"]: r for r in c.store.labeled()}
    assert (labels[a]["label"], labels[a]["rationale"], labels[a]["round"]) == (teachers[a], "read it again", 2)
    people = [r for r in c.store.reviews(a) if r["source"] == "human"]
    assert [(r["reviewer"], r["label"], r["version"]) for r in people] == [("ann", teachers[a], "v2")]
    assert labels[b]["label"] == teachers[b]  # bob and cy split: the teachers' label breaks the tie
    assert [r["reviewer"] for r in c.store.reviews(b) if r["source"] == "human"] == ["bob", "cy"]
    assert notes == [f"2 review(s) changed in desk after their items were taken: 1 label(s) now differ ({a}: "
                     f"{other[a]} -> {teachers[a]}); the next student trains on them"]
    assert pull_reviews(c.store, desk, space, 3, note=notes.append) == 0 and len(notes) == 1
    # answers taken back: cy's leaves bob's to decide b; ann's was a's only one, so a waits again, unlabeled
    desk.gone = [(b, "81"), (a, "70")]
    assert pull_reviews(c.store, desk, space, 4, note=notes.append) == 2
    assert notes[-1] == (f"2 review(s) deleted in desk after their items were taken: 1 item(s) lost every review "
                         f"({a}) and wait for a reviewer again, untrained on")
    labels = {r["example_id"]: r["label"] for r in c.store.labeled()}
    assert a not in labels and labels[b] == teachers[b]
    assert [r["example_id"] for r in c.store.pending_reviews()] == [a]
    assert [r["reviewer"] for r in c.store.reviews(b) if r["source"] == "human"] == ["bob"]
    c.close()


def test_an_item_every_reviewer_skipped_is_left_out_and_taken_if_answered_later(tmp_path):
    """A reviewer that counts a skipped item done (Label Studio's "ignore skipped"): the item left the queue's
    pending count (it was said to wait for ever), stays unlabeled, and an answer given later is still taken."""
    from distilloop.annotators.review import Reviewer
    from distilloop.core.types import ReviewDecision
    from distilloop.loop.steps.review import pull_reviews

    path, c = run(tmp_path)
    space = c.config.space
    a = sorted(c.store.selection(1))[0]
    c.store.enqueue_review(a, 2, "desk", external_id="9")
    answers: list[ReviewDecision] = []

    class Desk(Reviewer):
        name = "desk"

        def submit(self, items):
            return {}

        def collect(self, pending):
            self.seen = [r["example_id"] for r in pending]
            return list(answers)

        def skipped(self):
            return [] if answers else [a]

    labeled_before = {r["example_id"] for r in c.store.labeled()}
    notes: list[str] = []
    assert pull_reviews(c.store, Desk(), space, 2, note=notes.append) == 0
    assert notes == ["1 item(s) skipped by their reviewers in desk, which counts them done: left out of training "
                     "(an answer given there later is taken)"]
    assert c.store.pending_review_count() == 0 and [r["example_id"] for r in c.store.skipped_reviews()] == [a]
    assert pull_reviews(c.store, Desk(), space, 2, note=notes.append) == 0 and len(notes) == 1  # said once
    [row] = [r for r in c.store.review_rows() if r.round == 2]  # the report's review table
    assert (row.routed, row.answered, row.pending, row.skipped) == (1, 0, 0, 1)
    from distilloop.reports.table import summary

    assert (summary(c.store)["pending_reviews"], summary(c.store)["skipped_reviews"]) == (0, 1)  # `status`
    assert {r["example_id"] for r in c.store.labeled()} == labeled_before
    answers.append(ReviewDecision(a, space.labels[0], None, "ann", "human", external_id="9"))
    desk = Desk()
    assert pull_reviews(c.store, desk, space, 3, note=notes.append) == 1 and desk.seen == [a]
    assert c.store.skipped_reviews() == [] and {r["example_id"]: r["label"] for r in c.store.labeled()}[a] == \
        space.labels[0]
    c.close()


def test_answers_with_no_label_to_read_are_said_not_left_silent(tmp_path):
    """A reviewer whose answers give no label the campaign can read (a labeling config people rewrote with two
    choice controls): the items stay pending, and the pull says why instead of nothing."""
    from distilloop.annotators.review import Reviewer
    from distilloop.loop.steps.review import pull_reviews

    path, c = run(tmp_path)
    a = sorted(c.store.selection(1))[0]
    c.store.enqueue_review(a, 2, "desk", external_id="5")

    class Desk(Reviewer):
        name = "desk"

        def submit(self, items):
            return {}

        def collect(self, pending):
            return []

        def unread(self):
            return [(a, "its answer is in controls 'sentiment', 'topic': name the answer's control 'label'")]

    said: list[str] = []
    assert pull_reviews(c.store, Desk(), c.config.space, 2, warn=said.append) == 0
    assert said == [f"1 item(s) answered in desk give no label the campaign can read ({a}: its answer is in controls "
                    "'sentiment', 'topic': name the answer's control 'label'); they stay pending until it can"]
    assert [r["example_id"] for r in c.store.pending_reviews()] == [a]
    c.close()
