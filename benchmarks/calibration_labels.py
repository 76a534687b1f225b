"""Batch calibration on teachers whose distributions leave labels out (OpenAI's ``top_logprobs`` with a dozen
labels): the share of labels right and the mean confidence before the calibration, after it as it was (a
left-out label floored at 1e-6), as it is now (each left-out label at half the smallest probability given), and
with an alternative that keeps the confidences (the left-out labels sharing half the smallest), side by side.

Simulated teachers, each answer's distribution holding at most 5 labels (the rest zero, as the API leaves them
out), 10 seeds:
- ``fair``: right 90% of the time, no lean (a calibration can only lose here);
- ``leaning``: a quarter of the answers on other classes go to one label, the gold label second (what the
  calibration is for);
on two kinds of sample: ``uniform`` (classes equally common, items drawn from the pool, calibrated to equal
shares) and ``skewed+mixture`` (classes 1 to 4 times as common as each other, calibrated to those shares, half
the items drawn from the pool and half evenly over the classes, as diverse selection picks rare classes more).

Run: ``.venv/bin/python benchmarks/calibration_labels.py`` (about 1 min on 2 cores).
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

SEEDS = 10
TOP_K = 5
Logs = Callable[[Mapping[str, float], Sequence[str]], list[float]]


def floored(d: Mapping[str, float], labels: Sequence[str]) -> list[float]:
    """The calibration's log probabilities as they were: a left-out label at 1e-6."""
    return [math.log(max(float(d[x]), 1e-6)) for x in labels]


def shared(d: Mapping[str, float], labels: Sequence[str]) -> list[float]:
    """The alternative: the left-out labels share half the smallest probability given (the confidences kept)."""
    given = [float(d[x]) for x in labels if float(d[x]) > 0]
    low = min(given) / (2 * (len(labels) - len(given)) or 1)
    return [math.log(max(float(d[x]), 1e-6)) if float(d[x]) > 0 else math.log(max(low, 1e-9)) for x in labels]


def fair(rng: random.Random, labels: list[str], gold: str) -> dict[str, float]:
    answer = gold if rng.random() < 0.9 else rng.choice([x for x in labels if x != gold])
    d = dict.fromkeys(labels, 0.0)
    d[answer] = rng.uniform(0.6, 0.99)
    return _fill(rng, d, labels)


def leaning(rng: random.Random, labels: list[str], gold: str) -> dict[str, float]:
    lean = labels[0]
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
    return _fill(rng, d, labels)


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


def run(teacher: Callable[..., dict[str, float]], k: int, n: int, seed: int, skewed: bool,
        logs: Logs | None) -> tuple[float, float]:
    """Labels right and the mean confidence of the answers, calibrated with ``logs`` (None: not calibrated)."""
    rng = random.Random(seed)
    labels = [f"class{i}" for i in range(k)]
    weights = [rng.choice([1, 1, 2, 4]) for _ in labels] if skewed else [1] * k
    prior = {x: w / sum(weights) for x, w in zip(labels, weights)} if skewed else None
    gold, votes = [], {}
    for i in range(n):
        g = rng.choice(labels) if skewed and i % 2 else rng.choices(labels, weights)[0]
        d = teacher(rng, labels, g)
        answer = max(labels, key=lambda x: d[x])
        gold.append(g)
        votes[str(i)] = [Vote("t", answer, None, d[answer], True, d)]
    if logs is not None:
        original = calibration._logs
        calibration._logs = logs  # type: ignore[assignment]
        try:
            votes = calibration.BatchCalibration().fit(votes.values(), labels, prior).apply(votes, labels)
        finally:
            calibration._logs = original  # type: ignore[assignment]
    right = sum(votes[str(i)][0].label == g for i, g in enumerate(gold)) / n
    return right, statistics.mean(float(votes[str(i)][0].confidence or 0) for i in range(n))


def main() -> None:
    print(f"labels right / mean confidence (mean of {SEEDS} seeds), answers holding at most {TOP_K} labels")
    columns: tuple[tuple[str, Logs | None], ...] = (
        ("raw", None), ("floored (was)", floored), ("half each (now)", calibration._logs), ("shared", shared))
    print(f"{'sample':<15} {'teacher':<8} {'labels':>6} {'answers':>7} " + " ".join(f"{c:>15}" for c, _ in columns))
    for skewed in (False, True):
        for name, teacher in (("fair", fair), ("leaning", leaning)):
            for k in (2, 12, 77):
                for n in (20, 240):
                    cells = []
                    for _, logs in columns:
                        runs = [run(teacher, k, n, s, skewed, logs) for s in range(SEEDS)]
                        right, conf = (statistics.mean(r[i] for r in runs) for i in (0, 1))
                        cells.append(f"{100 * right:5.1f}% / {conf:.2f}")
                    print(f"{'skewed+mixture' if skewed else 'uniform':<15} {name:<8} {k:>6} {n:>7} "
                          + " ".join(f"{c:>15}" for c in cells))


if __name__ == "__main__":
    main()
