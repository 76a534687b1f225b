from distilloop.annotators.aggregation import MajorityVote
from distilloop.core.types import Vote
from distilloop.loop.routing import ACCEPT, ASK_NEXT, REVIEW, CascadePolicy, ThresholdRouter

L = ("negative", "positive")


def test_cascade_asks_the_next_tier_only_when_unsure_or_in_disagreement():
    p = CascadePolicy([["cheap"], ["strong"], ["judge"]], min_confidence=0.8)
    assert p.next_step([Vote("cheap", "positive", confidence=0.95)], 1, L) == ACCEPT
    assert p.next_step([Vote("cheap", "positive", confidence=0.6)], 1, L) == ASK_NEXT
    assert p.next_step([Vote("cheap", "positive")], 1, L) == ASK_NEXT  # no confidence: unsure
    assert p.next_step([Vote("cheap", None, valid=False)], 1, L) == ASK_NEXT
    agree = [Vote("cheap", "positive", confidence=0.6), Vote("strong", "positive", confidence=0.7)]
    assert p.next_step(agree, 2, L) == ACCEPT
    split = [Vote("cheap", "positive", confidence=0.6), Vote("strong", "negative", confidence=0.9)]
    assert p.next_step(split, 2, L) == ASK_NEXT
    assert p.next_step(split + [Vote("judge", "negative")], 3, L) == ACCEPT  # no tier left: routing decides


def test_router_caps_review_items_per_round_least_agreed_first():
    agg = MajorityVote()
    verdicts = [
        ("x1", agg.aggregate([Vote("a", "positive"), Vote("b", "negative")], L)),
        ("x2", agg.aggregate([Vote("a", "positive"), Vote("b", "negative"), Vote("c", "negative")], L)),
        ("x3", agg.aggregate([Vote("a", "positive"), Vote("b", "positive")], L)),
    ]
    routes = ThresholdRouter(min_agreement=0.7, max_review_per_round=1).route(verdicts)
    assert routes == {"x1": REVIEW, "x2": ACCEPT, "x3": ACCEPT}
    assert ThresholdRouter(min_agreement=0.7).route(verdicts)["x2"] == REVIEW
