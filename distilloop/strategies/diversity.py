"""Diversity sampling on (cached) embeddings: a batch that covers the pool instead of n near-duplicates.

* :class:`KMeansSampling`: cluster the pool into ``n`` clusters and take, from each, the item nearest its
  centre (Nguyen & Smeulders, "Active learning using pre-clustering", ICML 2004; Zhdanov, "Diverse mini-batch
  Active Learning", arXiv 1901.05954, 2019).
* :class:`CoreSet`: greedy k-center (Sener & Savarese, "Active Learning for Convolutional Neural Networks: A
  Core-Set Approach", ICLR 2018): repeatedly take the item farthest from everything labeled or already
  picked; a 2-approximation of the minimax cover (exact greedy, pruned by the triangle inequality:
  :mod:`distilloop.strategies.kcenter`).

On large pools both work on a seeded uniform candidate subsample of ``max_candidates`` items (default
100,000; ``None`` uses the whole pool), the same from one round to the next; k-means fits its centres on a further sample of at least 20 items
per cluster (the centres of a uniform sample estimate the pool's, as in mini-batch k-means: Sculley,
"Web-scale k-means clustering", WWW 2010) and then assigns every candidate to its nearest centre. Embeddings come from
:mod:`distilloop.strategies.embeddings` (cached per example id in the campaign store).
"""

from __future__ import annotations

import warnings

import numpy as np

from distilloop.core.types import Selection
from distilloop.strategies.base import SelectionContext, Strategy
from distilloop.strategies.embeddings import labeled_embeddings, pool_embeddings
from distilloop.strategies.geometry import nearest_centre, single_threaded_blas
from distilloop.strategies.kcenter import k_center_greedy

__all__ = ["CoreSet", "KMeansSampling", "k_center_greedy", "kmeans_centres", "kmeans_pick", "kmeans_plus_plus", "nearest_centre",
           "single_threaded_blas"]


def _candidates(ctx: SelectionContext, max_candidates: int | None, n: int) -> np.ndarray:
    """Positions of the unlabeled items a diversity strategy looks at: all of them, or on a pool larger than
    ``max_candidates`` a uniform sample of that many, the same from round to round (the items whose seeded
    hash of their id is lowest), so the pass that embeds them is paid once, not for a new sample every round
    (on 200,000 items with mpnet, 20 minutes a round here); an item labeled leaves it, a row added may join."""
    size = len(ctx.unlabeled_ids)
    if max_candidates is None or size <= max(max_candidates, n):
        return np.arange(size)
    return np.sort(np.argpartition(stable_keys(ctx.unlabeled_ids, int(ctx.extra.get("seed", 0))),
                                   max(max_candidates, n) - 1)[:max(max_candidates, n)])


def stable_keys(ids: list[str], seed: int = 0) -> np.ndarray:
    """A pseudo-random 64-bit key per id that depends only on the id and ``seed``: CRC-32 of the id, mixed with
    the seed by splitmix64's finaliser (Steele et al., OOPSLA 2014) so that ids alike get unrelated keys; about
    0.2 s per million ids."""
    import zlib

    x = np.fromiter((zlib.crc32(i.encode()) for i in ids), dtype=np.uint64, count=len(ids))
    with np.errstate(over="ignore"):
        x = x + np.uint64(((seed + 1) * 0x9E3779B97F4A7C15) % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _candidate_embeddings(ctx: SelectionContext, cand: np.ndarray) -> np.ndarray:
    """Embeddings of the candidates only: on a large pool, the rest is never embedded."""
    if len(cand) == len(ctx.unlabeled_ids):
        return pool_embeddings(ctx)
    from distilloop.strategies.subsample import subcontext

    return pool_embeddings(subcontext(ctx, cand))


def kmeans_plus_plus(X: np.ndarray, k: int, rng: np.random.Generator,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii, SODA 2007), one trial per centre: ``O(n k d)``.

    scikit-learn's default tries ``2 + log k`` candidates per centre, ten times slower at ``k = 1000``.
    """
    sq = np.einsum("ij,ij->i", X, X)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    first = int(rng.choice(len(X), p=None if w is None else w / w.sum()))
    chosen = [first]
    min_d = np.full(len(X), np.inf)
    j = first
    with single_threaded_blas():
        for _ in range(1, k + 1):
            d = (X @ X[j]).astype(np.float64)
            d *= -2.0
            d += sq
            d += sq[j]
            np.maximum(d, 0.0, out=d)
            np.minimum(min_d, d, out=min_d)
            if len(chosen) == k:
                break
            cum = np.cumsum(min_d if w is None else w * min_d)
            if cum[-1] > 0:  # draw with probability proportional to (weighted) squared distance
                j = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(X) - 1)
            else:  # every point already is a centre: any will do
                j = int(rng.integers(len(X)))
            chosen.append(j)
    return X[chosen].copy()


def kmeans_centres(X: np.ndarray, k: int, rng: np.random.Generator, *, weights: np.ndarray | None = None,
                   fit_size: int | None = None, max_iter: int = 10) -> np.ndarray:
    """``k`` k-means centres of ``X`` (k-means++ seeding, then Lloyd iterations), fitted on a seeded sample of
    ``fit_size`` rows (default ``max(10000, 20 k)``, i.e. at least 20 rows per cluster)."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    fit_size = fit_size or max(10000, 20 * k)
    fit = np.arange(len(X)) if len(X) <= fit_size else np.sort(rng.choice(len(X), size=fit_size, replace=False))
    fw = None if weights is None else np.asarray(weights, dtype=np.float64)[fit]
    init = kmeans_plus_plus(X[fit], k, rng, fw)
    km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=max_iter, random_state=0)
    with warnings.catch_warnings():  # fewer distinct points than clusters: the callers handle empty clusters
        warnings.simplefilter("ignore", ConvergenceWarning)
        km.fit(X[fit], sample_weight=fw)
    return np.asarray(km.cluster_centers_, dtype=np.float32)


