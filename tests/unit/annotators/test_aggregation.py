import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distilloop.annotators.aggregation import (
    ConfidenceWeightedVote,
    DawidSkene,
    MajorityVote,
    rationale_stance,
    rationales_agree,
)
from distilloop.core.types import Vote

L = ("negative", "positive")


def v(t, label, conf=None, rationale=None, valid=True, dist=None):
    return Vote(t, label, rationale, conf, valid, dist)


def test_majority_vote_share_entropy_and_soft_label():
    out = MajorityVote().aggregate([v("a", "positive"), v("b", "positive"), v("c", "negative")], L)
    assert out.label == "positive"
    assert out.soft_label == pytest.approx({"negative": 1 / 3, "positive": 2 / 3})
    assert out.vote_share == pytest.approx(2 / 3) and out.agreement == pytest.approx(2 / 3)
    assert out.entropy == pytest.approx(-(1 / 3) * np.log(1 / 3) - (2 / 3) * np.log(2 / 3))


def test_no_valid_vote_gives_no_label():
    out = MajorityVote().aggregate([v("a", None, valid=False)], L)
    assert out.label is None and out.n_votes == 0


def test_confidence_weighting_can_overturn_the_plurality():
    votes = [v("a", "positive", 0.4), v("b", "positive", 0.45), v("c", "negative", 0.99)]
    assert MajorityVote().aggregate(votes, L).label == "positive"
    out = ConfidenceWeightedVote(use_distribution=False).aggregate(votes, L)
    assert out.label == "negative"
    assert out.vote_share == pytest.approx(1 / 3)  # the raw vote share is still reported
    assert sum(out.soft_label.values()) == pytest.approx(1.0)


def test_confidence_weighting_uses_full_distributions():
    votes = [v("a", "negative", 0.55, dist={"negative": 0.55, "positive": 0.45}),
             v("b", "positive", 0.95, dist={"negative": 0.05, "positive": 0.95})]
    out = ConfidenceWeightedVote().aggregate(votes, L)
    assert out.soft_label == pytest.approx({"negative": 0.3, "positive": 0.7})


@pytest.mark.parametrize("text,stance", [
    ("The review is clearly positive about the acting.", "positive"),
    ("This is not positive at all; a negative take.", "negative"),
    ("It says nothing about either.", None),
    ("Both positive and negative aspects.", None),
    (None, None),
])
def test_rationale_stance(text, stance):
    assert rationale_stance(text, L) == stance


def test_rationales_agree():
    same = [v("a", "positive", rationale="positive tone"), v("b", "positive", rationale="very positive")]
    split = [v("a", "positive", rationale="positive tone"), v("b", "negative", rationale="negative tone")]
    assert rationales_agree(same, L) is True
    assert rationales_agree(split, L) is False
    assert rationales_agree([v("a", "positive", rationale="great film")], L) is None
    assert MajorityVote().aggregate(split, L).rationales_agree is False


def synthetic(n, accs, rng, labels=L):
    """Items with a known truth and teachers of given accuracies (symmetric noise)."""
    truth = {f"x{i}": labels[int(rng.integers(len(labels)))] for i in range(n)}
    items = {}
    for ex, y in truth.items():
        votes = []
        for j, acc in enumerate(accs):
            right = rng.random() < acc
            label = y if right else next(x for x in labels if x != y)
            votes.append(Vote(f"t{j}", label))
        items[ex] = votes
    return truth, items


def test_dawid_skene_recovers_teacher_reliability_and_beats_majority():
    rng = np.random.default_rng(0)
    # one good teacher outvoted by two near-random ones: majority follows the noise, DS learns to trust t0
    truth, items = synthetic(400, [0.95, 0.6, 0.6], rng)
    ds = DawidSkene()
    out = ds.aggregate_many(items, L)
    maj = {ex: MajorityVote().aggregate(vs, L).label for ex, vs in items.items()}
    acc_ds = np.mean([out[ex].label == y for ex, y in truth.items()])
    acc_maj = np.mean([maj[ex] == y for ex, y in truth.items()])
    assert acc_ds > acc_maj + 0.05
    rel = ds.reliability_
    assert rel["t0"].accuracy("positive") > 0.8 and rel["t1"].accuracy("positive") < 0.75
    for r in rel.values():
        for row in r.matrix.values():
            assert sum(row.values()) == pytest.approx(1.0)


