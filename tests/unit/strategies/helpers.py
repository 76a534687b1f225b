"""Small fixtures shared by the strategy tests: fixed-probability students and blob-shaped pools."""

import numpy as np

from distilloop.core.types import Selection
from distilloop.strategies.base import SelectionContext, Strategy


class FixedProba:
    """A fitted student with given probabilities and embeddings, in pool order."""

    version_ = "fixed"

    def __init__(self, proba=None, emb=None):
        self.proba = None if proba is None else np.asarray(proba, dtype=float)
        self.emb = None if emb is None else np.asarray(emb, dtype=float)
        self.embedded = 0

    def is_fitted(self):
        return True

    def predict_proba(self, texts):
        return self.proba[[int(t.split()[-1]) for t in texts]]

    def embed(self, texts):
        self.embedded += len(texts)
        return self.emb[[int(t.split()[-1]) for t in texts]]


def pool_ctx(n, *, proba=None, emb=None, labeled=(), seed=0, **extra):
    """A pool ``p0..p{n-1}`` whose text ``item i`` indexes row ``i`` of ``proba``/``emb``.

    ``labeled``: rows of ``emb`` to treat as labeled (they are removed from the pool).
    """
    pool = [i for i in range(n) if i not in set(labeled)]
    student = FixedProba(proba, emb)
    return SelectionContext([f"p{i}" for i in pool], [f"item {i}" for i in pool], [f"p{i}" for i in labeled],
                            [f"item {i}" for i in labeled], ["a"] * len(labeled), ["a", "b"],
                            np.random.default_rng(seed), student=student, extra=dict(extra))


def blobs(sizes, dim=4, spread=0.05, seed=0):
    """Points in well-separated blobs; returns (points, blob index of each point)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[: len(sizes)] * 10
    X = np.concatenate([c + spread * rng.standard_normal((s, dim)) for c, s in zip(centres, sizes)])
    return X, np.repeat(np.arange(len(sizes)), sizes)


class Recording(Strategy):
    """Takes the first n items of whatever pool it is given, and remembers that pool."""

    name = "recording"
    requires_student = False

    def __init__(self):
        self.seen = []

    def query(self, ctx, n):
        self.seen.append(list(ctx.unlabeled_ids))
        ctx.extra["added_by_inner"] = True
        return Selection(ctx.unlabeled_ids[:n], [0.0] * n)
