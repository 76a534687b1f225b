"""Every registered aggregator passes the Aggregator contract: a verdict over the label set (or, for those that
need no label set, over the answers given), unanimity wins, invalid votes are not counted, deterministic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distilloop.core.answers import LabelSet, OpenNumber
from distilloop.core.types import Vote
from distilloop.registry import AGGREGATORS, build

LABELS = ("a", "b", "c")
NAMES = sorted(AGGREGATORS)


@pytest.fixture(params=NAMES)
def aggregator(request):
    return build("aggregation", request.param, {}, where="test")


def _votes(labels, confidences=None):
    confidences = confidences or [None] * len(labels)
    return [Vote(f"t{i}", lab, f"why {lab}", c) for i, (lab, c) in enumerate(zip(labels, confidences))]


def test_every_aggregator_declares_what_it_needs(aggregator):
    assert aggregator.needs <= {"label_set"}


def test_unanimous_votes_win(aggregator):
    v = aggregator.aggregate(_votes(["b", "b", "b"]), LABELS)
    assert v.label == "b" and v.n_votes == 3 and v.rationale == "why b"
    assert v.soft_label["b"] == max(v.soft_label.values())


def test_no_valid_vote_gives_no_label(aggregator):
    v = aggregator.aggregate([Vote("t0", None, valid=False), Vote("t1", "zzz", valid=False)], LABELS)
    assert v.label is None and v.n_votes == 0


def test_invalid_and_out_of_set_votes_are_not_counted(aggregator):
    votes = _votes(["a", "a"]) + [Vote("t9", "b", valid=False), Vote("t8", "nope")]
    v = aggregator.aggregate(votes, LABELS)
    assert v.label == "a" and v.n_votes == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LABELS), st.one_of(st.none(), st.floats(0.01, 1.0))), min_size=1,
                max_size=5))
def test_the_soft_label_is_a_distribution_over_the_set_with_the_label_its_mode(votes):
    for name in NAMES:
        agg = build("aggregation", name, {}, where="test")
        labels, confs = zip(*votes)
        v = agg.aggregate(_votes(list(labels), list(confs)), LABELS)
        assert set(v.soft_label) == set(LABELS) and sum(v.soft_label.values()) == pytest.approx(1.0)
        top = max(v.soft_label.values())
        if v.label is None:  # a tie nothing breaks is left to review, never settled by the label set's order
            assert sum(p == pytest.approx(top) for p in v.soft_label.values()) > 1
        else:
            assert v.label in LABELS and v.soft_label[v.label] == pytest.approx(top)
        again = build("aggregation", name, {}, where="test").aggregate(_votes(list(labels), list(confs)), LABELS)
        assert (again.label, again.soft_label) == (v.label, v.soft_label)


def test_those_that_need_no_label_set_count_over_the_answers_given(aggregator):
    if "label_set" in aggregator.needs:
        pytest.skip(f"{aggregator.name} needs a label set")
    votes = _votes(["72", "72", "70"])
    space = OpenNumber()
    v = aggregator.aggregate(votes, space.support(votes))
    assert v.label == "72" and set(v.soft_label) == {"72", "70"}
    assert LabelSet(LABELS).support(votes) == LABELS


def test_an_even_split_is_never_settled_by_the_order_of_the_label_set(aggregator):
    """Two teachers, no confidences, one vote each: nobody won, whatever order the labels or teachers come in."""
    for labels in (LABELS, LABELS[::-1]):
        for pair in (["a", "b"], ["b", "a"]):
            v = aggregator.aggregate(_votes(pair), labels)
            assert v.label is None and v.n_votes == 2, (aggregator.name, labels, pair)
    # a confidence breaks the tie, for whichever label it backs
    assert aggregator.aggregate(_votes(["a", "b"], [0.6, 0.9]), LABELS).label == "b"
    assert aggregator.aggregate(_votes(["a", "b"], [0.9, 0.6]), LABELS).label == "a"
