"""Routing: per item, accept the ensemble's verdict or send it to human review."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from distilloop.annotators.aggregation import Verdict

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
