"""Stopping rules beside the budget: when more labels stop paying for themselves.

* :class:`StabilizingPredictions` (Bloodgood & Vijay-Shanker, "A Method for Stopping Active Learning Based
  on Stabilizing Predictions and the Need for User-Adjustable Stopping", CoNLL 2009): the student predicts
  a fixed *stop set* of unlabeled items every round (no labels needed); stop when Cohen's kappa between
  successive rounds' predictions stays at or above ``threshold`` (paper: 0.99) over the last ``window``
  comparisons (paper: their mean over 3).
* :class:`DevTarget`: stop once the student's score on the labeled dev split reaches ``target`` for
  ``patience`` successive rounds.

Both are plain objects fed one round at a time (``update(...) -> bool``, ``True`` = stop); the round runner
owns them and decides what stopping means (finish the campaign, tell the user).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa between two label sequences (1.0 when both are identical, even if constant)."""
    if len(a) != len(b):
        raise ValueError(f"both prediction lists must cover the same stop set, got {len(a)} and {len(b)}")
    if not a:
        return 1.0
    labels = sorted(set(a) | set(b))
    ia = np.array([labels.index(x) for x in a])
    ib = np.array([labels.index(x) for x in b])
    po = float(np.mean(ia == ib))
    pa = np.bincount(ia, minlength=len(labels)) / len(a)
    pb = np.bincount(ib, minlength=len(labels)) / len(b)
    pe = float(pa @ pb)
    if pe >= 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1.0 - pe)


def choose_stop_set(ids: Sequence[str], size: int, rng: np.random.Generator) -> list[str]:
    """A fixed, seeded sample of unlabeled ids to predict every round (paper: 2,000 items)."""
    size = min(size, len(ids))
    return [ids[i] for i in sorted(rng.choice(len(ids), size=size, replace=False))]


class StabilizingPredictions:
    """Stop when successive rounds' predictions on a fixed stop set agree (Cohen's kappa)."""

    def __init__(self, threshold: float = 0.99, window: int = 3, rule: str = "mean") -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a kappa in [-1, 1], got {threshold!r}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window!r}")
        if rule not in ("mean", "all"):
            raise ValueError(f"rule must be 'mean' (the paper's) or 'all', got {rule!r}")
        self.threshold = threshold
        self.window = window
        self.rule = rule
        self.kappas: list[float] = []
        self._last: list[str] | None = None

    def update(self, predictions: Sequence[str]) -> bool:
        """Record this round's predictions on the stop set (same items, same order); ``True`` = stop."""
        predictions = list(predictions)
        if self._last is not None:
            self.kappas.append(cohen_kappa(self._last, predictions))
        self._last = predictions
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        if len(self.kappas) < self.window:
            return False
        recent = self.kappas[-self.window:]
        return (float(np.mean(recent)) if self.rule == "mean" else min(recent)) >= self.threshold


class DevTarget:
    """Stop once the dev-split score reaches ``target`` (``higher_is_better``) for ``patience`` rounds."""

    def __init__(self, target: float, patience: int = 1, higher_is_better: bool = True) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience!r}")
        self.target = target
        self.patience = patience
        self.higher_is_better = higher_is_better
        self.history: list[float] = []

    def update(self, score: float) -> bool:
        self.history.append(float(score))
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        recent = self.history[-self.patience:]
        if len(recent) < self.patience:
            return False
        return all(s >= self.target if self.higher_is_better else s <= self.target for s in recent)
