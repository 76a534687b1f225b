"""Selection on a skewed pool: which strategy finds the rare label within `init`'s budget.

`init`'s campaign (5 rounds of 20 items, the mpnet embedding student) selects with `mixture` (half random, half
k-means), which `benchmarks/defaults.py` measured on the roughly balanced Rotten Tomatoes pool. Where one label
is rare (spam, toxicity, a rare intent), a representative batch holds few of it, and the student decided on
macro-F1 (what `init` writes when 70% or more of the gold labels are one label) learns the rare label from a
handful. This runs `init`'s campaign with each strategy, side by side, on pools with a chosen share of
"positive":

- **recorded teachers**: the recorded Rotten Tomatoes items (both local teachers, replayed), skewed as
  `benchmarks/skewed_pool.py` skews them (every item of the rarer side kept, the other sampled), with `init`'s
  levers (the strong teacher first at 0.8, label-only answers, batch calibration to the dev shares);
- **gold teacher**: a larger pool (3,000 rows of the data set's pool split at the share) labeled by a teacher
  that answers the gold label, so that only the selection differs.

Dev (200 rows) and test (2,000 rows) splits at the same share. It prints the test macro-F1 after 40, 60 and 100
labels and the share of the rare label among the 100 labels, per strategy (mean over seeds).

    python benchmarks/skewed_selection.py [--shares 0.1,0.2,0.5] [--strategies mixture,random,entropy,...]
                                          [--seeds 5] [--json out.json]

What it found (docs/benchmarks.md): with right labels, uncertainty finds several times the rare label and gains on
pools 90-95% one label; with the local teachers the gain shrinks (the uncertain items are the ones they get
wrong), and a live campaign on a 91%-negative file did worse with `uncertainty_kmeans` than with `mixture`, so
`init` keeps `mixture`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.label_efficiency import STUDENTS, default_workers, run_many, run_one, tempfile_dir  # noqa: E402
from benchmarks.skewed_pool import DEV, TEST, rt_rows, skewed_ids, write_data  # noqa: E402

#: `init`'s schedule: a first round of 20, then 20 a round, 5 rounds
SCHEDULE = (20, 1.0, 5)
#: the rounds whose students are shown (labels 40, 60, 100)
SHOWN = (1, 2, 4)
GOLD_POOL = 3000


def gold_data(rows: list[dict[str, Any]], share: float, out: Path, rng: random.Random) -> tuple[Path, Path, int]:
    """A pool of ``GOLD_POOL`` rows of the pool split, dev and test splits, each at ``share`` positive, and a
    recording of a teacher answering every pool row's gold label."""
    def take(split: str, n: int) -> list[dict[str, Any]]:
        rs = [r for r in rows if r["split"] == split]
        rng.shuffle(rs)
        k = round(n * share)
        return [r for r in rs if r["label"] == "positive"][:k] + [r for r in rs if r["label"] == "negative"][:n - k]

    pool = take("pool", GOLD_POOL)
    data, rec = out / f"gold-{share:g}.jsonl", out / f"gold-{share:g}.teacher.jsonl"
    with open(data, "w") as f:
        for split, rs in (("pool", pool), ("dev", take("dev", DEV)), ("test", take("test", TEST))):
            f.writelines(json.dumps({**r, "split": split}) + "\n" for r in rs)
    with open(rec, "w") as f:
        f.writelines(json.dumps({"teacher": "gold", "example_id": r["id"], "raw": json.dumps({"label": r["label"]}),
                                 "tokens_in": 60, "tokens_out": 5}) + "\n" for r in pool)
    return data, rec, len(pool)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shares", default="0.1,0.2,0.5", help="shares of 'positive' in the pool, comma-separated")
    ap.add_argument("--strategies", default="mixture,random,entropy,uncertainty_kmeans",
                    help="strategies to compare (the first is the baseline: init's)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per setting (default 5)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default one per core, at most 4)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    started = time.time()
    spec, ids, rows, gold = rt_rows()
    work = Path(tempfile_dir())  # one folder: the embeddings are shared by every campaign
    strategies = args.strategies.split(",")
    shares = [float(s) for s in args.shares.split(",")]
    levers = {"calibrate": "batch", "rationales": "auto", "min_agreement": 0.75,
              "sections": {"evaluation": {"metric": "macro_f1"}}}
    calls: list[Any] = []
    plan: list[tuple[float, str, str]] = []
    for share in shares:
        rng = random.Random(f"skew-{share}")
        pool = skewed_ids(ids, gold, share, rng)
        real = sum(gold[i] == "positive" for i in pool) / len(pool)
        recorded = write_data(rows, pool, real, work / f"recorded-{share:g}.jsonl", rng)
        data, rec, n_gold = gold_data(rows, share, work, random.Random(f"gold-{share}"))
        oracle = dataclasses.replace(spec, recording=str(rec), teachers=("gold",), label_only="", prices={})
        settings = (("recorded teachers", spec, recorded, len(pool),
                     {"cascade": list(reversed(spec.teachers)), "cascade_min_confidence": 0.8}),
                    ("gold teacher", oracle, data, n_gold, None))
        for setting, sp, path, size, routing in settings:
            for strategy in strategies:
                for seed in range(args.seeds):
                    plan.append((share, setting, strategy))
                    calls.append((run_one, {
                        "spec": sp, "data": path, "workdir": work, "strategy": strategy, "seed": seed,
                        "student": STUDENTS["embedding_mpnet"], "student_name": "embedding_mpnet", "review": "auto",
                        "pool_size": size, "schedule": SCHEDULE, "routing": routing, **levers,
                        "name": f"{setting.split()[0]}-{share:g}-{strategy}"}))
    # every text embedded once, here, before the campaigns share the work out (two workers embedding the same
    # pool at once would each pay for it)
    from distilloop.students.embedding import EmbeddingLinear

    texts = sorted({json.loads(line)["text"] for path in work.glob("*.jsonl") if "teacher" not in path.name
                    for line in path.open()})
    print(f"embedding {len(texts):,} texts with mpnet once...", file=sys.stderr)
    EmbeddingLinear(**{k: v for k, v in STUDENTS["embedding_mpnet"].items() if k != "kind"}).encode(texts)
    curves = run_many(calls, workers=args.workers or default_workers())
    out: list[dict[str, Any]] = []
    for share in shares:
        for setting in ("recorded teachers", "gold teacher"):
            print(f"\npool {100 * share:.0f}% positive, {setting}: test macro-F1 after "
                  + ", ".join(str(SCHEDULE[0] * (r + 1)) for r in SHOWN) + " labels; share of the rarer label")
            base: list[float] | None = None
            for strategy in strategies:
                cs = [c for (s, st, g), c in zip(plan, curves, strict=True) if (s, st, g) == (share, setting, strategy)]
                f1 = [statistics.mean(c.f1_points[r] or 0.0 for c in cs) for r in SHOWN]
                rare = statistics.mean(min((c.label_shares or {"": 0.0}).values()) for c in cs)
                base = base or f1
                diff = "  ".join(f"{100 * (a - b):+5.1f}" for a, b in zip(f1, base, strict=True))
                print(f"  {strategy:20} " + " ".join(f"{100 * v:5.1f}%" for v in f1)
                      + f"   rarer {100 * rare:4.1f}%   against {strategies[0]}: {diff}")
                out.append({"share": share, "setting": setting, "strategy": strategy, "macro_f1": f1,
                            "labels": [SCHEDULE[0] * (r + 1) for r in SHOWN], "rarer_share": rare, "seeds": len(cs)})
    print(f"\nmean over {args.seeds} seed(s); {time.time() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
