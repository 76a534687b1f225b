"""The compute engine's contract, the local engine, and the exact merge of per-shard candidates.

An engine does the pool-sized work of a round's selection: embedding the unlabeled pool (once per encoder, into
the vector shards) and scoring it with the round's student. The local engine does it in the campaign's process
through the strategy itself; the Ray engine (:mod:`distilloop.engine.ray_engine`) on a cluster. Every decision
(the selection, then the labels and the ledger) is made and written by the campaign's process either way.

Exactness of the merge: :func:`~distilloop.strategies.base.top_n` orders the pool by score (highest first), then
by a seeded permutation ``jitter`` of the pool (a tie-break that is a strict total order). An item among the
global first ``n`` has fewer than ``n`` items before it in the whole pool, so fewer than ``n`` in its own shard:
it is among its shard's first ``n``. So the first ``n`` of the union of every shard's first ``n``, in the same
order, are exactly the picks of ``top_n`` over the whole pool (:func:`shard_top`, :func:`merge_top`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distilloop.core.types import Selection
from distilloop.storage.shards import VectorShards
from distilloop.strategies.base import SelectionContext, Strategy
from distilloop.strategies.uncertainty import ScoreStrategy


def shard_top(scores: np.ndarray, jitter: np.ndarray, n: int) -> np.ndarray:
    """Positions (in this shard) of its first ``n`` items in ``top_n``'s order: score descending, then jitter."""
    scores = np.asarray(scores, dtype=np.float64)
    if 4 * n < len(scores) and not np.isnan(scores).any():
        kth = np.partition(scores, len(scores) - n)[len(scores) - n]
        cand = np.flatnonzero(scores >= kth)
        return cand[np.lexsort((jitter[cand], -scores[cand]))][:n]
    return np.lexsort((jitter, -scores))[:n]


def merge_top(pos: np.ndarray, scores: np.ndarray, jitter: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The pool positions and scores of the first ``n`` of the shards' candidates, in ``top_n``'s order."""
    order = np.lexsort((jitter, -np.asarray(scores, dtype=np.float64)))[:n]
    return pos[order], scores[order]


def mergeable(strategy: Strategy, ctx: SelectionContext) -> bool:
    """Whether the engine can pick for ``strategy`` itself from per-shard candidates (the uncertainty family on
    a trained student, with nothing precomputed in the context that the strategy would read instead)."""
    return (isinstance(strategy, ScoreStrategy) and ctx.student is not None and ctx.student.is_fitted()
            and ctx.extra.get("proba") is None)


def vector_student(student: Any) -> bool:
    """A student with a frozen encoder whose vectors are cached: its pool is embedded once, into the shards."""
    return all(hasattr(student, a) for a in ("embedding_key", "encode_uncached", "proba_from_vectors",
                                                "attach_cache"))


class Engine:
    """Base of the engines, and the local engine itself: the strategy runs in the campaign's process, and a
    frozen-encoder student keeps its vectors in the campaign's shards (``vectors``)."""

    name = "local"

    def __init__(self, vectors: VectorShards) -> None:
        self.vectors = vectors

    def attach(self, student: Any) -> Any:
        """Give a frozen-encoder student the campaign's vector cache; returns it."""
        if student is not None and hasattr(student, "attach_cache"):
            student.attach_cache(self.vectors)
        return student

    def select(self, strategy: Strategy, ctx: SelectionContext, n: int) -> Selection:
        """The round's picks: from the engine's merged per-shard candidates where it can, else the strategy's."""
        if ctx.unlabeled_ids and n >= 1:
            picked = self.prepare(strategy, ctx, min(int(n), len(ctx.unlabeled_ids)))
            if picked is not None:
                return picked
        return strategy.select(ctx, n)

    def prepare(self, strategy: Strategy, ctx: SelectionContext, n: int) -> Selection | None:
        """Do the pool-sized work before ``strategy`` runs (fill ``ctx.extra``), or pick (a Selection)."""
        return None

    def embed_pool(self, strategy: Strategy, ctx: SelectionContext, progress: Any) -> int:
        """Before the round's selection (and its spinner), for an engine that embeds the whole pool up front (Ray,
        into shards): that pass, with a bar; how many texts it embedded. Here nothing: the strategy embeds what it
        reads (a diversity strategy on a large pool: its candidate sample only), and a long pass says how far it
        is on the selection's spinner."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine's connections."""


def jitter_for(ctx: SelectionContext) -> np.ndarray:
    """The tie-break permutation ``top_n`` draws from ``ctx.rng`` (drawn here instead, the same draw)."""
    return ctx.rng.permutation(len(ctx.unlabeled_ids))


def selection_from(ctx: SelectionContext, pos: np.ndarray, scores: np.ndarray) -> Selection:
    return Selection([ctx.unlabeled_ids[int(i)] for i in pos], [float(s) for s in scores])
