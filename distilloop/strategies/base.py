"""The ``Strategy`` contract (after small-text's ``QueryStrategy``).

``select(ctx, n)`` returns ids from the unlabeled pool, unique, exactly ``n`` of them or all that remain,
deterministic for a given ``ctx.rng`` seed. The base class validates the request once for every strategy
("Pool exhausted: 3 available / 10 requested" is not an error: all 3 are returned), and subclasses
implement :meth:`query`, returning ids and a score per id (higher = more worth labeling).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distilloop.core.protocols import StudentLike
from distilloop.core.types import Selection
from distilloop.errors import DistilloopError


@dataclass
class SelectionContext:
    """What a strategy may look at when it picks."""

    unlabeled_ids: list[str]
    unlabeled_texts: list[str]
    labeled_ids: list[str]
    labeled_texts: list[str]
    labeled_y: list[str]
    classes: list[str]
    rng: np.random.Generator
    student: StudentLike | None = None
    round_no: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def probabilities(self) -> np.ndarray:
        """The student's class probabilities over the unlabeled pool, cached in the store when it has one."""
        if self.student is None or not self.student.is_fitted():
            raise DistilloopError("this strategy needs a trained student; run a random first round "
                                  "([rounds] initial_size) or pick strategy 'random'")
        cached = self.extra.get("proba")
        if cached is None:
            cached = np.asarray(self.student.predict_proba(self.unlabeled_texts), dtype=np.float64)
            self.extra["proba"] = cached
        return cached


#: what a strategy can need of the campaign: a trained student; its label probabilities (over a label set);
#: its embeddings; several sampled predictions per item (MC dropout, an ensemble); a student that explains
#: itself step by step; the expected teacher cost of each item
NEEDS = frozenset({"student", "probabilities", "embeddings", "samples", "explanations", "costs"})


class Strategy(ABC):
    """Base of every strategy. ``own_needs`` declares what it reads itself (see :data:`NEEDS`); ``needs`` adds
    what the strategies it is built from need (:meth:`children`). The campaign checks, before anything is written
    or paid, that its student and answer space provide them."""

    name = "abstract"
    own_needs: frozenset[str] = frozenset({"student", "probabilities"})
    #: under a round budget (``ctx.extra["round_budget"]``) it may pick fewer than asked (a knapsack)
    returns_fewer = False

    def children(self) -> list[Strategy]:
        """The strategies this one is built from (a wrapper's base, a mixture's parts)."""
        return []

    @property
    def needs(self) -> frozenset[str]:
        """What it needs, its children's needs included (written once, here, for every composite)."""
        out = set(self.own_needs)
        for child in self.children():
            out |= child.needs
        return frozenset(out)

    @property
    def may_return_fewer(self) -> bool:
        return self.returns_fewer or any(child.may_return_fewer for child in self.children())

    @property
    def requires_student(self) -> bool:
        """Cannot run before a student is trained (a round's first selection uses ``initial_strategy``)."""
        return "student" in self.needs

    @property
    def needs_probabilities(self) -> bool:
        return "probabilities" in self.needs

    @property
    def needs_costs(self) -> bool:
        """The runner fills ``ctx.extra["item_cost"]`` (expected teacher cost per unlabeled id) for it."""
        return "costs" in self.needs

    def select(self, ctx: SelectionContext, n: int) -> Selection:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if len(ctx.unlabeled_ids) != len(ctx.unlabeled_texts):
            raise ValueError("unlabeled_ids and unlabeled_texts must have the same length")
        available = len(ctx.unlabeled_ids)
        if available == 0:
            return Selection([], [])
        n = min(int(n), available)
        sel = self.query(ctx, n)
        short_ok = self.may_return_fewer and ctx.extra.get("round_budget") is not None
        if (len(sel.ids) != n and not (short_ok and len(sel.ids) < n)) or len(set(sel.ids)) != len(sel.ids):
            raise DistilloopError(f"strategy {self.name} returned {len(sel.ids)} ids ({len(set(sel.ids))} unique), "
                                  f"expected {n}")
        return sel

    @abstractmethod
    def query(self, ctx: SelectionContext, n: int) -> Selection:
        """Pick ``n`` ids (``1 <= n <= len(pool)``) from ``ctx.unlabeled_ids``."""


def top_n(ids: Sequence[str], scores: np.ndarray, n: int, rng: np.random.Generator) -> Selection:
    """The ``n`` highest scores; ties broken by a seeded random permutation, not by pool order."""
    scores = np.asarray(scores, dtype=np.float64)
    jitter = rng.permutation(len(scores))
    if 4 * n < len(scores) and not np.isnan(scores).any():
        # only the items scoring at least the n-th best (ties included) can be picked: sort just those,
        # with the same tie-break, so the result equals the full sort's at a fraction of its cost
        kth = np.partition(scores, len(scores) - n)[len(scores) - n]
        cand = np.flatnonzero(scores >= kth)
        order = cand[np.lexsort((jitter[cand], -scores[cand]))][:n]
    else:
        order = np.lexsort((jitter, -scores))[:n]
    return Selection([ids[i] for i in order], [float(scores[i]) for i in order])


class Composite(Strategy):
    """A strategy built from others (a wrapper, a mixture, a combination): it needs what it needs itself
    (``own_needs``, nothing by default) and everything its children need."""

    own_needs: frozenset[str] = frozenset()

    @abstractmethod
    def children(self) -> list[Strategy]: ...
