"""BALD: Bayesian Active Learning by Disagreement (Houlsby, Huszár, Ghahramani & Lengyel, arXiv 1112.5745,
2011; with Monte Carlo dropout samples as in Gal, Islam & Ghahramani, "Deep Bayesian Active Learning with
Image Data", ICML 2017).

The score of an item is the mutual information between its label and the model's parameters,
``H[mean_k p_k] - mean_k H[p_k]``: high when the samples are individually confident but disagree with each
other, and low when they agree (even on an uncertain answer, which plain entropy would pick).

The samples come from a small optional protocol, looked up in this order:

* ``ctx.extra["sample_proba"]``: either an array of shape ``(k, len(pool), n_classes)`` aligned with the
  unlabeled pool, or a callable ``(texts, k) -> array (k, len(texts), n_classes)``;
* ``ctx.student.sample_proba(texts, k) -> array (k, len(texts), n_classes)``: a student that can draw
  ``k`` stochastic predictions (MC dropout, a deep ensemble, a posterior sample of its weights).

Each ``(len(texts), n_classes)`` slice holds probabilities in the order of ``ctx.classes``.
"""

from __future__ import annotations

import numpy as np

from distilloop.core.types import Selection
from distilloop.errors import DistilloopError
from distilloop.strategies.base import SelectionContext, Strategy, top_n
from distilloop.strategies.uncertainty import entropy


def bald(samples: np.ndarray) -> np.ndarray:
    """Mutual information per item from samples of shape ``(k, n, c)``."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 3:
        raise DistilloopError(f"BALD samples must have shape (k, n_items, n_classes), got {samples.shape}")
    mean_entropy = np.mean([entropy(s) for s in samples], axis=0)
    return np.maximum(entropy(samples.mean(axis=0)) - mean_entropy, 0.0)


def sample_proba(ctx: SelectionContext, k: int) -> np.ndarray:
    src = ctx.extra.get("sample_proba")
    if src is None and ctx.student is not None and hasattr(ctx.student, "sample_proba"):
        src = ctx.student.sample_proba
    if src is None:
        raise DistilloopError("bald needs several stochastic predictions per item: expected "
                              "student.sample_proba(texts, k) or ctx.extra['sample_proba'], got neither; use a "
                              "student that samples (MC dropout, an ensemble) or the 'qbc' strategy")
    out = np.asarray(src(ctx.unlabeled_texts, k) if callable(src) else src, dtype=np.float64)
    if out.ndim != 3 or out.shape[1] != len(ctx.unlabeled_ids):
        raise DistilloopError(f"sample_proba must have shape (k, {len(ctx.unlabeled_ids)}, n_classes), "
                              f"got {out.shape}")
    return out


class BALD(Strategy):
    """Picks the items whose sampled predictions disagree most (highest mutual information).

    ``n_samples``: how many stochastic predictions to ask for per item (``k``).
    """

    name = "bald"
    own_needs = frozenset({"student", "probabilities", "samples"})

    def __init__(self, n_samples: int = 10) -> None:
        if n_samples < 2:
            raise ValueError(f"n_samples must be at least 2 for disagreement to mean anything, got {n_samples!r}")
        self.n_samples = n_samples

    def scores(self, ctx: SelectionContext) -> np.ndarray:
        return bald(sample_proba(ctx, self.n_samples))

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        return top_n(ctx.unlabeled_ids, self.scores(ctx), n, ctx.rng)
