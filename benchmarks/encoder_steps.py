"""The ``encoder`` student on a campaign's first rounds: a few epochs against at least ``min_steps`` optimiser steps.

A first round has a few dozen labels, and 3 epochs of them are a dozen steps. This fine-tunes the packaged MiniLM
encoder on seeded random Rotten Tomatoes rows with their gold labels (96 and 300: a demo's four rounds, and a
campaign's later ones) three ways, side by side: the configured 3 epochs alone (``min_steps = 0``, what the
student did before), the default ``min_steps = 200``, and 10 epochs at ``lr = 1e-4``; and prints the accuracy on
500 other rows with the seconds each fit took. About 7 minutes on 2 CPU cores. Usage::

    PYTHONPATH=. python benchmarks/encoder_steps.py [--sizes 96 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._data import load_jsonl  # noqa: E402
from distilloop.students.encoder import EncoderClassifier  # noqa: E402

SETTINGS = {"3 epochs (min_steps = 0)": {"min_steps": 0}, "default (min_steps = 200)": {},
            "10 epochs, lr 1e-4 (min_steps = 0)": {"epochs": 10, "lr": 1e-4, "min_steps": 0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[96, 300])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = load_jsonl("rt_polarity.jsonl.gz")
    random.Random(args.seed).shuffle(rows)
    test, pool = rows[:500], rows[500:]
    classes = sorted({r["label"] for r in rows})
    print(f"encoder student (MiniLM), Rotten Tomatoes, gold labels, accuracy on {len(test)} test rows (majority "
          f"{max(sum(r['label'] == c for r in test) for c in classes) / len(test):.1%})")
    for n in args.sizes:
        train = pool[:n]
        for name, params in SETTINGS.items():
            started = time.perf_counter()
            student = EncoderClassifier(device="cpu", seed=args.seed, **params).fit(
                [r["text"] for r in train], [r["label"] for r in train], classes=classes)
            right = sum(p == r["label"] for p, r in zip(student.predict([r["text"] for r in test]), test))
            print(f"  {n:4d} labels  {name:36} {right / len(test):6.1%}  {len(student.losses_):4d} steps  "
                  f"{time.perf_counter() - started:5.0f} s", flush=True)


if __name__ == "__main__":
    main()
