"""Selection speed on a large pool: picking 1,000 of 1,000,000 items from cached scores and embeddings.

    python benchmarks/selection_speed.py [--pool 1000000] [--classes 5] [--dim 64] [--n 1000]

Part 1, uncertainty: distilloop's entropy, least confidence and breaking ties, and small-text's
PredictionEntropy, LeastConfidence and BreakingTies, run on the same cached probability array (pool x classes,
float64) in this process. small-text's strategies call ``clf.predict_proba(dataset)``: a shim classifier
returns the cached array, so both sides measure scoring and picking, not inference. distilloop's figure is the
median of 3 runs of ``Strategy.select`` (context building included). small-text scores row by row
(``np.apply_along_axis``) for some strategies: each is first timed on the first ``--st-rows`` rows; if the
linear extrapolation to the whole pool exceeds ``--st-budget`` seconds, that extrapolation is printed (marked
``~``) instead of running it for minutes (``--full-small-text`` runs everything on the whole pool).

Part 2, diversity: distilloop's k-means (item nearest each of n centres) and core-set (greedy k-center) on
cached float32 embeddings (pool x dim, drawn around 500 Gaussian centres) with 100 labeled items. Both work on
their documented default candidate subsample: a seeded uniform 100,000 of the pool (``max_candidates``), and
k-means fits its centres on a further 20 items per cluster before assigning every candidate. small-text's
``greedy_coreset`` (a function on raw arrays; it recomputes distances to every selected item at each step, so
its cost grows with n^2 x pool; called with ``batch_size`` = all rows, one distance call per step, its fastest
setting: its default of 100 rows per call is several times slower here) and ``EmbeddingKMeans.sample`` (full scikit-learn KMeans with n clusters)
cannot run at this size in minutes, so the comparison is on a shared smaller problem (``--cmp-rows`` rows of
the same embeddings, pick ``--cmp-n``), with distilloop on the whole of it (``max_candidates=None``); it also
prints each side's coverage radius (the largest distance from a pool item to the nearest labeled or picked
item: lower is better, k-center's objective) and the mean distance to the nearest pick (k-means' objective).
``--whole-pool`` adds distilloop's k-means and core-set without the candidate subsample (one run each).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from distilloop.strategies.base import SelectionContext
from distilloop.strategies.diversity import CoreSet, KMeansSampling, nearest_centre
from distilloop.strategies.uncertainty import BreakingTies, EntropySampling, LeastConfidence


class CachedStudent:
    version_ = "cached"

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def is_fitted(self) -> bool:
        return True

    def predict_proba(self, texts):  # the pool's scores are cached: no inference
        return self.proba


class Shim:
    """small-text's side of the cache: a classifier whose ``predict_proba`` returns the cached array."""

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def predict_proba(self, dataset):
        return self.proba


def timed(fn, repeats: int = 3) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def small_text_time(cls, proba: np.ndarray, n: int, st_rows: int, budget: float, full: bool) -> tuple[float, str]:
    """(seconds, how): on the whole array, or extrapolated linearly from its first ``st_rows`` rows."""

    def run(rows: int) -> float:
        idx = np.arange(rows)
        empty = np.array([], dtype=int)
        return timed(lambda: cls().query(Shim(proba[:rows]), idx, idx, empty, empty, n=n), repeats=1)

    rows = min(st_rows, len(proba))
    if full or rows == len(proba):
        return run(len(proba)), "measured"
    est = run(rows) * len(proba) / rows
    if est <= budget:
        return run(len(proba)), "measured"
    return est, f"~ est. from {rows:,} rows"


def coverage(X: np.ndarray, labeled: np.ndarray, picked: np.ndarray) -> tuple[float, float]:
    """(coverage radius, mean distance to the nearest pick) of ``picked`` rows of ``X``."""
    _, d_all = nearest_centre(X, np.concatenate([labeled, X[picked]]))
    _, d_pick = nearest_centre(X, X[picked])
    return float(np.sqrt(d_all.max())), float(np.sqrt(d_pick).mean())


def uncertainty_part(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(args.classes), size=args.pool)
    ids = [f"x{i}" for i in range(args.pool)]
    texts = [""] * args.pool
    student = CachedStudent(proba)

    def ctx() -> SelectionContext:
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

    print(f"\nuncertainty: pool {args.pool:,} x {args.classes} classes (float64), pick {args.n:,}; "
          "distilloop median of 3, small-text 1 run", flush=True)
    print(f"{'distilloop':17} {'small-text':18} {'distilloop s':>12} {'small-text s':>12} "
          f"{'ratio st/dl':>11} {'under 1 s':>9}  small-text figure")
    for name, ours, st_name, theirs in (("entropy", EntropySampling(), "PredictionEntropy", StPE),
                                        ("least_confidence", LeastConfidence(), "LeastConfidence", StLC),
                                        ("margin", BreakingTies(), "BreakingTies", StBT)):
        t_ours = timed(lambda s=ours: s.select(ctx(), args.n))
        if theirs is not None:
            t_theirs, how = small_text_time(theirs, proba, args.n, args.st_rows, args.st_budget,
                                            args.full_small_text)
            theirs_s, ratio = f"{t_theirs:.3f}", f"{t_theirs / t_ours:.2f}"
        else:
            theirs_s, ratio, how = "-", "-", "small-text not installed"
        print(f"{name:17} {st_name:18} {t_ours:12.3f} {theirs_s:>12} {ratio:>11} "
              f"{'yes' if t_ours < 1 else 'NO':>9}  {how}", flush=True)


