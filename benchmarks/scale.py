"""Scale: a pool of 1,000,000 items embedded and scored by the local engine and by the Ray engine on a local
two-node cluster, the Ray path's cost model fitted from it, and the projection to 20M and 100M items.

    python benchmarks/scale.py [--items 1000000] [--address HOST:PORT] [--batch-rows 50000] [--n 1000]
    python benchmarks/scale.py --diversity 200000 --n 100 [--shards 10]

Without ``--address`` it starts a real cluster with ``ray start`` (a head and a second node on loopback, one CPU
each: this machine has 2 cores) and stops it at the end.

What is measured, per path: embedding the whole pool into the vector shards, then one round's scoring and
selection (entropy, ``--n`` picks, on a trained student). Embedding a million texts with the packaged MiniLM
takes about two hours on these 2 cores, so the million-item runs use a cheap deterministic encoder with the same
shapes (384-d vectors through the same caches, shards, engine and head: `benchmarks/_hashing.py`);
MiniLM itself is timed on a ``--minilm-sample`` of texts with one thread (one Ray worker's CPU) and substituted
for the cheap encoder's cost in the projection.

The Ray path's model: ``T(n, W) = a + n * (d + c / W)``, with ``a`` the fixed overhead of a pass (actors
started, the job planned: the fastest of ``--repeats`` passes over ``--small`` items), ``d`` the per-item work
the driver does itself (building the Arrow blocks, writing the returned vectors as shards, the merge: timed
inside the pass) and ``c`` the rest of the one-worker pass per item (the worker's cost, divided over ``W``
workers). The two-worker pass is printed beside the model's prediction for it. The figures are from a shared
2-core machine (other jobs ran beside it): a 2-worker pass shares those cores with the driver.
"""

from __future__ import annotations

import argparse
import copy
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._hashing import HashingEncoderStudent  # noqa: E402
from distilloop.core.types import Example  # noqa: E402
from distilloop.engine.base import Engine  # noqa: E402
from distilloop.storage.shards import VectorShards  # noqa: E402
from distilloop.storage.store import Store  # noqa: E402
from distilloop.strategies.base import SelectionContext  # noqa: E402
from distilloop.strategies.uncertainty import EntropySampling  # noqa: E402
from distilloop.students import embedding  # noqa: E402

WORDS = ("good bad great awful dull fine plot story actor scene film movie script music slow fast funny sad dark "
         "light long short warm cold smart silly bold flat rich thin").split()


def pool_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct synthetic review-like texts (an id word makes each unique)."""
    rng = np.random.default_rng(seed)
    words = np.asarray(WORDS)[rng.integers(0, len(WORDS), size=(n, 12))]
    return [f"item{i} " + " ".join(row) for i, row in enumerate(words)]


def trained_student(texts: list[str]) -> HashingEncoderStudent:
    y = ["positive" if ("good" in t) + ("great" in t) > ("bad" in t) + ("awful" in t) else "negative" for t in texts]
    return HashingEncoderStudent().fit(texts, y, classes=["negative", "positive"])  # type: ignore[return-value]


def fresh_store(folder: Path) -> tuple[Store, VectorShards]:
    folder.mkdir(parents=True)
    store = Store.create(folder / "b.db", [Example("x", {"text": "x"})], {})
    return store, VectorShards(store, folder / "b.vectors", min_shard_vectors=1000)


def context(texts: list[str], student) -> SelectionContext:
    return SelectionContext([str(i) for i in range(len(texts))], texts, [], [], [], ["negative", "positive"],
                            np.random.default_rng(7), student=student)


def forget(student) -> None:
    """What a new process starts with: no vectors in memory (they are in the shards)."""
    embedding._MEMORY.pop(student.embedding_key, None)
    student._stored = set()
    gc.collect()


def local_run(student, texts: list[str], folder: Path, n: int) -> dict[str, float | list[str]]:
    store, vectors = fresh_store(folder)
    engine = Engine(vectors)
    s = engine.attach(copy.deepcopy(student))
    t = time.perf_counter()
    s.encode(texts)
    embed_s = time.perf_counter() - t
    forget(s)
    t = time.perf_counter()
    sel = engine.select(EntropySampling(), context(texts, s), n)
    score_s = time.perf_counter() - t
    forget(s)
    store.close()
    return {"embed_s": embed_s, "score_s": score_s, "ids": sel.ids}


def ray_run(student, texts: list[str], folder: Path, n: int, address: str, workers: int,
            batch_rows: int) -> dict[str, float | list[str]]:
    from distilloop.engine.ray_engine import RayEngine

    store, vectors = fresh_store(folder)
    engine = RayEngine(vectors, address=address, workers=workers, batch_rows=batch_rows)
    engine.connect()
    s = copy.deepcopy(student)
    engine.last = {}
    t = time.perf_counter()
    engine.ensure_embedded(s, texts)
    embed_s = time.perf_counter() - t
    embed_driver_s = engine.last.get("driver_s", 0.0)
    t = time.perf_counter()
    sel = engine.select(EntropySampling(), context(texts, s), n)
    score_s = time.perf_counter() - t
    store.close()
    return {"embed_s": embed_s, "score_s": score_s, "ids": sel.ids, "embed_driver_s": embed_driver_s,
            "score_driver_s": engine.last.get("driver_s", 0.0)}


def minilm_seconds_per_item(texts: list[str]) -> float | None:
    """MiniLM's encode time per text on one thread (a 1-CPU worker), or None without the ``hf`` extra."""
    try:
        import torch

        from distilloop.students.embedding import EmbeddingLinear
    except ImportError:
        return None
    torch.set_num_threads(1)
    s = EmbeddingLinear()
    s.encode_uncached(texts[:16])  # load the model first
    t = time.perf_counter()
    s.encode_uncached(texts)
    return (time.perf_counter() - t) / len(texts)


