"""Combinators: mixing informativeness with diversity, or several informativeness measures.

* :class:`UncertaintyThenDiversity`: the ``beta * n`` most informative items, clustered into ``n`` clusters
  with each item weighted by its informativeness, and the item nearest each centre picked (Zhdanov, "Diverse
  mini-batch Active Learning", arXiv 1901.05954, 2019: a margin prefilter, then k-means weighted by
  informativeness).
* :class:`LinearCombination`: a weighted sum of several strategies' per-item scores, after modAL's
  ``make_linear_combination`` (Danka & Horváth, "modAL: A modular active learning framework for Python",
  arXiv 1805.00979, 2018). Each score is min-max scaled to ``[0, 1]`` over the pool first, so the weights
  mean the same whatever each measure's range (modAL leaves this to the user).

A strategy has per-item scores when it defines ``scores(ctx) -> array`` (bald, qbc, ...) or is one of the
uncertainty strategies (their ``score_fn`` over the student's probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distilloop.core.types import Selection
from distilloop.errors import ConfigError, DistilloopError
from distilloop.strategies.base import Composite, SelectionContext, Strategy, top_n
from distilloop.strategies.diversity import kmeans_pick
from distilloop.strategies.embeddings import pool_embeddings
from distilloop.strategies.subsample import make_strategy, subcontext


def strategy_scores(strategy: Strategy, ctx: SelectionContext) -> np.ndarray:
    """Per-item scores of ``strategy`` over ``ctx``'s pool (higher = more worth labeling)."""
    if hasattr(strategy, "scores"):
        return np.asarray(strategy.scores(ctx), dtype=np.float64)
    if hasattr(strategy, "score_fn"):
        return np.asarray(strategy.score_fn(ctx.probabilities()), dtype=np.float64)
    raise DistilloopError(f"strategy '{strategy.name}' gives no per-item scores, so it cannot be combined; "
                          "combine scoring strategies (entropy, least_confidence, margin, bald, qbc)")


def minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    return np.zeros_like(x) if hi - lo <= 0 else (x - lo) / (hi - lo)


class UncertaintyThenDiversity(Composite):
    """Top ``beta * n`` by ``uncertainty``, then one item per k-means cluster of their embeddings."""

    name = "uncertainty_kmeans"
    own_needs = frozenset({"student", "embeddings"})

    def children(self) -> list[Strategy]:
        return [self.uncertainty_]

    def __init__(self, uncertainty: Any = "margin", beta: int = 10, weighted: bool = True) -> None:
        if beta < 1:
            raise ValueError(f"beta must be at least 1, got {beta!r}")
        self.uncertainty = uncertainty
        self.uncertainty_ = make_strategy(uncertainty, where="strategy.uncertainty")
        self.beta = beta
        self.weighted = weighted

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        scores = strategy_scores(self.uncertainty_, ctx)
        k = min(len(scores), self.beta * n)
        jitter = ctx.rng.permutation(len(scores))  # ties broken at random, as top_n does
        idx = np.sort(np.lexsort((jitter, -scores))[:k])
        X = pool_embeddings(subcontext(ctx, idx))  # only the candidates are embedded
        # weights must be positive: shift the candidates' scores to (0, 1]
        w = 0.05 + 0.95 * minmax(scores[idx]) if self.weighted else None
        picked = idx[kmeans_pick(X, n, ctx.rng, weights=w)]
        return Selection([ctx.unlabeled_ids[i] for i in picked], [float(scores[i]) for i in picked])


class LinearCombination(Composite):
    """Weighted sum of min-max scaled scores of ``strategies`` (names or ``{name, ...}`` tables)."""

    name = "linear_combination"

    def __init__(self, strategies: Sequence[Any] = ("entropy", "margin"),
                 weights: Sequence[float] | None = None) -> None:
        if not strategies:
            raise ConfigError("strategy.strategies must name at least one strategy to combine, got none")
        weights = list(weights) if weights is not None else [1.0] * len(strategies)
        if len(weights) != len(strategies):
            raise ConfigError(f"strategy.weights must have one weight per strategy ({len(strategies)}), "
                              f"got {len(weights)}")
        self.strategies = list(strategies)
        self.weights = weights
        self.strategies_ = [make_strategy(s, where="strategy.strategies") for s in self.strategies]

    def children(self) -> list[Strategy]:
        return list(self.strategies_)

    def scores(self, ctx: SelectionContext) -> np.ndarray:
        total = np.zeros(len(ctx.unlabeled_ids))
        for s, w in zip(self.strategies_, self.weights):
            total += w * minmax(strategy_scores(s, ctx))
        return total

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        return top_n(ctx.unlabeled_ids, self.scores(ctx), n, ctx.rng)


class Mixture(Composite):
    """Each round, ``fractions`` of the batch from each of ``strategies`` in turn, each on what the ones before
    it left (e.g. half random, half k-means: a batch that stays representative of the pool while it covers it).

    Exploration by mixing a uniform share into an active learner's batches is the epsilon-greedy idea of
    Bouneffouf, "Exponentiated Gradient Exploration for Active Learning" (Computers 2016) and of the
    hybrid random/uncertainty schedules of Hacohen et al. (ICML 2022). The split is by largest remainder, so
    the parts always add up to the batch.
    """

    name = "mixture"

    def __init__(self, strategies: Sequence[Any] = ("random", "kmeans"),
                 fractions: Sequence[float] | None = None) -> None:
        if not strategies:
            raise ConfigError("strategy.strategies must name at least one strategy to mix, got none")
        fractions = list(fractions) if fractions is not None else [1.0 / len(strategies)] * len(strategies)
        if len(fractions) != len(strategies) or any(f < 0 for f in fractions) or sum(fractions) <= 0:
            raise ConfigError(f"strategy.fractions must be {len(strategies)} non-negative numbers, not all 0, "
                              f"one per strategy; got {fractions!r}")
        self.strategies = list(strategies)
        self.fractions = [f / sum(fractions) for f in fractions]
        self.strategies_ = [make_strategy(s, where="strategy.strategies") for s in self.strategies]

    def children(self) -> list[Strategy]:
        return list(self.strategies_)

    def shares(self, n: int) -> list[int]:
        raw = np.asarray(self.fractions) * n
        out = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - out), kind="stable")[: n - int(out.sum())]:
            out[i] += 1
        return [int(x) for x in out]

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        from distilloop.strategies.subsample import run_on

        ids: list[str] = []
        scores: list[float] = []
        explanations: dict[str, list[str]] = {}
        left: np.ndarray = np.arange(len(ctx.unlabeled_ids))
        position = {id_: i for i, id_ in enumerate(ctx.unlabeled_ids)}
        for strategy, k in zip(self.strategies_, self.shares(n)):
            if k == 0 or len(left) == 0:
                continue
            sel = run_on(strategy, ctx, left, min(k, len(left)))
            ids += sel.ids
            scores += sel.scores
            explanations.update(sel.explanations)
            left = left[~np.isin(left, [position[i] for i in sel.ids])]
        return Selection(ids, scores, explanations)
