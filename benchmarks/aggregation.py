"""Aggregation and cascade benchmark on real recorded teacher outputs (run on demand, not in CI).

On the Rotten Tomatoes pool items where both local teachers were recorded (qwen-0.5b, the cheap one, and
qwen-1.5b, the strong one; ``data/recorded/rt_polarity.teachers.jsonl.gz``, one row per teacher x example with
label, rationale, confidence, tokens), it compares:

- each teacher alone;
- asking every teacher, aggregated by majority vote (ties: higher confidence), confidence-weighted vote and
  Dawid-Skene (unsupervised, and with a share of items "reviewed", i.e. clamped to gold, to show what reviews add);
- the cascade (:class:`distilloop.loop.routing.CascadePolicy`): the cheap teacher first, the strong one only when
  the cheap one's confidence is below the threshold (the first two cannot disagree before the second is asked,
  so with two teachers "unsure" is the only trigger); a sweep over thresholds, and the campaign default 0.8.

Figures: accuracy of the labels against gold (every item gets a label: no human in the loop here), tokens spent
(tokens in + out as recorded), and with the routing rule (review below ``--min-agreement``) how many items would
go to review and the accuracy of the ones accepted automatically. The bar: the cascade (at the default threshold,
not tuned on this data) cuts tokens by >= 40% at no more than 1 point lower accuracy than asking every teacher
(majority vote). Usage::

    python benchmarks/aggregation.py [--recording FILE] [--data data/rt_polarity.jsonl.gz] [--json OUT]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distilloop.annotators.aggregation import (  # noqa: E402
    ConfidenceWeightedVote,
    DawidSkene,
    MajorityVote,
    Verdict,
    Vote,
)
from distilloop.loop.routing import ASK_NEXT, CascadePolicy  # noqa: E402

LABELS = ("negative", "positive")
CHEAP, STRONG = "qwen-0.5b", "qwen-1.5b"


def load(recording: Path, data: Path) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, str]]:
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    with gzip.open(recording, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.setdefault(r["example_id"], {})[r["teacher"]] = r
    gold = {}
    with gzip.open(data, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                gold[str(r["id"])] = r["label"]
    both = {ex: d for ex, d in rows.items() if CHEAP in d and STRONG in d and ex in gold}
    return both, gold


def vote(r: dict[str, Any]) -> Vote:
    return Vote(r["teacher"], r.get("label"), r.get("rationale"), r.get("confidence"), bool(r.get("valid", True)),
                r.get("distribution"))


def tokens(r: dict[str, Any]) -> int:
    return int(r.get("tokens_in", 0)) + int(r.get("tokens_out", 0))


def score(name: str, verdicts: dict[str, Verdict], spent: int, gold: dict[str, str], min_agreement: float,
          full_tokens: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ids = list(verdicts)
    correct = [verdicts[ex].label == gold[ex] for ex in ids]
    accepted = [ex for ex in ids if verdicts[ex].label is not None and verdicts[ex].agreement >= min_agreement]
    acc_accepted = np.mean([verdicts[ex].label == gold[ex] for ex in accepted]) if accepted else float("nan")
    return {"method": name, "n": len(ids), "accuracy": float(np.mean(correct)), "tokens": spent,
            "tokens_vs_all": spent / full_tokens, "to_review": len(ids) - len(accepted),
            "accepted_accuracy": float(acc_accepted), **(extra or {})}


def cascade(items: dict[str, dict[str, dict[str, Any]]], threshold: float, aggregate: Callable) -> tuple:
    policy = CascadePolicy([[CHEAP], [STRONG]], threshold)
    verdicts, spent, escalated = {}, 0, 0
    for ex, d in items.items():
        votes = [vote(d[CHEAP])]
        spent += tokens(d[CHEAP])
        if policy.next_step(votes, 1, LABELS) == ASK_NEXT:
            votes.append(vote(d[STRONG]))
            spent += tokens(d[STRONG])
            escalated += 1
        verdicts[ex] = aggregate(votes, LABELS)
    return verdicts, spent, escalated


def run(recording: Path, data: Path, min_agreement: float, review_share: float, seed: int) -> dict[str, Any]:
    items, gold = load(recording, data)
    if not items:
        raise SystemExit(f"no example has both {CHEAP} and {STRONG} recorded in {recording}")
    all_tokens = sum(tokens(d[CHEAP]) + tokens(d[STRONG]) for d in items.values())
    maj, cw = MajorityVote(), ConfidenceWeightedVote()
    rows = []
    for t in (CHEAP, STRONG):
        v = {ex: maj.aggregate([vote(d[t])], LABELS) for ex, d in items.items()}
        rows.append(score(f"{t} alone", v, sum(tokens(d[t]) for d in items.values()), gold, min_agreement,
                          all_tokens))
    everyone = {ex: [vote(d[CHEAP]), vote(d[STRONG])] for ex, d in items.items()}
    rows.append(score("all teachers, majority vote", {ex: maj.aggregate(v, LABELS) for ex, v in everyone.items()},
                      all_tokens, gold, min_agreement, all_tokens))
    rows.append(score("all teachers, confidence-weighted", {ex: cw.aggregate(v, LABELS) for ex, v in everyone.items()},
                      all_tokens, gold, min_agreement, all_tokens))
    ds = DawidSkene()
    rows.append(score("all teachers, Dawid-Skene", ds.aggregate_many(everyone, LABELS), all_tokens, gold,
                      min_agreement, all_tokens,
                      {"reliability": {t: {c: round(r.accuracy(c), 3) for c in LABELS} for t, r in ds.reliability_.items()}}))
    rng = np.random.default_rng(seed)
    ids = sorted(everyone)
    known_ids = rng.choice(ids, size=int(round(review_share * len(ids))), replace=False) if review_share else []
    known = {ex: gold[ex] for ex in known_ids}
    ds2 = DawidSkene()
    v2 = ds2.aggregate_many(everyone, LABELS, known=known)
    rest = {ex: v for ex, v in v2.items() if ex not in known}  # judged only on items no one reviewed
    rows.append(score(f"all teachers, Dawid-Skene + {len(known)} reviewed (simulated, gold) as known truth, "
                      "scored on the others", rest, all_tokens, gold, min_agreement, all_tokens))
    sweep = []
    for th in (0.6, 0.7, 0.8, 0.9, 0.95, 0.99):
        for agg_name, agg in (("majority", maj.aggregate), ("confidence-weighted", cw.aggregate)):
            v, spent, esc = cascade(items, th, agg)
            sweep.append(score(f"cascade {CHEAP} -> {STRONG} @ {th} ({agg_name})", v, spent, gold, min_agreement,
                               all_tokens, {"threshold": th, "escalated": esc}))
    # an upper bound for ANY rule that asks the strong teacher on at most 20% of the items (a 40% token cut when
    # both cost about the same): an oracle that escalates exactly where the cheap teacher is wrong
    budget_items = int(0.2 * len(items))
    wrong = [ex for ex, d in items.items() if d[CHEAP].get("label") != gold[ex]]
    fixed = sum(1 for ex in wrong[:budget_items] if items[ex][STRONG].get("label") == gold[ex])
    right = len(items) - len(wrong)
    oracle = {"escalated": min(budget_items, len(wrong)), "accuracy": (right + fixed) / len(items)}
    base = rows[2]
    default = next(r for r in sweep if r["threshold"] == 0.8 and "majority" in r["method"])
    bar = {"token_cut": 1 - default["tokens_vs_all"], "accuracy_drop_points": 100 * (base["accuracy"] - default["accuracy"])}
    bar["met"] = bar["token_cut"] >= 0.40 and bar["accuracy_drop_points"] <= 1.0
    meeting = [r for r in sweep if 1 - r["tokens_vs_all"] >= 0.40
               and 100 * (base["accuracy"] - r["accuracy"]) <= 1.0]
    return {"n_items": len(items), "recording": str(recording), "rows": rows, "cascade": sweep, "bar_default": bar,
            "oracle_cascade_20pct": oracle,
            "sweep_points_meeting_bar": [r["method"] for r in meeting]}


def fmt(r: dict[str, Any]) -> str:
    acc_acc = "-" if r["accepted_accuracy"] != r["accepted_accuracy"] else f"{100 * r['accepted_accuracy']:.1f}%"
    return (f"{r['method']:78} {100 * r['accuracy']:6.1f}% {r['tokens']:9,} {100 * r['tokens_vs_all']:6.1f}% "
            f"{r['to_review']:6} {acc_acc:>9}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recording", default=str(ROOT / "data/recorded/rt_polarity.teachers.jsonl.gz"))
    p.add_argument("--data", default=str(ROOT / "data/rt_polarity.jsonl.gz"))
    p.add_argument("--min-agreement", type=float, default=0.75, help="routing: review below this agreement")
    p.add_argument("--review-share", type=float, default=0.2, help="share of items clamped to gold for DS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the figures as JSON here")
    a = p.parse_args(argv)
    out = run(Path(a.recording), Path(a.data), a.min_agreement, a.review_share, a.seed)
    print(f"{out['n_items']} Rotten Tomatoes pool items with both teachers recorded ({out['recording']})")
    print(f"{'method':78} {'acc':>7} {'tokens':>9} {'vs all':>7} {'review':>6} {'acc(acc.)':>9}")
    for r in out["rows"] + out["cascade"]:
        print(fmt(r))
    ds = next(r for r in out["rows"] if r.get("reliability"))
    print(f"Dawid-Skene reliability (P(correct | true class)): {ds['reliability']}")
    b = out["bar_default"]
    print(f"bar (cascade @ 0.8, majority, vs all teachers majority): tokens cut {100 * b['token_cut']:.1f}% "
          f"(need >= 40%), accuracy drop {b['accuracy_drop_points']:+.1f} points (need <= 1.0): "
          f"{'MET' if b['met'] else 'NOT MET'}")
    o = out["oracle_cascade_20pct"]
    print(f"upper bound: an oracle cascade escalating only where {CHEAP} is wrong, on at most 20% of the items "
          f"({o['escalated']} escalated): accuracy {100 * o['accuracy']:.1f}%")
    print(f"sweep points meeting the bar (chosen on this same data, so optimistic): "
          f"{out['sweep_points_meeting_bar'] or 'none'}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
