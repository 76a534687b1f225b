"""What a review teaches the student (``[routing] review_trust``): the reviewer's answer as the target, as one more
vote beside the teachers', or whichever of the two scores better on the decision reference."""

import json
from types import SimpleNamespace

import pytest

from distilloop.errors import ConfigError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.loop.steps import train
from distilloop.reports.table import describe_scores, pct
from tests.conftest import FIXTURES, replay_config


class _Store:
    def __init__(self, consensus):
        self._c = consensus

    def consensus(self, example_id):
        return self._c.get(example_id)


LABELED = [
    {"example_id": "t", "label": "positive", "source": "teachers", "soft_label": {"negative": 0.2, "positive": 0.8}},
    {"example_id": "r", "label": "negative", "source": "simulated", "soft_label": {"negative": 1.0, "positive": 0.0}},
    {"example_id": "h", "label": "positive", "source": "human", "soft_label": {"negative": 0.0, "positive": 1.0}},
    {"example_id": "x", "label": "negative", "source": "human", "soft_label": {"negative": 1.0, "positive": 0.0}},
]
CONSENSUS = {"r": {"soft_label": {"negative": 0.4, "positive": 0.6}, "n_votes": 2},
             "h": {"soft_label": {"negative": 0.8, "positive": 0.2}, "n_votes": 1}}


def test_label_keeps_the_reviewers_answer_as_the_target():
    assert train.review_targets(_Store(CONSENSUS), LABELED, "label") == [r["soft_label"] for r in LABELED]


def test_vote_counts_the_reviewer_once_beside_each_teacher():
    soft = train.review_targets(_Store(CONSENSUS), LABELED, "vote")
    assert soft[0] == LABELED[0]["soft_label"]  # a teachers' label is untouched
    # two teacher votes and the reviewer's: 2/3 of the teachers' distribution, 1/3 the reviewer's label
    assert soft[1] == pytest.approx({"negative": 2 / 3 * 0.4 + 1 / 3, "positive": 2 / 3 * 0.6})
    assert soft[2] == pytest.approx({"negative": 0.4, "positive": 0.1 + 0.5})  # one teacher vote: half each
    assert soft[3] == LABELED[3]["soft_label"]  # no verdict to vote beside (an audit answer): the reviewer's alone


def _env(student, how):
    return SimpleNamespace(parts=SimpleNamespace(student=student),
                           config=SimpleNamespace(routing=SimpleNamespace(review_trust=how)))


@pytest.mark.parametrize(("soft", "cheap", "how", "reviewed", "expected"), [
    (True, True, "auto", True, ("label", "vote")),
    (True, False, "auto", True, ("label",)),  # a student slow to refit is not fitted twice
    (True, False, "vote", True, ("vote",)),
    (True, True, "label", True, ("label",)),
    (True, True, "auto", False, ("label",)),  # nothing reviewed: nothing to compare
    (False, True, "auto", True, ("label",)),  # a hard-label student learns the reviewer's label
])
def test_which_readings_a_round_fits(soft, cheap, how, reviewed, expected):
    student = SimpleNamespace(uses_soft_labels=soft, cheap_to_refit=cheap)
    labeled = LABELED if reviewed else LABELED[:1]
    assert train.review_readings(_env(student, how), labeled) == expected


def test_an_unknown_setting_is_named(tmp_path):
    path = replay_config(tmp_path, extra="")
    path.write_text(path.read_text().replace("min_agreement = 0.7", 'min_agreement = 0.7\nreview_trust = "votes"'))
    with pytest.raises(ConfigError, match=r"routing.review_trust: must be one of auto, label, vote.*'votes'"):
        load_config(path)


def _campaign(tmp_path, how, dev=40, student="tune_class_weight = false\n"):
    """One round on the replay fixture, every item below min_agreement reviewed by the simulated reviewer, an
    embedding student (the packaged MiniLM), and 40 of the test rows as a dev split (the decision reference)."""
    tmp_path.mkdir(parents=True)
    rows = [json.loads(line) for line in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()]
    n_dev = 0
    for r in rows:
        if r["split"] == "test" and n_dev < dev:
            r["split"], n_dev = "dev", n_dev + 1
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    extra = ('[review]\nkind = "simulated"\n[student]\nkind = "embedding_linear"\nmodel = "minilm"\n'
             'C = 10.0\n' + student)
    path = replay_config(tmp_path, extra=extra, data=data,
                         rounds="max_rounds = 1\ninitial_size = 60\nbatch_size = 60\nconcurrency = 4")
    path.write_text(path.read_text().replace("min_agreement = 0.7",
                                             f'min_agreement = 0.9\nreview_trust = "{how}"'))
    c = Campaign.open(load_config(path))
    c.run()
    (student,) = c.store.students()
    reviewed = sum(r["source"] == "simulated" for r in c.store.labeled())
    c.close()
    return student["metrics"], reviewed


