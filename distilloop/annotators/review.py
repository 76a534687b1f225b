"""The ``Reviewer`` contract: where items the ensemble is unsure of go, and how answers come back.

A reviewer takes items (:meth:`submit`) and later returns decisions (:meth:`collect`); a campaign does
other work while reviews are pending and picks answers up in a later round. The human answer wins over
the teachers, and a corrected rationale replaces theirs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from distilloop.core.types import ReviewDecision, ReviewItem
from distilloop.errors import ReviewError, UserInputError


class Reviewer(ABC):
    name = "abstract"
    #: whether submit returns an external id per item (a queued item without one was never sent)
    uses_external_ids = False

    @abstractmethod
    def submit(self, items: Sequence[ReviewItem]) -> dict[str, str | None]:
        """Queue items for review; return example id -> external id (e.g. a Label Studio task id)."""

    @abstractmethod
    def collect(self, pending: Sequence[dict[str, Any]]) -> list[ReviewDecision]:
        """Decisions available now for ``pending`` queue rows (may be none)."""

    def lost(self) -> list[str]:
        """The example ids of the last :meth:`collect` whose submitted item no longer exists at the reviewer
        (deleted there, or its server's data reset): the campaign queues them to be sent again."""
        return []

    def skipped(self) -> list[str]:
        """The example ids of the last :meth:`collect` that every reviewer skipped and that the reviewer counts as
        done all the same (no one else will be asked): the campaign leaves them out of training, and takes an
        answer given there later."""
        return []

    def revised(self, taken: Sequence[dict[str, Any]]) -> list[ReviewDecision]:
        """Reviews changed, or added, at the reviewer after the campaign took their items (a person correcting a
        slip). ``taken`` holds the reviews recorded so far (``example_id``, ``external_id``, ``ref``, ``version``);
        a decision whose ``ref`` is among them replaces that review, any other is one more review of its item.
        A reviewer whose answers are final returns none."""
        return []

    def unread(self) -> list[tuple[str, str]]:
        """(example id, why) of the items of the last :meth:`collect` that were answered with nothing the campaign
        can read as a label (a labeling config rewritten by people): they stay pending, and the campaign says why."""
        return []

    def retracted(self) -> list[tuple[str, str]]:
        """(example id, ref) of the reviews the last :meth:`revised` found deleted at the reviewer (a person took
        an answer back); a task or project deleted whole is not a retraction."""
        return []

    def attach(self, store: Any) -> None:  # noqa: B027 - optional hook
        """Called by the campaign with its store before any submit/collect (reviewers that need the examples,
        such as the simulated one, keep it)."""

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


class SimulatedReviewer(Reviewer):
    """A SIMULATION of a human reviewer for benchmarks: answers every routed item with its gold label (and the
    gold rationale where the data has one) after ``delay_rounds`` rounds and/or ``delay_seconds`` seconds.
    Its decisions carry source ``"simulated"`` and reviewer ``"simulated (gold oracle)"``, so every report
    names them as a simulation, never as human work. Items without a gold label stay pending."""

    name = "simulated"

    def __init__(self, delay_rounds: int = 0, delay_seconds: float = 0.0, reviewer: str = "simulated (gold oracle)"
                 ) -> None:
        if isinstance(delay_rounds, bool) or not isinstance(delay_rounds, int) or delay_rounds < 0:
            raise UserInputError(f"review.delay_rounds: must be an integer >= 0, got {delay_rounds!r}")
        if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, int | float) or delay_seconds < 0:
            raise UserInputError(f"review.delay_seconds: must be a number >= 0, got {delay_seconds!r}")
        self.delay_rounds = delay_rounds
        self.delay_seconds = float(delay_seconds)
        self.reviewer = reviewer
        self._store: Any = None

    def attach(self, store: Any) -> None:
        self._store = store

    def submit(self, items: Sequence[ReviewItem]) -> dict[str, str | None]:
        return {it.example_id: None for it in items}

    def collect(self, pending: Sequence[dict[str, Any]]) -> list[ReviewDecision]:
        if not pending:
            return []
        if self._store is None:
            raise ReviewError("SimulatedReviewer: no store attached; the campaign attaches it (call "
                              "reviewer.attach(store) when using it on its own)")
        rounds = self._store.rounds()
        current = max((r["round"] for r in rounds), default=0)
        now = datetime.now(UTC)
        out = []
        for row in pending:
            if current - int(row.get("round") or 0) < self.delay_rounds:
                continue
            if self.delay_seconds and row.get("created_at"):
                waited = (now - datetime.fromisoformat(row["created_at"])).total_seconds()
                if waited < self.delay_seconds:
                    continue
            ex = self._store.example(row["example_id"])
            if ex.gold is None:
                continue
            out.append(ReviewDecision(ex.id, ex.gold, ex.gold_rationale, self.reviewer, "simulated",
                                      seconds_spent=0.0, extra={"simulation": True}))
        return out
