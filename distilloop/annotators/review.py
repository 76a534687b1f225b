"""The ``Reviewer`` contract: where items the ensemble is unsure of go, and how answers come back.

A reviewer takes items (:meth:`submit`) and later returns decisions (:meth:`collect`); a campaign does
other work while reviews are pending and picks answers up in a later round. The human answer wins over
the teachers, and a corrected rationale replaces theirs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from distilloop.annotators.aggregation import Verdict


@dataclass
class ReviewItem:
    example_id: str
    fields: dict[str, Any]
    verdict: Verdict
    round_no: int
    labels: tuple[str, ...] = ()


@dataclass
class ReviewDecision:
    example_id: str
    label: str
    rationale: str | None
    reviewer: str
    source: str  # "human", "auto", "simulated"
    seconds_spent: float | None = None
    external_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Reviewer(ABC):
    name = "abstract"

    @abstractmethod
    def submit(self, items: Sequence[ReviewItem]) -> dict[str, str | None]:
        """Queue items for review; return example id -> external id (e.g. a Label Studio task id)."""

    @abstractmethod
    def collect(self, pending: Sequence[dict[str, Any]]) -> list[ReviewDecision]:
        """Decisions available now for ``pending`` queue rows (may be none)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class AutoAcceptReviewer(Reviewer):
    """Accepts the ensemble's label for every routed item, at once. No human is involved."""

    name = "auto"

    def __init__(self) -> None:
        self._items: dict[str, ReviewItem] = {}

    def submit(self, items: Sequence[ReviewItem]) -> dict[str, str | None]:
        for it in items:
            self._items[it.example_id] = it
        return {it.example_id: None for it in items}

    def collect(self, pending: Sequence[dict[str, Any]]) -> list[ReviewDecision]:
        out = []
        for row in pending:
            it = self._items.get(row["example_id"])
            if it is not None:
                label, rationale = it.verdict.label, it.verdict.rationale
            else:  # submitted by an earlier process: the store's consensus row has the verdict
                cons = row.get("consensus") or {}
                label, rationale = cons.get("label"), cons.get("rationale")
            if label is not None:
                out.append(ReviewDecision(row["example_id"], label, rationale, "auto", "auto"))
        return out
