"""Batch calibration on teachers whose distributions leave labels out (OpenAI's ``top_logprobs`` with a dozen
labels): the share of labels right before the calibration, after it as it was (a left-out label floored at 1e-6),
and after it now (half the smallest probability given), side by side.

Two simulated teachers, 20 seeds each, equal true class shares, each answer's distribution holding at most 5
labels (the rest zero, as the API leaves them out):
- ``fair``: right 90% of the time, no lean (a calibration can only lose here);
- ``leaning``: a quarter of the answers on other classes go to one label, the gold label second (what the
  calibration is for).

Run: ``.venv/bin/python benchmarks/calibration_labels.py`` (about 4 s).
"""

from __future__ import annotations

import math
import random
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distilloop.annotators import calibration  # noqa: E402
from distilloop.core.types import Vote  # noqa: E402

SEEDS = 20
TOP_K = 5


def floored(d: Mapping[str, float], labels: Sequence[str]) -> list[float]:
    """The calibration's log probabilities as they were: a left-out label at 1e-6."""
    return [math.log(max(float(d[x]), 1e-6)) for x in labels]


def fair(rng: random.Random, labels: list[str]) -> tuple[str, dict[str, float]]:
    gold = rng.choice(labels)
    answer = gold if rng.random() < 0.9 else rng.choice([x for x in labels if x != gold])
    d = dict.fromkeys(labels, 0.0)
    d[answer] = rng.uniform(0.6, 0.99)
    return gold, _fill(rng, d, labels)


def leaning(rng: random.Random, labels: list[str]) -> tuple[str, dict[str, float]]:
    gold, lean = rng.choice(labels), labels[0]
    d = dict.fromkeys(labels, 0.0)
    if gold != lean and rng.random() < 0.25:  # the lean: the gold label second
        d[lean] = rng.uniform(0.45, 0.7)
        d[gold] = (1 - d[lean]) * 0.8
    elif rng.random() < 0.9:
        d[gold] = rng.uniform(0.6, 0.99)
        if gold != lean:
            d[lean] = (1 - d[gold]) * 0.5
    else:
        wrong = rng.choice([x for x in labels if x != gold])
        d[wrong] = rng.uniform(0.5, 0.9)
        d[gold] = (1 - d[wrong]) * 0.5
    return gold, _fill(rng, d, labels)


def _fill(rng: random.Random, d: dict[str, float], labels: list[str]) -> dict[str, float]:
    """The rest of the mass on a few more labels, up to ``TOP_K`` given; every other label zero."""
    others = [x for x in labels if d[x] == 0]
    rng.shuffle(others)
    extra = others[:max(0, TOP_K - sum(v > 0 for v in d.values()))]
    rest = max(0.0, 1 - sum(d.values()))
    for x in extra:
        d[x] = rest / len(extra)
    total = sum(d.values())
    return {x: v / total for x, v in d.items()}


def accuracy(teacher: Callable[..., tuple[str, dict[str, float]]], k: int, n: int, seed: int,
             logs: Callable[..., list[float]] | None) -> float:
    rng = random.Random(seed)
    labels = [f"class{i}" for i in range(k)]
    gold, votes = [], {}
    for i in range(n):
        g, d = teacher(rng, labels)
        answer = max(labels, key=lambda x: d[x])
        gold.append(g)
        votes[str(i)] = [Vote("t", answer, None, d[answer], True, d)]
    if logs is not None:
        original = calibration._logs
        calibration._logs = logs  # type: ignore[assignment]
        try:
            cal = calibration.BatchCalibration().fit(votes.values(), labels)
            votes = cal.apply(votes, labels)
        finally:
            calibration._logs = original  # type: ignore[assignment]
    return sum(votes[str(i)][0].label == g for i, g in enumerate(gold)) / n


def main() -> None:
    print(f"labels right (mean of {SEEDS} seeds), answers holding at most {TOP_K} labels")
    print(f"{'teacher':<8} {'labels':>6} {'answers':>7} {'raw':>6} {'floored':>8} {'now':>6}")
    for name, teacher in (("fair", fair), ("leaning", leaning)):
        for k in (2, 12, 30):
            for n in (20, 60, 240):
                row = [statistics.mean(accuracy(teacher, k, n, s, logs) for s in range(SEEDS))
                       for logs in (None, floored, calibration._logs)]
                print(f"{name:<8} {k:>6} {n:>7} " + " ".join(f"{100 * a:>{w}.1f}%" for a, w in zip(row, (5, 7, 5))))


if __name__ == "__main__":
    main()