def kmeans_pick(X: np.ndarray, n: int, rng: np.random.Generator, *, weights: np.ndarray | None = None,
                fit_size: int | None = None, max_iter: int = 10) -> np.ndarray:
    """Positions of ``n`` distinct rows of ``X``: the member nearest the centre of each of ``n`` clusters.

    The centres come from :func:`kmeans_centres`; every row of ``X`` is assigned to its nearest centre.
    Clusters left empty are filled with the remaining rows farthest from their nearest centre, so exactly
    ``n`` positions come back.
    """
    X = np.asarray(X, dtype=np.float32)
    n = min(n, len(X))
    if n == len(X):
        return np.arange(len(X))
    centres = kmeans_centres(X, n, rng, weights=weights, fit_size=fit_size, max_iter=max_iter)
    labels, dist = nearest_centre(X, centres)
    order = np.lexsort((dist, labels))  # by cluster, nearest first
    first = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    picked = list(first)
    if len(picked) < n:
        taken = np.zeros(len(X), dtype=bool)
        taken[picked] = True
        rest = np.flatnonzero(~taken)
        picked += list(rest[np.argsort(-dist[rest], kind="stable")[: n - len(picked)]])
    return np.asarray(picked[:n], dtype=np.int64)


class KMeansSampling(Strategy):
    """Picks the item nearest the centre of each of ``n`` k-means clusters of the pool's embeddings."""

    name = "kmeans"
    own_needs = frozenset({"student", "embeddings"})

    def __init__(self, max_candidates: int | None = 100000, fit_size: int | None = None) -> None:
        self.max_candidates = max_candidates
        self.fit_size = fit_size

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        cand = _candidates(ctx, self.max_candidates, n)
        X = _candidate_embeddings(ctx, cand)
        pos = cand[kmeans_pick(X, n, ctx.rng, fit_size=self.fit_size)]
        return Selection([ctx.unlabeled_ids[i] for i in pos], [0.0] * len(pos))


class CoreSet(Strategy):
    """Greedy k-center (core-set) over the pool's embeddings, counting the labeled set as already covered."""

    name = "coreset"
    own_needs = frozenset({"student", "embeddings"})

    def __init__(self, max_candidates: int | None = 100000) -> None:
        self.max_candidates = max_candidates

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        cand = _candidates(ctx, self.max_candidates, n)
        X = _candidate_embeddings(ctx, cand)
        L = labeled_embeddings(ctx) if ctx.labeled_ids or ctx.extra.get("labeled_embeddings") is not None else None
        picked, scores = k_center_greedy(X, n, ctx.rng, labeled=L)
        pos = cand[picked]
        return Selection([ctx.unlabeled_ids[i] for i in pos], [float(s) for s in scores])
