"""The baseline and `init`'s levers over more seeds than the lever grid affords, and the one-round whole pool.

`distilloop bench` runs every lever setting on 3 seeds to stay near 15 minutes. Its cheapest configuration,
`init`'s levers (mixture selection, the strong teacher first at the threshold the grid chooses on held-out items,
label-only answers, batch calibration), reaches 98% of the full-pool student at about 8% of the full cost there;
this runs just that configuration and the baseline (random, both teachers with rationales, calibrated) on
``--seeds`` seeds with the same campaigns, student and schedule, and prints per seed and on average the cost to
95% and 98% of the full-pool student, the final student, the labels' accuracy, and the tokens to random's final
on each budget (``rnd@B``, as the grid prints it). With ``--whole``, also one campaign per answer policy that
labels the whole pool in one round (so every decision sees the calibration fitted on every answer): what each
policy's labels give the student when history plays no part.

    python benchmarks/levers_seeds.py [--seeds 10] [--threshold 0.8] [--whole] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.label_efficiency import (  # noqa: E402
    STUDENTS,
    cost_to_reach,
    dataset_ids,
    default_workers,
    full_cost,
    make_pool_file,
    run_many,
    run_one,
    tempfile_dir,
)
from benchmarks.label_efficiency.levers import (  # noqa: E402
    BASELINE,
    INIT,
    _name,
    _policy,
    random_at_budgets,
    summarize_levers,
)

SCHEDULE = (10, 1.3, 40)  # the lever grid's


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10; the grid runs 0-2)")
    ap.add_argument("--threshold", type=float, default=0.8,
                    help="the cascade's threshold for init's levers (default 0.8, what the grid chooses on RT)")
    ap.add_argument("--whole", action="store_true", help="also the one-round whole-pool campaigns")
    ap.add_argument("--workers", type=int, default=None, help="processes (default one per core, at most 4)")
    ap.add_argument("--json", help="write the rows and curves here")
    args = ap.parse_args(argv)
    started = time.time()
    spec, ids = dataset_ids("rt_polarity")
    full_tokens, full_usd = full_cost(spec, ids)
    tmp = Path(tempfile_dir())
    data = make_pool_file(spec, ids, tmp, dev=True, test_extra=spec.test_extra)
    strong_first = list(reversed(spec.teachers))  # the stronger teacher is listed last in the spec
    common: dict[str, Any] = {"spec": spec, "data": data, "workdir": tmp, "student": STUDENTS["embedding_mpnet"],
                              "pool_size": len(ids), "min_agreement": 0.75, "review": "auto"}
    whole = run_one(**common, strategy="random", seed=0, schedule=(len(ids), 1.0, 1), name="full-pool")
    full_acc = whole.points[-1][2]
    calls = []
    for cfg in (BASELINE, INIT):
        selection, cascade, rationales, calibration = cfg
        routing = None if cascade == "off" else {"cascade": strong_first, "cascade_min_confidence": args.threshold}
        calls += [(run_one, {**common, "strategy": selection, "seed": seed, "schedule": SCHEDULE,
                             "student_name": "embedding_mpnet", "calibrate": calibration,
                             "rationales": _policy(rationales), "routing": routing, "name": _name(cfg)})
                  for seed in range(args.seeds)]
    one_round = {"init's levers": {"rationales": "review", "routing": {"cascade": strong_first,
                                                                       "cascade_min_confidence": args.threshold}},
                 "both teachers, label-only": {"rationales": "review"},
                 "both teachers, rationales (the baseline's answers)": {"rationales": "all"}}
    if args.whole:
        calls += [(run_one, {**common, "strategy": "random", "seed": 0, "schedule": (len(ids), 1.0, 1),
                             "name": f"whole-{k}", **kw}) for k, kw in one_round.items()]
    results = run_many(calls, workers=args.workers or default_workers())
    curves, wholes = results[: 2 * args.seeds], results[2 * args.seeds:]
    rows = summarize_levers(curves, full_tokens, full_usd, full_acc)
    bars = random_at_budgets(curves, full_tokens)

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    print(f"rt_polarity, {len(ids)} recorded pool items, {args.seeds} seeds; full-pool student {full_acc:.4f}; "
          f"full-pool cost {full_tokens:,} tokens")
    print(f"\n{'configuration':40} {'seed':>4} {'cost@95%':>8} {'cost@98%':>8} {'final':>6} {'labels':>6}")
    for c in curves:
        print(f"{c.strategy:40} {c.seed:4} {pct(_share(cost_to_reach(c, 0.95 * full_acc), full_tokens)):>8} "
              f"{pct(_share(cost_to_reach(c, 0.98 * full_acc), full_tokens)):>8} {pct(c.points[-1][2]):>6} "
              f"{pct(c.label_acc):>6}")
    print(f"\n{'mean over seeds':40} {'cost@95%':>8} {'cost@98%':>8} {'final':>6} {'labels':>6} "
          + " ".join(f"{'rnd@' + b:>7}" for b in bars))
    for r in rows:
        print(f"{r['config']:40} {pct(r['cost@95%']):>8} {pct(r['cost@98%']):>8} {pct(r['final_acc']):>6} "
              f"{pct(r['label_acc']):>6} " + " ".join(f"{pct(r['vs_random_at_budget'].get(b)):>7}" for b in bars))
    print("random's final on each budget: " + "; ".join(
        f"{b}: {pct(v['accuracy'])}, first reached at {pct(v['tokens'])} of the full-pool cost" for b, v in bars.items()))
    if wholes:
        print("\nthe whole pool in one round (every decision under the calibration fitted on every answer):")
        for (what, _), c in zip(one_round.items(), wholes):
            print(f"  {what:52} student {pct(c.points[-1][2])}, labels {pct(c.label_acc)} right, "
                  f"{c.points[-1][0] / max(1, c.points[-1][3]):.0f} tokens a label")
    print(f"\n{time.time() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"full_acc": full_acc, "full_tokens": full_tokens, "rows": rows,
                                               "random_at_budget": bars, "curves": [c.__dict__ for c in curves],
                                               "whole": [c.__dict__ for c in wholes]}, indent=1))
    return 0


def _share(tokens: float | None, full: float) -> float | None:
    return None if tokens is None else tokens / full


if __name__ == "__main__":
    sys.exit(main())
