"""Students on Rotten Tomatoes with 500 gold labels: accuracy and training time per student, and the
encoder's warm start against a cold retrain (the incremental refresh of a campaign).

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/students.py [--n-test 2000] [--epochs 4]

Design of the warm/cold comparison (one campaign round that grows the labeled set from 400 to 500):
- cold: a fresh encoder trained on all 500 labels for ``--epochs`` epochs (what a round costs without
  warm start);
- warm: the previous round's student (trained on the first 400 labels for ``--epochs`` epochs; its cost
  was paid in the previous round and is printed separately) refreshed for ``--warm-epochs`` epoch(s) on
  all 500. The bar: warm accuracy >= cold accuracy - 1 point, in at most half cold's training time.
Times are wall-clock seconds of ``fit`` on this machine (shared CPU cores: other processes add noise).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from benchmarks._data import load_jsonl  # noqa: E402
from distilloop.students.embedding import EmbeddingLinear  # noqa: E402
from distilloop.students.encoder import EncoderClassifier  # noqa: E402
from distilloop.students.promotion import evaluate  # noqa: E402
from distilloop.students.tfidf import TfidfLogReg  # noqa: E402

CLASSES = ["negative", "positive"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--n-prev", type=int, default=400, help="labels the previous round's student saw")
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--warm-epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import transformers

    transformers.logging.set_verbosity_error()
    rows = load_jsonl("rt_polarity.jsonl.gz")
    rng = np.random.default_rng(args.seed)
    pool = [r for r in rows if r["split"] == "pool"]
    train = [pool[i] for i in rng.permutation(len(pool))[:args.n_train]]
    test = [r for r in rows if r["split"] == "test"][:args.n_test]
    X, y = [r["text"] for r in train], [r["label"] for r in train]
    Xt, yt = [r["text"] for r in test], [r["label"] for r in test]
    print(f"Rotten Tomatoes: {len(X)} gold training labels ({y.count('positive')} positive), "
          f"{len(Xt)} test items; torch threads: {__import__('torch').get_num_threads()}")

    results = []

    def run(name: str, student, **fit_kw):
        student.fit(X if "texts" not in fit_kw else fit_kw.pop("texts"),
                    y if "labels" not in fit_kw else fit_kw.pop("labels"), classes=CLASSES, **fit_kw)
        t = time.perf_counter()
        m = evaluate(student, Xt, yt)
        results.append((name, m["accuracy"], student.fit_seconds_, time.perf_counter() - t))
        print(f"  {name:<44} acc {m['accuracy']:.3f}  train {student.fit_seconds_:7.1f} s  "
              f"(eval {results[-1][3]:.1f} s)", flush=True)
        return student

    print("per student (500 labels):")
    run("tfidf_logreg", TfidfLogReg())
    run("embedding_linear (MiniLM frozen + LR)", EmbeddingLinear(C=1.0))
    enc = dict(lr=args.lr, batch_size=16, max_length=64, device="auto", seed=args.seed, min_steps=0)  # the epochs named, as measured
    cold = run(f"encoder cold ({args.epochs} ep on {args.n_train})", EncoderClassifier(epochs=args.epochs, **enc))

    print(f"warm start vs cold retrain (previous round: {args.n_prev} labels):")
    prev = run(f"encoder previous round ({args.epochs} ep on {args.n_prev})",
               EncoderClassifier(epochs=args.epochs, **enc), texts=X[:args.n_prev], labels=y[:args.n_prev])
    warm = run(f"encoder warm ({args.warm_epochs} ep on {args.n_train})",
               EncoderClassifier(warm_start_epochs=args.warm_epochs, **enc), warm_start=prev)
    acc = {n: a for n, a, _, _ in results}
    c_acc, w_acc = acc[results[2][0]], acc[results[-1][0]]
    ratio = warm.fit_seconds_ / cold.fit_seconds_
    ok = w_acc >= c_acc - 0.01 and ratio <= 0.5
    print(f"\nwarm vs cold: accuracy {w_acc:.3f} vs {c_acc:.3f} ({100 * (w_acc - c_acc):+.1f} points), "
          f"time {warm.fit_seconds_:.1f} s vs {cold.fit_seconds_:.1f} s ({ratio:.2f}x)")
    print(f"bar (warm within 1 point of cold in at most half the time): {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
