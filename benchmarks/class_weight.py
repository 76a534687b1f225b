"""The embedding student's class weight chosen on held-out rows (``tune_class_weight``): does it help where the
classes are even, and stay out of the way where they are not?

The ensemble's soft labels come from a real campaign over the 604 recorded Rotten Tomatoes pool items (replay
teachers, calibrated confidence-weighted votes, every item labeled). Pool, dev and test rows are then thinned to a
share of positives (0.5: as recorded; 0.8 and 0.9: negatives dropped at random), and for each share and number of
labels, seeded random subsets of the pool train the embedding student three ways: the classes by their soft mass
(``class_weight = "none"``), balanced, and as a round does it (:meth:`EmbeddingLinear.variants`: ``C``, ``C/3``
and ``3C``, each by mass and balanced, the best on the dev rows kept). Printed: test accuracy of
each (mean over subsets) and how often the round chose balanced. Usage::

    PYTHONPATH=. python benchmarks/class_weight.py [--model minilm|mpnet] [--subsets 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.label_efficiency import RT, STUDENTS, make_pool_file, recorded_ids, run_one  # noqa: E402
from distilloop.storage.store import Store  # noqa: E402
from distilloop.students.embedding import EmbeddingLinear  # noqa: E402

SHARES = (0.5, 0.8, 0.9)
SIZES = (30, 60, 120, 240)


def thin(rows: list[dict[str, Any]], share: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``rows`` with negatives dropped at random until ``share`` of them are positive."""
    pos = [r for r in rows if r["label"] == "positive"]
    neg = [r for r in rows if r["label"] != "positive"]
    keep = min(len(neg), int(len(pos) * (1 - share) / share))
    return pos + [neg[i] for i in sorted(rng.permutation(len(neg))[:keep])]


def accuracy(student: EmbeddingLinear, rows: list[dict[str, Any]]) -> float:
    return float(np.mean([p == r["label"] for p, r in zip(student.predict([r["text"] for r in rows]), rows)]))


def fit(student: EmbeddingLinear, train: list[dict[str, Any]], soft: dict[str, dict[str, float]]) -> EmbeddingLinear:
    student.fit([r["text"] for r in train], [max(soft[r["id"]], key=soft[r["id"]].get) for r in train],
                classes=list(RT.labels), soft_labels=[soft[r["id"]] for r in train])
    return student


def as_a_round(base: EmbeddingLinear, train: list[dict[str, Any]], dev: list[dict[str, Any]],
               soft: dict[str, dict[str, float]]) -> tuple[EmbeddingLinear, bool]:
    """The student a round keeps: the variants, then the variants around the winner, the best on ``dev``."""
    scored = [(accuracy(fit(s, train, soft), dev), p, s) for p, s in base.variants()]  # type: ignore[arg-type]
    best = max(scored, key=lambda x: x[0])
    scored += [(accuracy(fit(s, train, soft), dev), p, s)  # type: ignore[arg-type]
               for p, s in base.variants(chosen=best[1])]
    _, params, student = max(scored, key=lambda x: x[0])  # the first of equals
    return student, params.get("class_weight") == "balanced"  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="minilm", help="the embedding student's encoder (minilm or mpnet)")
    ap.add_argument("--subsets", type=int, default=10, help="random label subsets per share and size")
    args = ap.parse_args()
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="distilloop-class-weight-"))
    ids = recorded_ids(RT)
    data = make_pool_file(RT, ids, tmp, dev=True)
    run_one(RT, data, tmp, strategy="random", student=STUDENTS["tfidf_logreg"], seed=0, review="auto",
            pool_size=len(ids), schedule=(len(ids), 1.0, 1), min_agreement=0.75, name="soft-labels")
    store = Store.open(next(tmp.glob("soft-labels-*.db")))
    soft = {r["example_id"]: r["soft_label"] or {r["label"]: 1.0} for r in store.labeled()}
    store.close()
    rows = [r for r in map(json.loads, data.read_text().splitlines()) if r["split"] != "pool" or r["id"] in soft]
    C = STUDENTS["embedding_linear" if args.model == "minilm" else "embedding_mpnet"]["C"]
    base = EmbeddingLinear(model=args.model, C=C)
    base.encode([r["text"] for r in rows])  # once, into memory
    print(f"Rotten Tomatoes, {len(soft)} pool items with the ensemble's soft labels; {args.model} student, C = {C:g}; "
          f"test accuracy, mean over {args.subsets} random label subsets")
    head = f"{'positives':>9} {'labels':>6} {'by mass':>8} {'balanced':>8} {'as a round':>10} {'chose balanced':>14}"
    print(head + "\n" + "-" * len(head))
    for share in SHARES:
        rng = np.random.default_rng(0)
        split = {s: thin([r for r in rows if r["split"] == s], share, rng) for s in ("pool", "dev", "test")}
        for n in SIZES:
            res: dict[str, list[float]] = {"none": [], "balanced": [], "round": [], "chose": []}
            for _ in range(args.subsets):
                train = [split["pool"][i] for i in rng.permutation(len(split["pool"]))[:n]]
                for weight in ("none", "balanced"):
                    s = EmbeddingLinear(model=args.model, C=C, class_weight=weight, tune_C=False,
                                        tune_class_weight=False)
                    res[weight].append(accuracy(fit(s, train, soft), split["test"]))
                kept, balanced = as_a_round(base, train, split["dev"], soft)
                res["round"].append(accuracy(kept, split["test"]))
                res["chose"].append(float(balanced))
            print(f"{share:>9.0%} {n:>6} {np.mean(res['none']):>8.1%} {np.mean(res['balanced']):>8.1%} "
                  f"{np.mean(res['round']):>10.1%} {np.mean(res['chose']):>14.0%}", flush=True)
    print(f"\n(at 90% positives: {len(split['pool'])} pool, {len(split['dev'])} dev, {len(split['test'])} test rows; "
          f"{time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
