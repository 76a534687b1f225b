"""Routing: per item, accept the ensemble's verdict, send it to human review, or ask another teacher (cascade)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from distilloop.core.types import Verdict, Vote

ACCEPT = "accept"
REVIEW = "review"


@dataclass
class ThresholdRouter:
    """Review when no teacher answered validly or the winner's vote share is below ``min_agreement``;
    at most ``max_review_per_round`` items go to review (the least agreed first), the rest are accepted."""

    min_agreement: float = 0.5
    max_review_per_round: int | None = None

    def route(self, verdicts: Sequence[tuple[str, Verdict]]) -> dict[str, str]:
        routes = {}
        review = []
        for example_id, v in verdicts:
            if v.label is None or v.agreement < self.min_agreement:
                review.append((example_id, v))
            else:
                routes[example_id] = ACCEPT
        review.sort(key=lambda p: (p[1].label is not None, p[1].agreement))
        cap = len(review) if self.max_review_per_round is None else self.max_review_per_round
        for i, (example_id, v) in enumerate(review):
            routes[example_id] = REVIEW if (i < cap or v.label is None) else ACCEPT
        return routes


ASK_NEXT = "ask_next"


@dataclass
class CascadePolicy:
    """Ask teachers in tiers, cheapest first, and a stronger tier only when needed: when the first tier is
    unsure (its confidence below ``min_confidence``, or no valid answer) or when the tiers asked so far
    disagree. In the spirit of FrugalGPT's LLM cascade (Chen, Zaharia & Zou, "FrugalGPT: How to Use Large
    Language Models While Reducing Cost and Improving Performance", 2023), with the first teacher's own
    confidence as the scorer.

    ``tiers`` lists teacher names per tier, in the order they are asked; a teacher not named in any tier is
    never asked. After the last tier, the usual router decides between accept and review.
    """

    tiers: list[list[str]]
    min_confidence: float = 0.8

    def next_step(self, votes: Sequence[Vote], asked: int, labels: Sequence[str]) -> str:
        """``ask_next`` when another tier should be asked of an item with ``votes`` after ``asked`` tiers,
        else ``accept`` (stop asking: routing decides)."""
        if asked >= len(self.tiers):
            return ACCEPT
        valid = [v for v in votes if v.valid and v.label in labels]
        if not valid:
            return ASK_NEXT
        if len({v.label for v in valid}) > 1:
            return ASK_NEXT  # the tiers asked so far disagree
        if asked == 1:
            conf = max((v.confidence for v in valid if v.confidence is not None), default=None)
            return ASK_NEXT if conf is None or conf < self.min_confidence else ACCEPT
        return ACCEPT
