"""Turning the teachers' votes on one item into a verdict: a label, a soft label and an agreement score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Vote:
    teacher: str
    label: str | None
    rationale: str | None = None
    confidence: float | None = None
    valid: bool = True
    distribution: dict[str, float] | None = None


@dataclass
class Verdict:
    """The ensemble's answer for one item. ``label`` is ``None`` when no teacher gave a valid answer."""

    label: str | None
    soft_label: dict[str, float]
    agreement: float  # share of valid votes for the winning label
    entropy: float  # entropy (nats) of the vote distribution
    n_votes: int
    rationale: str | None
    method: str
    votes: list[dict] = field(default_factory=list)


def entropy(dist: dict[str, float]) -> float:
    return -sum(p * math.log(p) for p in dist.values() if p > 0)


def vote_table(votes: Sequence[Vote]) -> list[dict]:
    return [{"teacher": v.teacher, "label": v.label, "confidence": v.confidence, "rationale": v.rationale,
             "valid": v.valid} for v in votes]


class MajorityVote:
    """Plurality of valid votes; ties broken by summed confidence, then by label-set order.

    The soft label is the vote share per label; agreement is the winner's share.
    """

    name = "majority"

    def aggregate(self, votes: Sequence[Vote], labels: Sequence[str]) -> Verdict:
        valid = [v for v in votes if v.valid and v.label is not None]
        if not valid:
            return Verdict(None, {}, 0.0, 0.0, 0, None, self.name, vote_table(votes))
        counts = {label: 0 for label in labels}
        conf = {label: 0.0 for label in labels}
        for v in valid:
            counts[v.label] += 1  # type: ignore[index]
            conf[v.label] += v.confidence if v.confidence is not None else 0.0  # type: ignore[index]
        winner = max(labels, key=lambda x: (counts[x], conf[x], -list(labels).index(x)))
        soft = {label: counts[label] / len(valid) for label in labels}
        supporters = [v for v in valid if v.label == winner]
        best = max(supporters, key=lambda v: v.confidence if v.confidence is not None else 0.0)
        return Verdict(winner, soft, soft[winner], entropy(soft), len(valid), best.rationale, self.name,
                       vote_table(votes))
