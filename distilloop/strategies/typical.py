"""Typicality: label the items that stand for many others, not the outliers.

* :class:`TypiClust` (Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite Strategies Suit High
  and Low Budgets", ICML 2022): cluster the pool and the labeled set together into ``|labeled| + n`` clusters
  (at most ``max_clusters``); repeatedly take the cluster with the fewest labeled items (the largest among
  ties) and label its most *typical* unlabeled member, typicality being the inverse of the mean distance to
  its ``k_neighbours`` nearest neighbours within the cluster. At small budgets this beats uncertainty
  sampling, which picks outliers a weak student cannot yet place.
* :class:`DensityWeighted` (information density: Settles & Craven, "An Analysis of Active Learning Strategies
  for Sequence Labeling Tasks", EMNLP 2008): an uncertainty score times typicality to the power ``beta``,
  so the uncertain items that lie in dense regions come first.

Both matter doubly when LLM teachers label: the atypical, ambiguous items are also the ones the teachers get
wrong (on the recorded Rotten Tomatoes pool, the teachers' ensemble is 70% right on the 100 items a full-pool
student is least sure of, 97% on the 200 it is surest of), so pure uncertainty sampling pays for noisy labels.

With ``cost_power`` > 0, the typicality is divided by the item's expected teacher cost to that power
(``ctx.extra["item_cost"]``, filled by the runner; text length without it): the most typical item *per
token*. Large pools work on a seeded candidate subsample of ``max_candidates`` items, as the diversity
strategies do; typicality is measured against at most ``reference_size`` members of each cluster (or of the
pool, for :class:`DensityWeighted`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distilloop.core.types import Selection
from distilloop.strategies.base import Composite, SelectionContext, Strategy, top_n
from distilloop.strategies.cost import expected_costs
from distilloop.strategies.diversity import _candidate_embeddings, _candidates, kmeans_centres
from distilloop.strategies.embeddings import labeled_embeddings
from distilloop.strategies.geometry import nearest_centre


def typicality(X: np.ndarray, rows: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """``1 / (mean Euclidean distance to the k nearest reference rows)`` for each of ``X[rows]``.

    ``rows`` and ``reference`` index ``X``; a row's distance to itself, when it is in the reference, is not
    counted."""
    X = np.asarray(X, dtype=np.float32)
    rows, reference = np.asarray(rows), np.asarray(reference)
    R = X[reference]
    k = max(1, min(k, len(reference)))
    rsq = np.einsum("ij,ij->i", R, R)
    out = np.empty(len(rows))
    for s in range(0, len(rows), 2048):
        x = X[rows[s:s + 2048]]
        d = np.maximum(rsq[None, :] - 2.0 * (x @ R.T) + np.einsum("ij,ij->i", x, x)[:, None], 0.0)
        d[rows[s:s + 2048, None] == reference[None, :]] = np.inf
        near = np.sqrt(np.partition(d, k - 1, axis=1)[:, :k])
        finite = np.isfinite(near)
        count = finite.sum(axis=1)
        mean = np.where(finite, near, 0.0).sum(axis=1) / np.maximum(count, 1)
        # a row with no other reference row (a cluster of one) has no typicality: 0
        out[s:s + 2048] = np.where(count > 0, 1.0 / (mean + 1e-9), 0.0)
    return out


class TypiClust(Strategy):
    """The most typical unlabeled item of each of the least-covered clusters (TypiClust)."""

    name = "typiclust"

    def __init__(self, max_clusters: int = 500, k_neighbours: int = 20, cost_power: float = 0.0,
                 reference_size: int = 1000, max_candidates: int | None = 100000) -> None:
        if max_clusters < 1:
            raise ValueError(f"max_clusters must be at least 1, got {max_clusters!r}")
        if k_neighbours < 1:
            raise ValueError(f"k_neighbours must be at least 1, got {k_neighbours!r}")
        if cost_power < 0:
            raise ValueError(f"cost_power must be >= 0, got {cost_power!r}")
        self.max_clusters = max_clusters
        self.k_neighbours = k_neighbours
        self.cost_power = cost_power
        self.reference_size = reference_size
        self.max_candidates = max_candidates
        self.own_needs = frozenset({"student", "embeddings"} | ({"costs"} if cost_power > 0 else set()))


    def query(self, ctx: SelectionContext, n: int) -> Selection:
        cand = _candidates(ctx, self.max_candidates, n)
        U = _candidate_embeddings(ctx, cand)
        L = labeled_embeddings(ctx) if ctx.labeled_ids else np.zeros((0, U.shape[1]), dtype=np.float32)
        every = np.concatenate([L, U]).astype(np.float32) if len(L) else np.asarray(U, dtype=np.float32)
        k = max(1, min(len(L) + n, self.max_clusters, len(every)))
        centres = kmeans_centres(every, k, ctx.rng)
        cluster, _ = nearest_centre(every, centres)
        cl_l, cl_u = cluster[: len(L)], cluster[len(L):]
        covered = np.bincount(cl_l, minlength=k)
        size = np.bincount(cluster, minlength=k)
        value: np.ndarray = np.zeros(len(U))
        members = {int(c): np.flatnonzero(cl_u == c) for c in np.unique(cl_u)}
        for c, mem in members.items():  # typicality within the cluster; its labeled members count as neighbours
            ref = np.flatnonzero(cluster == c)
            if len(ref) > self.reference_size:
                ref = np.sort(ctx.rng.choice(ref, self.reference_size, replace=False))
            value[mem] = typicality(every, len(L) + mem, ref, self.k_neighbours)
        if self.cost_power > 0:
            value = value / expected_costs(ctx, cand) ** self.cost_power
        # within each cluster, best value first; clusters served least-covered first, larger first among ties
        queues = {c: list(mem[np.argsort(-value[mem], kind="stable")]) for c, mem in members.items()}
        picked: list[int] = []
        while len(picked) < n:
            open_ = [c for c, q in queues.items() if q]
            c = min(open_, key=lambda c: (covered[c], -size[c], c))
            picked.append(queues[c].pop(0))
            covered[c] += 1
        pos = cand[np.asarray(picked, dtype=np.int64)]
        return Selection([ctx.unlabeled_ids[i] for i in pos], [float(value[i]) for i in picked])


class DensityWeighted(Composite):
    """``uncertainty * typicality ** beta`` over the pool (information density)."""

    name = "density_weighted"
    own_needs = frozenset({"student", "embeddings"})

    def children(self) -> list[Strategy]:
        return [self.uncertainty_]

    def __init__(self, uncertainty: Any = "margin", beta: float = 1.0, k_neighbours: int = 20,
                 reference_size: int = 2000) -> None:
        from distilloop.strategies.subsample import make_strategy

        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        self.uncertainty = uncertainty
        self.uncertainty_ = make_strategy(uncertainty, where="strategy.uncertainty")
        self.beta = beta
        self.k_neighbours = k_neighbours
        self.reference_size = reference_size

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        from distilloop.strategies.combine import minmax, strategy_scores
        from distilloop.strategies.embeddings import pool_embeddings

        info = minmax(strategy_scores(self.uncertainty_, ctx))
        X = np.asarray(pool_embeddings(ctx), dtype=np.float32)
        ref = np.arange(len(X)) if len(X) <= self.reference_size else np.sort(
            ctx.rng.choice(len(X), self.reference_size, replace=False))
        typ = typicality(X, np.arange(len(X)), ref, self.k_neighbours)
        return top_n(ctx.unlabeled_ids, info * (typ / (typ.max() or 1.0)) ** self.beta, n, ctx.rng)
