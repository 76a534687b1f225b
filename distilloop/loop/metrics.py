"""Evaluation metrics of a student on a labeled split."""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    if not y_true:
        return float("nan")
    return sum(a == b for a, b in zip(y_true, y_pred, strict=True)) / len(y_true)


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> float:
    scores = []
    for label in labels:
        tp = sum(1 for a, b in zip(y_true, y_pred, strict=True) if a == label and b == label)
        fp = sum(1 for a, b in zip(y_true, y_pred, strict=True) if a != label and b == label)
        fn = sum(1 for a, b in zip(y_true, y_pred, strict=True) if a == label and b != label)
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return sum(scores) / len(scores) if scores else float("nan")


def evaluate(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred, labels), "n": len(y_true)}
