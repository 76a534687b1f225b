"""Pool embeddings for the diversity strategies.

Where the vectors come from, in order:

1. ``ctx.extra["embeddings"]``: an array aligned with ``ctx.unlabeled_ids`` (precomputed, e.g. by a
   benchmark or by the compute engine that embedded the pool); and ``ctx.extra["labeled_embeddings"]`` for the
   labeled set, if the strategy needs it.
2. ``ctx.extra["embed_fn"]``: a callable ``texts -> array (len(texts), d)`` the runner provides (e.g. a
   frozen sentence encoder).
3. ``ctx.student.embed(texts)``. A student with a frozen encoder keeps its vectors in the campaign's embedding
   cache itself (by encoder and text hash, see :class:`~distilloop.core.protocols.VectorCache`); a student whose
   representation is retrained each round (TF-IDF, a fine-tuned LM) is embedded afresh, so nothing here is
   stored: within one selection each item is embedded once (``ctx.extra["_embedding_cache"]``).

Sparse vectors (TF-IDF) are reduced with a seeded sparse random projection to ``SPARSE_DIM`` dimensions
(Johnson-Lindenstrauss: pairwise distances are kept up to a small factor; Achlioptas, "Database-friendly random
projections", PODS 2001).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distilloop.errors import DistilloopError
from distilloop.strategies.base import SelectionContext

SPARSE_DIM = 256


def _embedder(ctx: SelectionContext) -> tuple[str, Callable[[Sequence[str]], Any]]:
    fn = ctx.extra.get("embed_fn")
    if fn is not None:
        return str(ctx.extra.get("embedder_key", "embed_fn")), fn
    student = ctx.student
    if student is None or not hasattr(student, "embed"):
        raise DistilloopError("this strategy needs embeddings: expected a student with embed(texts) or "
                              "ctx.extra['embed_fn'], got neither; pick a student with a representation "
                              "(e.g. embedding_linear) or an uncertainty strategy")
    key = getattr(student, "embedding_key", None) or getattr(student, "version_", None) or type(student).__name__
    return f"student:{key}", student.embed


def _dense(x: Any, rows: int) -> np.ndarray:
    if x is None:
        raise DistilloopError("the student's embed() returned None (it has no representation); provide "
                              "ctx.extra['embed_fn'] or use a student with embeddings")
    if hasattr(x, "tocsr"):  # scipy sparse: a seeded projection to a small dense space
        from sklearn.random_projection import SparseRandomProjection

        proj = SparseRandomProjection(n_components=min(SPARSE_DIM, x.shape[1]), random_state=0)
        proj.fit(x[:1])  # only the number of features matters; the matrix is fixed by the seed
        x = proj.transform(x)
        x = x.toarray() if hasattr(x, "toarray") else x
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) != rows:
        raise DistilloopError(f"embeddings must have shape (n_texts, d) = ({rows}, d), got {x.shape}")
    return x


def embed_ids(ctx: SelectionContext, ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """Vectors for ``ids`` (with their ``texts``), each embedded once per selection."""
    key, fn = _embedder(ctx)
    memory: dict[str, np.ndarray] = ctx.extra.setdefault("_embedding_cache", {}).setdefault(key, {})
    missing = [i for i, id_ in enumerate(ids) if id_ not in memory]
    if missing:
        vecs = _dense(fn([texts[i] for i in missing]), len(missing))
        for i, v in zip(missing, vecs):
            memory[ids[i]] = v
        ctx.extra["n_embedded"] = ctx.extra.get("n_embedded", 0) + len(missing)
    if not ids:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([memory[i] for i in ids])


def pool_embeddings(ctx: SelectionContext) -> np.ndarray:
    """Vectors of the unlabeled pool, shape ``(len(ctx.unlabeled_ids), d)``."""
    pre = ctx.extra.get("embeddings")
    if pre is not None:
        pre = np.asarray(pre)
        if len(pre) != len(ctx.unlabeled_ids):
            raise DistilloopError(f"ctx.extra['embeddings'] must have one row per unlabeled item "
                                  f"({len(ctx.unlabeled_ids)}), got {len(pre)}")
        return pre
    return embed_ids(ctx, ctx.unlabeled_ids, ctx.unlabeled_texts)


def labeled_embeddings(ctx: SelectionContext) -> np.ndarray:
    """Vectors of the labeled set (``ctx.extra["labeled_embeddings"]`` when precomputed)."""
    pre = ctx.extra.get("labeled_embeddings")
    if pre is not None:
        return np.asarray(pre)
    if not ctx.labeled_ids:
        return np.zeros((0, 0), dtype=np.float32)
    if ctx.extra.get("embeddings") is not None and ctx.extra.get("embed_fn") is None and ctx.student is None:
        raise DistilloopError("precomputed pool embeddings were given but not the labeled set's; add "
                              "ctx.extra['labeled_embeddings'] or an embed_fn")
    return embed_ids(ctx, ctx.labeled_ids, ctx.labeled_texts)

