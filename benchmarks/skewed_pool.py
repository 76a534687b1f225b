"""Calibration on a skewed pool: the teachers' labels and the student when one label is much more common.

Batch calibration (``[aggregation] calibrate = "batch"``, what `distilloop init` writes) removes each teacher's
lean toward a label by assuming every label is about equally common in the pool. The recorded Rotten Tomatoes
pool is 56% positive; real pools are often far more skewed (spam, toxicity, a rare intent). This builds pools of
the recorded items with a chosen share of "positive" (all of one label and a seeded sample of the other), a dev
split of 200 gold rows and a test split of 2,000 rows at the same share (pool rows no teacher answered: they are
only scored on), and runs `init`'s levers (mixture selection, the strong teacher first at 0.8, label-only answers,
the embedding student) on the replay teachers with:

- no calibration;
- calibration to equal shares (``calibrate_prior = "uniform"``, what calibration did before);
- ``calibrate_prior = "auto"`` (the default): the shares of the dev split's gold labels, where a chi-square test
  says they are not equal;
- the true shares given as a table (``calibrate_prior = { positive = ..., negative = ... }``).

It prints, per pool share and setting, the accepted labels' accuracy and share of "positive", and the last
student's test accuracy beside the test split's majority baseline (mean over seeds).

    python benchmarks/skewed_pool.py [--shares 0.56,0.8,0.9,0.2] [--seeds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.label_efficiency import (  # noqa: E402
    ROOT,
    STUDENTS,
    dataset_ids,
    default_workers,
    run_many,
    run_one,
    tempfile_dir,
)
from distilloop.annotators.calibration import estimate_prior  # noqa: E402

SCHEDULE = (10, 1.3, 40)  # the lever grid's: rounds grow by 30% until the pool is labeled
DEV, TEST = 200, 2000
SETTINGS: dict[str, dict[str, Any] | None] = {
    "no calibration": None,
    "calibrated, equal shares (uniform)": {"calibrate_prior": "uniform"},
    "calibrated, auto (the default)": {"calibrate_prior": "auto"},
    "calibrated, the true shares given": {},  # filled in per pool
}


def rt_rows() -> tuple[Any, list[str], list[dict[str, Any]], dict[str, str]]:
    """The RT spec, its recorded pool ids, every row of the data set and each row's gold label."""
    spec, ids = dataset_ids("rt_polarity")
    with gzip.open(ROOT / spec.data, "rt") as f:
        rows = [json.loads(line) for line in f]
    return spec, ids, rows, {r["id"]: r["label"] for r in rows}


def skewed_ids(ids: list[str], gold: dict[str, str], share: float, rng: random.Random) -> list[str]:
    """The recorded ids with ``share`` of them positive: every item of the rarer side kept, the other sampled."""
    pos = [i for i in ids if gold[i] == "positive"]
    neg = [i for i in ids if gold[i] == "negative"]
    have = len(pos) / len(ids)
    if share >= have:  # keep every positive, drop negatives
        neg = rng.sample(neg, round(len(pos) * (1 - share) / share))
    else:
        pos = rng.sample(pos, round(len(neg) * share / (1 - share)))
    keep = set(pos) | set(neg)
    return [i for i in ids if i in keep]


