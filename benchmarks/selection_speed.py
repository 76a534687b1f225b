"""Selection speed on a large pool: picking 1,000 of 1,000,000 items from cached student probabilities.

distilloop's uncertainty strategies (entropy, least confidence, breaking ties) and small-text's
(PredictionEntropy, LeastConfidence, BreakingTies) run on the same cached probability array in the same
process; distilloop's figure is the median of 3 runs, small-text's one run, printed with the ratio small-text / distilloop.

    python benchmarks/selection_speed.py [--pool 1000000] [--classes 5] [--n 1000]

small-text's strategies call ``clf.predict_proba(dataset)``; a shim classifier returns the cached array, so
both sides measure scoring and picking only, not inference.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from distilloop.strategies.base import SelectionContext
from distilloop.strategies.uncertainty import BreakingTies, EntropySampling, LeastConfidence


class CachedStudent:
    version_ = "cached"

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def is_fitted(self) -> bool:
        return True

    def predict_proba(self, texts):  # the pool's scores are cached: no inference
        return self.proba


def timed(fn, repeats: int = 3) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(args.classes), size=args.pool)
    ids = [f"x{i}" for i in range(args.pool)]
    texts = [""] * args.pool
    student = CachedStudent(proba)

    def ctx():
        c = SelectionContext(ids, texts, [], [], [], [str(i) for i in range(args.classes)],
                             np.random.default_rng(1), student=student)
        c.extra["proba"] = proba  # cached pool scores, as the store's cache provides them
        return c

    try:
        from small_text.query_strategies import BreakingTies as StBT
        from small_text.query_strategies import LeastConfidence as StLC
        from small_text.query_strategies import PredictionEntropy as StPE
    except ImportError:
        StBT = StLC = StPE = None

    class Shim:
        def predict_proba(self, dataset):
            return proba

    indices = np.arange(args.pool)
    empty = np.array([], dtype=int)
    print(f"pool {args.pool:,} x {args.classes} classes, pick {args.n:,}; distilloop median of 3 runs, small-text 1 run",
          flush=True)
    print(f"{'strategy':18} {'distilloop s':>12} {'small-text s':>12} {'small-text/distilloop':>22} {'under 1 s':>9}")
    for name, ours, theirs in (("entropy", EntropySampling(), StPE), ("least_confidence", LeastConfidence(), StLC),
                               ("breaking_ties", BreakingTies(), StBT)):
        t_ours = timed(lambda s=ours: s.select(ctx(), args.n))
        if theirs is not None:
            # small-text scores row by row (np.apply_along_axis): one run, it takes minutes at this size
            t_theirs = timed(lambda q=theirs: q().query(Shim(), indices, indices, empty, empty, n=args.n), repeats=1)
            ratio = f"{t_theirs / t_ours:.2f}"
            theirs_s = f"{t_theirs:.3f}"
        else:
            ratio, theirs_s = "-", "not installed"
        print(f"{name:18} {t_ours:12.3f} {theirs_s:>12} {ratio:>22} {'yes' if t_ours < 1 else 'NO':>9}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
