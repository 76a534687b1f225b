"""Subsampling wrappers: run any strategy on a smaller candidate pool (small-text's ``SubsamplingQueryStrategy``).

Large pools make expensive strategies (committees, diversity, ELAD) slow; these wrappers choose candidates
cheaply and hand the wrapped strategy a :class:`SelectionContext` restricted to them:

* :class:`RandomSubpool`: a seeded uniform subpool (the standard trick of Ertekin et al., "Learning on the
  border: active learning in imbalanced data classification", CIKM 2007: a random 59-item sample holds one of
  the top 5% with 95% probability).
* :class:`TopCandidates`: the ``size`` items a cheap strategy ranks highest (e.g. entropy before ELAD).
* :class:`LabeledNeighbours`: SEALS (Coleman et al., "Similarity Search for Efficient Active Learning and
  Search of Rare Concepts", AAAI 2022): only the ``k`` nearest unlabeled neighbours of each labeled example
  are candidates, so the candidate pool grows with the labeled set, not with the pool. Here the neighbours are
  found by exact chunked search over the cached embeddings (SEALS uses an approximate index; the candidate
  set is the same up to the index's recall).

Every wrapper takes its inner strategies as a registry name, a ``{"name": ..., **params}`` table or an
instance, so a config can say ``name = "random_subpool"``, ``base = "entropy"``, ``size = 20000``.
Arrays in ``ctx.extra`` aligned with the pool (``proba``, ``embeddings``) are sliced for the subpool; other
entries are shared, and entries the inner strategy adds (e.g. ELAD's ``explanations``) are copied back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from distilloop.core.types import Selection
from distilloop.errors import ConfigError
from distilloop.strategies.base import Composite, SelectionContext, Strategy
from distilloop.strategies.embeddings import labeled_embeddings, pool_embeddings

#: ``ctx.extra`` entries with one row per unlabeled item
ALIGNED = ("proba", "embeddings")


def make_strategy(spec: Any, where: str = "strategy") -> Strategy:
    """A strategy from a registry name, a ``{"name": ..., **params}`` mapping, or an instance."""
    if isinstance(spec, Strategy):
        return spec
    from distilloop.registry import build

    if isinstance(spec, str):
        return build("strategy", spec, {}, where=where)
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        params = {k: v for k, v in spec.items() if k != "name"}
        return build("strategy", spec["name"], params, where=where)
    raise ConfigError(f"{where}: expected a strategy name or a table with 'name', got {spec!r}")


def subcontext(ctx: SelectionContext, idx: np.ndarray) -> SelectionContext:
    """``ctx`` restricted to the unlabeled items at positions ``idx``."""
    idx = np.asarray(idx, dtype=np.int64)
    extra = {k: v for k, v in ctx.extra.items() if k not in ALIGNED}
    for k in ALIGNED:
        if ctx.extra.get(k) is not None:
            extra[k] = np.asarray(ctx.extra[k])[idx]
    return SelectionContext([ctx.unlabeled_ids[i] for i in idx], [ctx.unlabeled_texts[i] for i in idx],
                            ctx.labeled_ids, ctx.labeled_texts, ctx.labeled_y, ctx.classes, ctx.rng,
                            student=ctx.student, round_no=ctx.round_no, extra=extra)


def run_on(strategy: Strategy, ctx: SelectionContext, idx: np.ndarray, n: int) -> Selection:
    """Run ``strategy`` on the subpool ``idx`` of ``ctx`` and copy what it added to ``ctx.extra`` back."""
    sub = subcontext(ctx, idx)
    sel = strategy.select(sub, n)
    for k, v in sub.extra.items():
        if k not in ALIGNED:
            ctx.extra[k] = v
    return sel


class _Wrapper(Composite):
    def __init__(self, base: Any = "entropy") -> None:
        self.base = base
        self.base_ = make_strategy(base, where="strategy.base")

    def children(self) -> list[Strategy]:
        return [self.base_]


class RandomSubpool(_Wrapper):
    """Runs ``base`` on a seeded uniform subpool of ``size`` items (at least ``n``)."""

    name = "random_subpool"

    def __init__(self, base: Any = "entropy", size: int = 10000) -> None:
        if size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        super().__init__(base)
        self.size = size

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        pool = len(ctx.unlabeled_ids)
        size = max(self.size, n)
        if size >= pool:
            return self.base_.select(ctx, n)
        idx = np.sort(ctx.rng.choice(pool, size=size, replace=False))
        return run_on(self.base_, ctx, idx, n)


class TopCandidates(_Wrapper):
    """Runs ``base`` on the ``size`` items that the cheap ``prefilter`` strategy ranks highest."""

    name = "top_candidates"

    def __init__(self, base: Any = "kmeans", prefilter: Any = "entropy", size: int = 1000) -> None:
        if size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        super().__init__(base)
        self.prefilter = prefilter
        self.prefilter_ = make_strategy(prefilter, where="strategy.prefilter")
        self.size = size

    def children(self) -> list[Strategy]:
        return [self.base_, self.prefilter_]

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        size = max(self.size, n)
        if size >= len(ctx.unlabeled_ids):
            return self.base_.select(ctx, n)
        cand = self.prefilter_.select(ctx, size)
        pos = {id_: i for i, id_ in enumerate(ctx.unlabeled_ids)}
        idx = np.array(sorted(pos[i] for i in cand.ids), dtype=np.int64)
        return run_on(self.base_, ctx, idx, n)


def nearest_unlabeled(pool: np.ndarray, labeled: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    """Positions in ``pool`` of the ``k`` nearest rows (Euclidean) to any row of ``labeled``, deduplicated."""
    pool = np.asarray(pool, dtype=np.float32)
    sq = np.einsum("ij,ij->i", pool, pool)
    k = min(k, len(pool))
    found: list[np.ndarray] = []
    for s in range(0, len(labeled), chunk):
        q = np.asarray(labeled[s:s + chunk], dtype=np.float32)
        d = sq[None, :] - 2.0 * (q @ pool.T)  # the query's own norm does not change its ranking
        found.append(np.argpartition(d, k - 1, axis=1)[:, :k].ravel())
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


class LabeledNeighbours(_Wrapper):
    """SEALS: runs ``base`` on the ``k`` nearest unlabeled neighbours of every labeled example.

    Needs embeddings (see :mod:`distilloop.strategies.embeddings`). With no labeled example yet, or fewer
    candidates than ``n``, the candidates are topped up with a seeded random sample of the rest.
    """

    name = "seals"
    own_needs = frozenset({"student", "embeddings"})

    def __init__(self, base: Any = "entropy", k: int = 100) -> None:
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        super().__init__(base)
        self.k = k

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        pool = len(ctx.unlabeled_ids)
        cand = np.zeros(0, dtype=np.int64)
        if ctx.labeled_ids:
            cand = nearest_unlabeled(pool_embeddings(ctx), labeled_embeddings(ctx), self.k)
        if len(cand) < n:
            rest = np.setdiff1d(np.arange(pool), cand)
            cand = np.concatenate([cand, ctx.rng.choice(rest, size=n - len(cand), replace=False)])
        if len(cand) >= pool:
            return self.base_.select(ctx, n)
        ctx.extra["seals_candidates"] = len(cand)
        return run_on(self.base_, ctx, np.sort(cand), n)
