"""Random sampling: the baseline every active-learning strategy must beat (passive learning, as in the
comparisons of Lewis & Gale, "A Sequential Algorithm for Training Text Classifiers", SIGIR 1994)."""

from __future__ import annotations

from distilloop.core.types import Selection
from distilloop.strategies.base import SelectionContext, Strategy


class RandomSampling(Strategy):
    """Uniform sampling without replacement from the unlabeled pool (seeded)."""

    name = "random"
    own_needs: frozenset[str] = frozenset()

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        idx = ctx.rng.choice(len(ctx.unlabeled_ids), size=n, replace=False)
        return Selection([ctx.unlabeled_ids[i] for i in idx], [0.0] * n)
