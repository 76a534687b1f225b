"""Batch calibration without a gold sample: which class shares to fit the teachers to?

With gold dev rows (or an audit set) ``calibrate_prior = "auto"`` fits the teachers to their label shares where
a test says they are unequal (``benchmarks/skewed_pool.py``); without any it keeps equal shares, which on a skewed
pool pulls the labels toward the rare label. Could the shares be estimated from the teachers' answers alone? On
the recorded Rotten Tomatoes items (both local teachers, the label-only answers ``init``'s campaigns ask for) made
56% (as recorded), 80%, 90%, 20% and 10% positive (``skewed_pool.skewed_ids``, 3 seeds), this prints the accuracy
of the calibrated, averaged votes against gold when fitted to: no calibration, equal shares, the true shares,
Dawid-Skene's class priors fitted on the votes, and the mean of the teachers' own label shares, (a) with both
teachers answering every item and (b) as ``init``'s cascade asks them (the 0.5B teacher only where the 1.5B one's
confidence is below 0.8). Seconds; no model runs.

    PYTHONPATH=. python benchmarks/prior_without_gold.py [--recording label_only|teachers]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
from pathlib import Path

from benchmarks.skewed_pool import skewed_ids
from distilloop.annotators.aggregation import DawidSkene
from distilloop.annotators.calibration import BatchCalibration
from distilloop.core.types import Vote

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("negative", "positive")
STRONG, THRESHOLD = "qwen-1.5b", 0.8


def accuracy(votes: dict[str, list[Vote]], gold: dict[str, str], prior: dict[str, float] | None, *,
             calibrate: bool = True) -> float:
    cal = BatchCalibration(min_items=20).fit(list(votes.values()), LABELS, prior) if calibrate else None
    right = 0
    for i, vs in votes.items():
        vs = [cal.calibrated(v, LABELS) for v in vs] if cal else vs
        p = {x: sum((v.distribution or {}).get(x, 0.0) for v in vs) for x in LABELS}
        right += max(LABELS, key=lambda x: p[x]) == gold[i]
    return right / len(votes)


def shares(labels: list[str]) -> dict[str, float]:
    return {x: labels.count(x) / len(labels) for x in LABELS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recording", default="label_only", choices=("label_only", "teachers"))
    args = ap.parse_args(argv)
    gold = {r["id"]: r["label"] for r in map(json.loads, gzip.open(ROOT / "data/rt_polarity.jsonl.gz", "rt"))}
    by: dict[str, list[Vote]] = {}
    for r in map(json.loads, gzip.open(ROOT / f"data/recorded/rt_polarity.{args.recording}.jsonl.gz", "rt")):
        if r.get("valid") and r.get("distribution"):
            by.setdefault(r["example_id"], []).append(
                Vote(r["teacher"], r["label"], r.get("rationale"), r["confidence"], True, r["distribution"]))
    ids = [i for i in by if len(by[i]) == 2]
    print(f"{len(ids)} recorded items ({args.recording}), accuracy of the calibrated votes against gold; in "
          "brackets the estimated positive share")
    print(f"{'votes':<8} {'positive':>8} {'none':>6} {'equal':>6} {'true':>6} {'Dawid-Skene':>18} {'teachers mean':>18}")
    for mode in ("both", "cascade"):
        for share in (None, 0.8, 0.9, 0.2, 0.1):
            rows = []
            for seed in range(1 if share is None else 3):
                sub = ids if share is None else skewed_ids(ids, gold, share, random.Random(seed))
                votes = {i: [v for v in by[i] if mode == "both" or v.teacher == STRONG or
                             next(u for u in by[i] if u.teacher == STRONG).confidence < THRESHOLD] for i in sub}
                sub_gold = {i: gold[i] for i in sub}
                ds = DawidSkene()
                ds.fit(votes, LABELS)
                teachers = sorted({v.teacher for vs in votes.values() for v in vs})
                own = [shares([v.label for vs in votes.values() for v in vs if v.teacher == t]) for t in teachers]
                mean = {x: statistics.mean(o[x] for o in own) for x in LABELS}
                rows.append([shares(list(sub_gold.values()))["positive"], accuracy(votes, sub_gold, None, calibrate=False),
                             accuracy(votes, sub_gold, None), accuracy(votes, sub_gold, shares(list(sub_gold.values()))),
                             accuracy(votes, sub_gold, dict(ds.priors_)), ds.priors_["positive"],
                             accuracy(votes, sub_gold, mean), mean["positive"]])
            m = [statistics.mean(col) for col in zip(*rows)]
            print(f"{mode:<8} {m[0]:>8.0%} {m[1]:>6.1%} {m[2]:>6.1%} {m[3]:>6.1%} {m[4]:>10.1%} ({m[5]:>4.0%}) "
                  f"{m[6]:>10.1%} ({m[7]:>4.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
