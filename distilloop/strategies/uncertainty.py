"""Uncertainty sampling over the student's class probabilities.

* Entropy: Shannon entropy of the prediction (Settles, "Active Learning Literature Survey", 2009; Holub et al. 2008).
* Least confidence: one minus the top probability (Lewis & Gale, SIGIR 1994; Culotta & McCallum, AAAI 2005).
* Breaking ties / margin: smallest gap between the two top probabilities (Scheffer et al., IDA 2001; Luo et al. 2005).
"""

from __future__ import annotations

import numpy as np

from distilloop.core.types import Selection
from distilloop.strategies.base import SelectionContext, Strategy, top_n


def entropy(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, 1e-12, 1.0)
    return -np.einsum("ij,ij->i", p, np.log(p))


def least_confidence(proba: np.ndarray) -> np.ndarray:
    return 1.0 - proba.max(axis=1)


def margin(proba: np.ndarray) -> np.ndarray:
    if proba.shape[1] < 2:
        return np.zeros(len(proba))
    part = np.partition(proba, -2, axis=1)
    return -(part[:, -1] - part[:, -2])  # higher score = smaller margin


class ScoreStrategy(Strategy):
    """Ranks the pool by a per-item function of the student's probabilities (``score_fn``) and takes the top
    ``n`` (:func:`~distilloop.strategies.base.top_n`): what a compute engine can score shard by shard and merge
    into exactly the same picks."""

    score_fn = staticmethod(entropy)

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        return top_n(ctx.unlabeled_ids, self.score_fn(ctx.probabilities()), n, ctx.rng)


class EntropySampling(ScoreStrategy):
    """Picks the items whose predicted label distribution has the highest entropy."""

    name = "entropy"
    score_fn = staticmethod(entropy)


class LeastConfidence(ScoreStrategy):
    """Picks the items whose most likely label is least probable."""

    name = "least_confidence"
    score_fn = staticmethod(least_confidence)


class BreakingTies(ScoreStrategy):
    """Picks the items with the smallest margin between the two most likely labels."""

    name = "margin"
    score_fn = staticmethod(margin)