def hashing_seconds_per_item(texts: list[str]) -> float:
    s = HashingEncoderStudent()
    t = time.perf_counter()
    s.encode_uncached(texts)
    return (time.perf_counter() - t) / len(texts)


def fit(a: float, big: int, t_big1: float, driver_s: float) -> tuple[float, float]:
    """(d, c) of T(n, W) = a + n (d + c / W): ``d`` the driver's own per-item seconds (measured inside the pass),
    ``c`` what is left of the one-worker run per item, the worker's cost."""
    d = driver_s / big
    return d, max(0.0, (t_big1 - a - driver_s) / big)


def diversity(rows: int, n: int, shards: int, dim: int = 64) -> None:
    """k-means and core-set at scale: on the whole pool (the exact answer of each method) against a seeded
    sample of candidates (``max_candidates``, what the strategies do by default) and against per-shard picks
    (each of ``shards`` shards picks ``n / shards`` on its own: what a map over shards would do). Measured over
    the whole pool: the coverage radius (k-center's objective) and the mean distance to the nearest pick
    (k-means'); lower is better."""
    from benchmarks.selection_speed import coverage
    from distilloop.strategies.diversity import CoreSet, KMeansSampling

    rng = np.random.default_rng(2)
    centres = rng.standard_normal((500, dim)).astype(np.float32) * 3
    emb = centres[rng.integers(0, 500, size=rows)] + rng.standard_normal((rows, dim), dtype=np.float32)
    labeled = rng.standard_normal((100, dim)).astype(np.float32) * 3
    ids = [str(i) for i in range(rows)]

    def pick(strategy, idx: np.ndarray, k: int) -> np.ndarray:
        ctx = SelectionContext([ids[i] for i in idx], [""] * len(idx), [f"l{i}" for i in range(100)], [""] * 100,
                               ["a"] * 100, ["a", "b"], np.random.default_rng(1))
        ctx.extra["embeddings"], ctx.extra["labeled_embeddings"] = emb[idx], labeled
        return np.asarray([int(i) for i in strategy.select(ctx, k).ids])

    print(f"\ndiversity at scale: {rows:,} x {dim} clustered vectors, 100 labeled, pick {n}; over the whole pool: "
          "coverage radius / mean distance to the nearest pick (lower is better)")
    print("| method | candidates | seconds | radius | mean distance | vs whole pool |")
    print("|---|---|---|---|---|---|")
    everything = np.arange(rows)
    for name, make in (("kmeans", lambda m: KMeansSampling(max_candidates=m)),
                       ("coreset", lambda m: CoreSet(max_candidates=m))):
        exact = None
        for label, m in (("whole pool", None), ("sample 100,000", 100_000), ("sample 20,000", 20_000),
                         (f"{shards} shards, {n // shards} each", "shards")):
            t = time.perf_counter()
            if m == "shards":
                parts = np.array_split(everything, shards)
                picked = np.concatenate([pick(make(None), p, n // shards) for p in parts])
            else:
                picked = pick(make(m), everything, n)
            secs = time.perf_counter() - t
            radius, mean = coverage(emb, labeled, picked)
            exact = exact or (radius, mean)
            print(f"| {name} | {label} | {secs:.1f} | {radius:.3f} | {mean:.3f} | "
                  f"{radius / exact[0]:.2f}x / {mean / exact[1]:.2f}x |", flush=True)


def hours(s: float) -> str:
    return f"{s / 3600:,.1f} h" if s >= 3600 else f"{s / 60:,.1f} min" if s >= 60 else f"{s:,.1f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-rows", type=int, default=50_000)
    ap.add_argument("--address", default="")
    ap.add_argument("--minilm-sample", type=int, default=256)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 10, 100])
    ap.add_argument("--diversity", type=int, default=0, metavar="ROWS",
                    help="measure k-means and core-set at scale on ROWS clustered vectors instead (see diversity())")
    ap.add_argument("--shards", type=int, default=10)
    args = ap.parse_args()
    if args.diversity:
        diversity(args.diversity, args.n, args.shards)
        return

    tmp = Path(tempfile.mkdtemp(prefix="dlscale"))
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    texts = pool_texts(args.items)
    student = trained_student(pool_texts(2000, seed=1))
    print(f"pool: {args.items:,} synthetic texts; cheap 384-d hashing encoder; entropy picks {args.n:,}", flush=True)

    local = local_run(student, texts, tmp / "local", args.n)
    print(f"local engine: embed {local['embed_s']:.1f} s, score+select {local['score_s']:.1f} s", flush=True)

    cluster = None
    address = args.address
    if not address:
        from distilloop.testing.ray_cluster import LocalRayCluster

        cluster = LocalRayCluster(pythonpath=str(ROOT)).start()
        address = cluster.address
    try:
        runs = {}
        for k in range(args.repeats):  # the fixed overhead: the fastest of a few tiny passes
            r = ray_run(student, texts[:args.small], tmp / f"ray-small-{k}", min(args.n, args.small), address, 2,
                        args.batch_rows)
            print(f"ray engine, {args.small:,} items, 2 workers: embed {r['embed_s']:.1f} s, "
                  f"score+select {r['score_s']:.1f} s", flush=True)
            for key in ("embed_s", "score_s"):
                runs[f"a_{key}"] = min(runs.get(f"a_{key}", float("inf")), float(r[key]))  # type: ignore[type-var]
        for workers in (1, 2):
            r = ray_run(student, texts, tmp / f"ray-full-{workers}", args.n, address, workers, args.batch_rows)
            runs[f"full/{workers}"] = r
            print(f"ray engine, {args.items:,} items, {workers} worker(s): embed {r['embed_s']:.1f} s "
                  f"(driver {r['embed_driver_s']:.1f} s), score+select {r['score_s']:.1f} s "
                  f"(driver {r['score_driver_s']:.1f} s)", flush=True)
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.stop()
    same = runs["full/2"]["ids"] == local["ids"] and runs["full/1"]["ids"] == local["ids"]  # type: ignore[index]
    print(f"\nthe Ray engine's {args.n:,} picks equal the local engine's: {same}")

    N = args.items
    print("\n| path | pass | items/s | per-item cost | fixed overhead |")
    print("|---|---|---|---|---|")
    for pass_ in ("embed", "score"):
        key = f"{pass_}_s"
        print(f"| local | {pass_} | {N / float(local[key]):,.0f} | {float(local[key]) / N * 1e6:.1f} µs | - |")
        a = float(runs[f"a_{key}"])  # type: ignore[arg-type]
        d, c = fit(a, N, float(runs["full/1"][key]), float(runs["full/1"][f"{pass_}_driver_s"]))
        for w in (1, 2):
            t = float(runs[f"full/{w}"][key])
            print(f"| ray, {w} worker(s) | {pass_} | {N / t:,.0f} | {t / N * 1e6:.1f} µs | "
                  f"model: {a + N * (d + c / w):.1f} s, measured {t:.1f} s |")
        print(f"| ray model | {pass_} | - | driver d = {d * 1e6:.1f} µs, worker c = {c * 1e6:.1f} µs | a = {a:.1f} s |")
        runs[pass_] = {"a": a, "d": d, "c": c}  # type: ignore[assignment]

    sample = pool_texts(args.minilm_sample, seed=2)
    c_minilm = minilm_seconds_per_item(sample)
    c_hash = hashing_seconds_per_item(pool_texts(20_000, seed=3))
    print(f"\nencoders, one thread: hashing {c_hash * 1e6:.1f} µs/text; MiniLM "
          + (f"{c_minilm * 1e3:.2f} ms/text ({1 / c_minilm:,.0f} texts/s) on {args.minilm_sample} texts"
             if c_minilm else "not installed (the hf extra)"))

    e, s = runs["embed"], runs["score"]  # type: ignore[index]
    print("\nprojected time, T(n, W) = a + n (d + c / W); MiniLM embedding: the cheap encoder's cost replaced")
    print("| items | workers | embed (cheap encoder) | embed (MiniLM) | one round's scoring |")
    print("|---|---|---|---|---|")
    for n_items in (20_000_000, 100_000_000):
        for w in args.workers:
            cheap = e["a"] + n_items * (e["d"] + e["c"] / w)
            minilm = (e["a"] + n_items * (e["d"] + max(0.0, e["c"] - c_hash + c_minilm) / w)) if c_minilm else None
            score = s["a"] + n_items * (s["d"] + s["c"] / w)
            print(f"| {n_items / 1e6:.0f}M | {w} | {hours(cheap)} | {hours(minilm) if minilm else '-'} | {hours(score)} |")
    print(f"\n(driver floor: embed {hours(e['d'] * 1e8)}, scoring {hours(s['d'] * 1e8)} per 100M items whatever W)")


if __name__ == "__main__":
    main()