def write_data(rows: list[dict[str, Any]], ids: list[str], share: float, out: Path, rng: random.Random) -> Path:
    """The pool (``ids``) and a dev and test split at ``share`` drawn from pool rows no teacher answered."""
    wanted = set(ids)
    spare = [r for r in rows if r["split"] == "pool" and r["id"] not in wanted]
    by = {lab: [r for r in spare if r["label"] == lab] for lab in ("positive", "negative")}
    for v in by.values():
        rng.shuffle(v)
    split: dict[str, str] = {}
    for name, n in (("dev", DEV), ("test", TEST)):
        n_pos = round(n * share)
        for lab, k in (("positive", n_pos), ("negative", n - n_pos)):
            for r in by[lab][:k]:
                split[r["id"]] = name
            by[lab] = by[lab][k:]
    with open(out, "w") as g:
        for r in rows:
            if r["split"] == "pool" and r["id"] in wanted:
                g.write(json.dumps(r) + "\n")
            elif r["id"] in split:
                g.write(json.dumps({**r, "split": split[r["id"]]}) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shares", default="0.56,0.8,0.9,0.2",
                    help="shares of 'positive' in the pool, comma-separated (0.56: the recorded items as they are)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per setting (default 2)")
    ap.add_argument("--metric", default="accuracy", choices=("accuracy", "macro_f1"),
                    help="[evaluation] metric the campaigns decide on (default accuracy, what `init` writes)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default one per core, at most 4)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    started = time.time()
    spec, ids, rows, gold = rt_rows()
    tmp = Path(tempfile_dir())
    strong_first = list(reversed(spec.teachers))
    calls, plan = [], []
    pools: dict[float, dict[str, Any]] = {}
    for share in (float(s) for s in args.shares.split(",")):
        rng = random.Random(f"skew-{share}")
        pool = ids if abs(share - 0.56) < 1e-9 else skewed_ids(ids, gold, share, rng)
        real = sum(gold[i] == "positive" for i in pool) / len(pool)
        work = tmp / f"share-{share:g}"
        work.mkdir(exist_ok=True)
        data = write_data(rows, pool, real, work / "data.jsonl", rng)
        with open(data) as f:
            dev = [r["label"] for r in map(json.loads, f) if r["split"] == "dev"]
        found = estimate_prior(dev, spec.labels)
        pools[share] = {"pool": len(pool), "positive": real, "dev_shares": found,
                        "majority": max(real, 1 - real)}
        for what, agg in SETTINGS.items():
            if agg is not None and not agg:
                agg = {"calibrate_prior": {"positive": real, "negative": 1 - real}}
            for seed in range(args.seeds):
                plan.append((share, what, seed))
                calls.append((run_one, {
                    "spec": spec, "data": data, "workdir": work, "strategy": "mixture",
                    "student": STUDENTS["embedding_mpnet"], "seed": seed, "review": "auto", "pool_size": len(pool),
                    "schedule": SCHEDULE, "min_agreement": 0.75, "student_name": "embedding_mpnet",
                    "calibrate": "none" if agg is None else "batch", "rationales": "review",
                    "routing": {"cascade": strong_first, "cascade_min_confidence": 0.8},
                    "sections": {"aggregation": agg or {}, "evaluation": {"metric": args.metric}},
                    "name": f"{what.split(' ')[0]}-{list(SETTINGS).index(what)}"}))
    curves = run_many(calls, workers=args.workers or default_workers())
    out: list[dict[str, Any]] = []
    for share, info in pools.items():
        shares = info["dev_shares"]
        print(f"\npool {100 * info['positive']:.0f}% positive ({info['pool']} recorded items); dev {DEV} and test "
              f"{TEST} rows at that share; test majority baseline {100 * info['majority']:.1f}%; auto: "
              + (f"dev shares positive {100 * shares['positive']:.0f}%" if shares else "dev shares taken as equal"))
        print(f"  {'setting':40} {'labels right':>12} {'positive':>9} {'student':>8} {'macro-F1':>8}")
        for what in SETTINGS:
            cs = [c for (s, w, _), c in zip(plan, curves) if s == share and w == what]
            label_acc = statistics.mean(c.label_acc or 0.0 for c in cs)
            student = statistics.mean(c.points[-1][2] for c in cs)
            positive = statistics.mean((c.label_shares or {}).get("positive", 0.0) for c in cs)
            f1 = statistics.mean(c.macro_f1 or 0.0 for c in cs)
            print(f"  {what:40} {100 * label_acc:11.1f}% {100 * positive:8.1f}% {100 * student:7.1f}% {100 * f1:7.1f}%")
            out.append({"share": share, "setting": what, "metric": args.metric, "label_acc": label_acc, "positive": positive,
                        "student": student, "student_macro_f1": f1, "seeds": len(cs), **info})
    print(f"\nlabels right: accepted labels against gold; positive: their share of 'positive'; student, macro-F1: the "
          f"last student's test accuracy and macro-F1 (decided on {args.metric}); mean over {args.seeds} seed(s). {time.time() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