def diversity_part(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((500, args.dim)).astype(np.float32) * 3
    emb = centres[rng.integers(0, 500, size=args.pool)]
    emb += rng.standard_normal(emb.shape, dtype=np.float32)
    labeled = rng.standard_normal((100, args.dim)).astype(np.float32) * 3
    ids = [f"x{i}" for i in range(args.pool)]

    def ctx(rows: int) -> SelectionContext:
        c = SelectionContext(ids[:rows], ids[:rows], [f"l{i}" for i in range(len(labeled))], [""] * len(labeled),
                             ["a"] * len(labeled), ["a", "b"], np.random.default_rng(1))
        c.extra["embeddings"] = emb[:rows]
        c.extra["labeled_embeddings"] = labeled
        return c

    print(f"\ndiversity: pool {args.pool:,} x {args.dim} float32 embeddings, 100 labeled, pick {args.n:,}; "
          "default candidate subsample 100,000; median of 3", flush=True)
    print(f"{'distilloop':20} {'seconds':>8} {'under 10 s':>10}")
    runs = [("kmeans", KMeansSampling(), 3), ("coreset", CoreSet(), 3)]
    if args.whole_pool:
        runs += [("kmeans, whole pool", KMeansSampling(max_candidates=None), 1),
                 ("coreset, whole pool", CoreSet(max_candidates=None), 1)]
    for name, strat, repeats in runs:
        t = timed(lambda s=strat: s.select(ctx(args.pool), args.n), repeats=repeats)
        print(f"{name:20} {t:8.3f} {'yes' if t < 10 else 'NO':>10}" + ("  (1 run)" if repeats == 1 else ""),
              flush=True)

    try:
        from small_text.query_strategies.coresets import greedy_coreset
        from small_text.query_strategies.strategies import EmbeddingKMeans
    except ImportError:
        print("small-text not installed: no diversity comparison")
        return
    rows, n = args.cmp_rows, args.cmp_n
    X = np.concatenate([emb[:rows], labeled])  # small-text wants one array with the labeled rows in it
    unl, lab = np.arange(rows), np.arange(rows, rows + len(labeled))
    print(f"\ndiversity vs small-text on the first {rows:,} rows of the same embeddings, pick {n}; "
          "1 run each; radius / mean dist: coverage (lower is better)", flush=True)
    print(f"{'distilloop':10} {'small-text':16} {'dl s':>7} {'st s':>8} {'ratio st/dl':>11} "
          f"{'dl radius':>9} {'st radius':>9} {'dl mean':>8} {'st mean':>8}")
    pairs = (
        ("coreset", CoreSet(max_candidates=None), "greedy_coreset",
         lambda: greedy_coreset(X, unl, lab, n, distance_metric="euclidean", batch_size=rows)),
        ("kmeans", KMeansSampling(max_candidates=None), "EmbeddingKMeans",
         lambda: EmbeddingKMeans(normalize=False).sample(None, None, unl, lab, None, n, X)),
    )
    for name, strat, st_name, st_fn in pairs:
        t = time.perf_counter()
        sel = strat.select(ctx(rows), n)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        st_idx = np.asarray(st_fn(), dtype=np.int64)
        t_st = time.perf_counter() - t
        ours_idx = np.array([int(i[1:]) for i in sel.ids])
        r_dl, m_dl = coverage(emb[:rows], labeled, ours_idx)
        r_st, m_st = coverage(emb[:rows], labeled, st_idx)
        print(f"{name:10} {st_name:16} {t_ours:7.3f} {t_st:8.3f} {t_st / t_ours:11.1f} "
              f"{r_dl:9.3f} {r_st:9.3f} {m_dl:8.3f} {m_st:8.3f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--st-rows", type=int, default=100_000, help="rows small-text is first timed on")
    ap.add_argument("--st-budget", type=float, default=20.0, help="seconds small-text may take on the whole pool")
    ap.add_argument("--full-small-text", action="store_true", help="always run small-text on the whole pool")
    ap.add_argument("--cmp-rows", type=int, default=10_000)
    ap.add_argument("--cmp-n", type=int, default=100)
    ap.add_argument("--whole-pool", action="store_true",
                    help="also time k-means and core-set without the candidate subsample (one run each)")
    ap.add_argument("--skip", choices=["uncertainty", "diversity"], action="append", default=[])
    args = ap.parse_args()
    started = time.perf_counter()
    if "uncertainty" not in args.skip:
        uncertainty_part(args)
    if "diversity" not in args.skip:
        diversity_part(args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
