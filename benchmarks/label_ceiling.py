"""How many labels the student needs to reach random sampling's final accuracy, even with perfect labels.

The cost issue's bar asks a configuration to reach random sampling's final accuracy with at least 50% fewer
teacher tokens than random needs. This measures what any labelling scheme is up against on the recorded pool:
the campaign's student (the mpnet embedding student, its ``C`` and class weight chosen on the dev split as a round
chooses them) trained on random subsets of n pool items with

* the **gold labels** (what a perfect, free labeller gives), and
* **the teachers' labels**: the baseline's (both recorded teachers with rationales, batch-calibrated,
  confidence-weighted soft labels), from one campaign that labels the whole pool through the real round runner;

against the full-pool student with the teachers' labels (the figure random sampling's final approximates: its
last round labels the whole pool). Each n: ``--subsets`` random subsets, the same subsets for both labellings.
Printed beside it: the teacher tokens the cheapest measured answer (the strong teacher alone, label-only) pays
for n labels, and what the baseline pays for them.

    python benchmarks/label_ceiling.py [--subsets 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import label_efficiency as bench  # noqa: E402
from distilloop.storage.store import Store  # noqa: E402
from distilloop.students.embedding import EmbeddingLinear  # noqa: E402

SIZES = (100, 200, 300, 350, 450, 604)


def fit_as_a_round(texts: list[str], labels: list[str], soft: list[dict[str, float]] | None, classes: list[str],
                   dev: tuple[list[str], list[str]]) -> EmbeddingLinear:
    """The student a round trains: each variant (``C``, then the class weight at the winner's ``C``) fitted, the
    most accurate on the dev split kept (the first of equals), as ``loop/steps/train.py`` chooses."""
    configured = EmbeddingLinear(**{k: v for k, v in bench.STUDENTS["embedding_mpnet"].items() if k != "kind"})
    dev_texts, dev_gold = dev

    def score(s: Any) -> float:
        return float(np.mean([p == g for p, g in zip(s.predict(dev_texts), dev_gold)]))

    fitted = []
    for params, s in configured.variants():
        s.fit(texts, labels, classes=classes, soft_labels=soft)
        fitted.append((params, s, score(s)))
    chosen = max(fitted, key=lambda f: f[2])[0]
    for params, s in configured.variants(chosen=chosen):
        s.fit(texts, labels, classes=classes, soft_labels=soft)
        fitted.append((params, s, score(s)))
    return max(fitted, key=lambda f: f[2])[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subsets", type=int, default=12, help="random subsets per size (default 12)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--workdir", help="the campaign's folder (default: a new temporary one); a folder used before "
                    "keeps the texts' embeddings, so a second run skips embedding them")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    spec, ids = bench.dataset_ids("rt_polarity")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="distilloop-ceiling-"))
    work.mkdir(parents=True, exist_ok=True)
    data = bench.make_pool_file(spec, ids, work, dev=True, test_extra=spec.test_extra)
    print(f"labelling the whole pool ({len(ids)} recorded items) with the baseline's teachers...", file=sys.stderr)
    full = bench.run_one(spec, data, work, strategy="random", student=bench.STUDENTS["embedding_mpnet"], seed=0,
                         review="auto", pool_size=len(ids), schedule=(len(ids), 1.0, 1), min_agreement=0.75,
                         student_name="embedding_mpnet", name="whole")
    full_acc, full_tokens = full.points[-1][2], full.points[-1][0]
    store = Store.open(next(work.glob("whole-*.db")))
    try:
        examples = {e.id: e for e in store.examples()}
        labeled = {r["example_id"]: r for r in store.labeled()}
    finally:
        store.close()
    classes = list(spec.labels)
    pool = [examples[i] for i in ids]
    dev = [e for e in examples.values() if e.split == "dev" and e.gold is not None]
    test = [e for e in examples.values() if e.split == "test" and e.gold is not None]
    dev_pair = ([e.text for e in dev], [str(e.gold) for e in dev])

    def accuracy(s: EmbeddingLinear) -> float:
        return float(np.mean([p == e.gold for p, e in zip(s.predict([e.text for e in test]), test)]))

    cheapest = label_only_strong_tokens(spec, ids)
    per_label = full_tokens / len(ids)
    rng = np.random.default_rng(0)
    rows = []
    print(f"the full-pool student with the teachers' labels: {full_acc:.2%} (on {len(test):,} test rows); "
          f"the baseline pays {per_label:.0f} tokens a label, the strong teacher alone with the label only "
          f"{cheapest:.0f}\n")
    head = (f"{'labels':>6}  {'gold labels: mean':>17} {'min':>6} {'>= full':>7}   {'teachers: mean':>14} {'min':>6} "
            f"{'>= full':>7}   {'cheapest tokens':>15} {'baseline tokens':>15}")
    print(head + "\n" + "-" * len(head))
    for n in SIZES:
        reps = 1 if n >= len(pool) else args.subsets
        gold_acc, teacher_acc = [], []
        for _ in range(reps):
            pick = [pool[j] for j in rng.permutation(len(pool))[:n]]
            texts = [e.text for e in pick]
            gold_acc.append(accuracy(fit_as_a_round(texts, [str(e.gold) for e in pick], None, classes, dev_pair)))
            got = [e for e in pick if e.id in labeled]
            soft = [labeled[e.id]["soft_label"] for e in got]
            teacher_acc.append(accuracy(fit_as_a_round([e.text for e in got], [labeled[e.id]["label"] for e in got],
                                                       soft, classes, dev_pair)))
        row = {"labels": n, "subsets": reps, "gold_mean": statistics.mean(gold_acc), "gold_min": min(gold_acc),
               "gold_reach": float(np.mean([a >= full_acc for a in gold_acc])),
               "teachers_mean": statistics.mean(teacher_acc), "teachers_min": min(teacher_acc),
               "teachers_reach": float(np.mean([a >= full_acc for a in teacher_acc])),
               "cheapest_tokens": n * cheapest, "baseline_tokens": n * per_label}
        rows.append(row)
        print(f"{n:>6}  {row['gold_mean']:>17.2%} {row['gold_min']:>6.1%} {row['gold_reach']:>7.0%}   "
              f"{row['teachers_mean']:>14.2%} {row['teachers_min']:>6.1%} {row['teachers_reach']:>7.0%}   "
              f"{row['cheapest_tokens']:>15,.0f} {row['baseline_tokens']:>15,.0f}", flush=True)
    print(f"\nlabels: pool items in each random subset; >= full: share of subsets whose student reaches the full-pool "
          f"student ({full_acc:.2%}); cheapest tokens: what the strong teacher alone, label-only, pays for them; "
          f"baseline tokens: what the baseline (both teachers, rationales) pays for them. Paying at most half the "
          f"baseline's tokens at {cheapest:.0f} tokens a label buys at most {per_label / 2 / cheapest:.2f} times the "
          f"labels the baseline needed. {time.perf_counter() - started:.0f} s.")
    if args.json:
        Path(args.json).write_text(json.dumps({"full_acc": full_acc, "full_tokens": full_tokens,
                                               "cheapest_per_label": cheapest, "rows": rows}, indent=2))
    return 0


def label_only_strong_tokens(spec: Any, ids: list[str], strong: str = "qwen-1.5b") -> float:
    """Tokens per answer of the strong teacher's recorded label-only answers on the pool items (in + out)."""
    import gzip

    path = bench.ROOT / spec.label_only
    want = set(ids)
    per = [r["tokens_in"] + r["tokens_out"] for r in map(json.loads, gzip.open(path, "rt"))
           if r["teacher"] == strong and r["example_id"] in want]
    return statistics.mean(per)


if __name__ == "__main__":
    raise SystemExit(main())