def test_dawid_skene_clamps_human_reviewed_items_and_learns_from_them():
    rng = np.random.default_rng(1)
    truth, items = synthetic(60, [0.9, 0.9, 0.5], rng)
    ex = next(iter(items))
    wrong = next(x for x in L if x != truth[ex])
    out = DawidSkene().aggregate_many(items, L, known={ex: wrong})
    assert out[ex].label == wrong and out[ex].soft_label[wrong] == pytest.approx(1.0)
    # reviews that say teacher t2 is always wrong lower its estimated accuracy
    base = DawidSkene()
    base.fit(items, L)
    known = {e: y for e, y in truth.items()}
    informed = DawidSkene()
    informed.fit(items, L, known)
    assert abs(informed.reliability_["t2"].accuracy("negative") - 0.5) < 0.2


def test_dawid_skene_learns_reliability_only_from_items_two_teachers_answered():
    """A cascade's items mostly carry one teacher's answer: those say nothing of its errors. The confusion
    matrices are learnt from the items answered together (``n_informative_``, what ``status`` reports them on);
    every item still gets its posterior, and a teacher that answered alone everywhere keeps the prior."""
    rng = np.random.default_rng(3)
    truth, both = synthetic(80, [0.9, 0.9, 0.9], rng)
    alone = {f"s{i}": [v("t0", L[i % 2], conf=0.55, dist={L[i % 2]: 0.55, L[1 - i % 2]: 0.45})] for i in range(300)}
    fitted = DawidSkene()
    out = fitted.aggregate_many({**both, **alone}, L)
    reference = DawidSkene()
    reference.fit(both, L)
    assert fitted.n_informative_ == 80 and reference.n_informative_ == 80
    assert all(fitted.reliability_["t0"].accuracy(label) > 0.8 for label in L)
    assert sum(fitted.reliability_["t0"].support.values()) == pytest.approx(80)  # the items answered together
    assert all(out[f"s{i}"].label == L[i % 2] for i in range(300))
    # one teacher alone on every item: nothing to learn from, the prior (better than chance) is all it has
    lone = DawidSkene()
    lone.fit(alone, L)
    assert lone.n_informative_ == 0
    assert lone.reliability_["t0"].accuracy("positive") == pytest.approx(2 / 3)
    assert sum(lone.reliability_["t0"].support.values()) == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["negative", "positive", None]), min_size=3, max_size=3),
                min_size=1, max_size=15))
def test_dawid_skene_soft_labels_are_distributions(rows):
    items = {f"x{i}": [Vote(f"t{j}", lab, valid=lab is not None) for j, lab in enumerate(r)] for i, r in enumerate(rows)}
    out = DawidSkene().aggregate_many(items, L)
    for ex, verdict in out.items():
        if any(vv.valid for vv in items[ex]):
            assert sum(verdict.soft_label.values()) == pytest.approx(1.0)
            assert all(0 <= p <= 1 for p in verdict.soft_label.values())
            if verdict.label is None:  # an unresolved tie: two labels share the top of the soft label
                top = max(verdict.soft_label.values())
                assert sum(p == pytest.approx(top) for p in verdict.soft_label.values()) > 1
        else:
            assert verdict.label is None


def test_dawid_skene_prior_weighs_the_same_with_many_labels():
    """With 30 labels and 1 pseudo-count a cell, a teacher right on all 4 items of a class read 0.17 there (31
    pseudo-counts against 4 items): status showed teachers right half the time as barely above chance. The row's
    prior mass is now that of a two-label matrix, spread over the labels."""
    labels = [f"intent_{i:02d}" for i in range(30)]
    items = {f"x{i}": [v("a", labels[i % 30]), v("b", labels[i % 30])] for i in range(120)}  # 4 an intent
    ds = DawidSkene()
    ds.fit(items, labels)
    assert all(ds.reliability_[t].accuracy(x) > 0.6 for t in ("a", "b") for x in labels)
    lone = DawidSkene()
    lone.fit({"s": [v("a", labels[0])]}, labels)  # nothing learnt: the prior alone, still well above chance
    assert lone.reliability_["a"].accuracy(labels[0]) == pytest.approx((1 + 2 / 30) / 3)