def test_auto_keeps_the_reading_that_scores_better_on_the_decision_reference(tmp_path):
    auto, reviewed = _campaign(tmp_path / "auto", "auto")
    assert reviewed > 0
    trust = auto["review_trust"]
    assert trust["reference"] == auto["reference"] == "gold:dev"
    assert trust["reviewed"] == reviewed and set(trust["scores"]) == {"label", "vote"}
    assert trust["scores"]["label"] != trust["scores"]["vote"]  # the two readings train different students here
    best = max(trust["scores"].values())
    assert trust["chosen"] == ("label" if trust["scores"]["label"] == best else "vote")
    assert auto["refs"]["gold:dev"]["accuracy"] == best  # the student kept is the one that scored best
    # the student's C, tuned on the same reference: the kept student is the best of every (reading, C)
    tuned = auto["tuned"]
    assert set(tuned["scores"]) == {"C=10", "C=3.3333", "C=30"} and tuned["reference"] == "gold:dev"
    assert max(tuned["scores"].values()) == best == tuned["scores"][f"C={tuned['chosen']['C']:g}"]
    # what status and the report print about it
    line = describe_scores(auto)
    assert (f"{reviewed} reviews read as {trust['chosen']} (review_trust = auto; accuracy on gold:dev: "
            f"label {pct(trust['scores']['label'])}, vote {pct(trust['scores']['vote'])})") in line
    assert f"C = {tuned['chosen']['C']:g} chosen on gold:dev (C=10 {pct(tuned['scores']['C=10'])}" in line
    # each reading, set explicitly, trains the student auto scored for it (the same seed, the same targets)
    for how in ("label", "vote"):
        alone, _ = _campaign(tmp_path / how, how)
        assert alone["review_trust"]["scores"] == {how: trust["scores"][how]}
        assert alone["refs"]["gold:dev"]["accuracy"] == trust["scores"][how]


def test_the_class_weight_is_chosen_with_C_by_default(tmp_path):
    metrics, _ = _campaign(tmp_path / "both", "vote", student="")
    tuned = metrics["tuned"]
    # the three Cs with the classes by their mass, then the same three with the classes balanced: chosen together
    grid = [f"C={C}, class_weight={w}" for w in ("none", "balanced") for C in ("10", "3.3333", "30")]
    assert list(tuned["scores"]) == grid
    assert set(tuned["chosen"]) == {"C", "class_weight"}
    chosen = f"C={tuned['chosen']['C']:g}, class_weight={tuned['chosen']['class_weight']}"
    assert tuned["scores"][chosen] == max(tuned["scores"].values()) == metrics["refs"]["gold:dev"]["accuracy"]
    assert (f"C = {tuned['chosen']['C']:g}, class_weight = {tuned['chosen']['class_weight']} chosen on gold:dev "
            "(C=10, class_weight=none ") in describe_scores(metrics)
    assert f"class_weight=none {pct(tuned['scores']['C=10, class_weight=none'])}; C=3.3333" in describe_scores(metrics)


def test_nothing_is_chosen_on_the_test_split_the_report_shows(tmp_path):
    metrics, reviewed = _campaign(tmp_path / "no-dev", "auto", dev=0)
    assert reviewed > 0 and metrics["reference"] == "gold:test"
    # one fit: the configured C, the reviews as labels; nothing selected on the split whose score is reported
    assert "tuned" not in metrics
    assert metrics["review_trust"]["chosen"] == "label" and list(metrics["review_trust"]["scores"]) == ["label"]


def test_a_tie_keeps_the_reviews_read_as_votes_then_the_first_parameters():
    fitted = [("label", {"C": 1.0}, "a", {}, 0.8), ("label", {"C": 3.0}, "b", {}, 0.9),
              ("vote", {"C": 1.0}, "c", {}, 0.9), ("vote", {"C": 3.0}, "d", {}, 0.9)]
    assert train.kept(fitted)[2] == "c"
    assert train.kept(fitted[:2])[2] == "b"  # the best score first
    assert train.kept([fitted[1], ("label", {"C": 9.0}, "e", {}, 0.9)])[2] == "b"  # then the first fitted
