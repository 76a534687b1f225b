"""Distilling Step-by-Step on Rotten Tomatoes, on a CPU: does the packaged student learn, and do the teachers'
rationales help it?

The student is the one campaigns use (:class:`~distilloop.students.step_by_step.StepByStepStudent` on the packaged
SmolLM2-135M-Instruct). Every setting trains on the same training items (the first ``--n-train`` pool items of
the recorder's seeded order, which every recording under ``data/recorded/`` covers), with the same labels (what a
campaign accepts from the two recorded local teachers: their calibrated, confidence-weighted vote), the same
number of optimisation steps and the same batches, and is scored on the same ``--n-test`` test items; only the
rationales and ``alpha`` differ:

- label-only fine-tuning (``alpha = 1``);
- step-by-step (Hsieh et al., ACL Findings 2023) with the teachers' rationales (the accepted label's rationale,
  ``zero_shot_rationale``), at ``alpha = 0.5`` and at ``--other-alpha``;
- step-by-step with rationales on a fraction of the items only (``--fraction``; the partial-rationale finding of
  arXiv 2403.15886: rationales on part of the data give most of their benefit);
- step-by-step with the strong teacher's rationales under response priming (Goyal et al. 2024, arXiv 2412.17846):
  ``teacher_priming`` (told it teaches a student) against ``ground_truth_priming`` (told the gold label and asked to
  explain it), recorded with the campaigns' own teacher (``benchmarks/record_teachers.py``).

Honest speed-ups, all options of the student: only the top ``--train-layers`` blocks train, so the frozen blocks'
output for a sequence is computed once and shared by every epoch, setting and seed, and by every evaluation of the
same test items (exact: see :mod:`distilloop.students.top_layers`); the vocabulary logits are computed only where
a target token is scored; inputs are cut to 64 tokens and rationales to ``--max-rationale-tokens``; evaluation
scores the two labels (the likelihood of `` negative`` / `` positive`` after ``predict:``), it generates nothing;
one torch thread (on 2 shared cores two threads were slower). Usage::

    PYTHONPATH=. python benchmarks/step_by_step_rt.py [--seeds 0 1] [--json OUT]

Figures and the run they come from: ``benchmarks/students_results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from benchmarks import _rt  # noqa: E402
from distilloop.students.promotion import evaluate  # noqa: E402
from distilloop.students.step_by_step import StepByStepStudent  # noqa: E402


def settings(args: argparse.Namespace, ids: list[str], acc: dict[str, _rt.Accepted], seed: int) -> list[tuple]:
    """``(name, rationales or None, alpha)`` of every setting whose recordings are there."""
    zero_shot = [acc[i].rationale for i in ids]
    keep = set(np.random.default_rng([seed, 3]).permutation(len(ids))[:round(args.fraction * len(ids))].tolist())
    out = [("label-only fine-tuning", None, 1.0),
           ("step-by-step, teachers' rationales", zero_shot, 0.5),
           ("step-by-step, teachers' rationales", zero_shot, args.other_alpha),
           (f"step-by-step, rationales on {args.fraction:.0%} of items", [r if j in keep else None
                                                                         for j, r in enumerate(zero_shot)], 0.5)]
    for style, name in (("teacher_priming", "teacher-primed"), ("ground_truth_priming", "ground-truth-primed")):
        rows = _rt.recording(f"rt_polarity.{style}.jsonl.gz", style)
        if all(i in rows for i in ids):
            out.append((f"step-by-step, {name} rationales", [rows[i]["qwen-1.5b"].get("rationale") for i in ids], 0.5))
        else:
            print(f"  (skipped: {style} rationales are recorded for {sum(i in rows for i in ids)} of the {len(ids)} "
                  "training items; record them with benchmarks/record_teachers.py)", flush=True)
    return out


def describe(ids: list[str], acc: dict[str, _rt.Accepted], gold: dict[str, str]) -> None:
    labels_right = np.mean([acc[i].label == gold[i] for i in ids])
    with_rat = sum(acc[i].rationale is not None for i in ids)
    print(f"training labels: the teachers' accepted labels, {labels_right:.1%} right against gold; the accepted "
          f"label's rationale on {with_rat} of {len(ids)} items", flush=True)
    for style in ("teacher_priming", "ground_truth_priming"):
        rows = _rt.recording(f"rt_polarity.{style}.jsonl.gz", style)
        got = [rows[i]["qwen-1.5b"] for i in ids if i in rows]
        if got:
            print(f"{style} (qwen-1.5b): {len(got)} items; its labels agree with the training labels on "
                  f"{np.mean([r['label'] == acc[r['example_id']].label for r in got]):.1%}, with gold on "
                  f"{np.mean([r['label'] == gold[r['example_id']] for r in got]):.1%}; "
                  f"{np.mean([r['tokens_out'] for r in got]):.0f} output tokens per answer", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--train-layers", type=int, default=2)
    ap.add_argument("--max-rationale-tokens", type=int, default=16)
    ap.add_argument("--other-alpha", type=float, default=0.2)
    ap.add_argument("--fraction", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    pool, test = _rt.examples()
    teachers = _rt.recording("rt_polarity.teachers.jsonl.gz", "zero_shot_rationale")
    ids = [e.id for e in pool if len(teachers.get(e.id, {})) == 2][:args.n_train]
    text = {e.id: e.text for e in pool}
    gold = {e.id: str(e.gold) for e in pool}
    acc = _rt.accepted(teachers, ids)
    ids = [i for i in ids if i in acc]
    X, y = [text[i] for i in ids], [acc[i].label for i in ids]
    tset = _rt.test_sample(test, args.n_test)
    Xt, yt = [e.text for e in tset], [str(e.gold) for e in tset]
    majority = max(yt.count(c) for c in _rt.LABELS) / len(yt)
    describe(ids, acc, gold)
    steps = -(-len(X) // args.batch_size) * args.epochs
    print(f"Rotten Tomatoes: {len(X)} training items, {len(Xt)} test items, majority class {majority:.3f}; "
          f"{steps} steps of {args.batch_size} per setting; SmolLM2-135M, top {args.train_layers} blocks trained; "
          f"torch threads {torch.get_num_threads()}", flush=True)

    results: dict[tuple[str, float], dict[int, dict]] = {}
    for seed in args.seeds:
        for name, rats, alpha in settings(args, ids, acc, seed):
            s = StepByStepStudent(alpha=alpha, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                  max_input_tokens=64, max_rationale_tokens=args.max_rationale_tokens,
                                  train_layers=args.train_layers, device="auto", seed=seed)
            s.fit(X, y, classes=list(_rt.LABELS), rationales=rats)
            t = time.perf_counter()
            m = evaluate(s, Xt, yt)
            row = {"steps": s.steps_, "train_s": s.fit_seconds_, "eval_s": time.perf_counter() - t,
                   "accuracy": m["accuracy"], "rationales": sum(r is not None for r in rats or [])}
            results.setdefault((name, alpha), {})[seed] = row
            print(f"  seed {seed}  {name:<46} alpha {alpha:.1f}  acc {m['accuracy']:.3f}  steps {s.steps_}  "
                  f"train {row['train_s']:6.1f} s  eval {row['eval_s']:5.1f} s", flush=True)
            if seed == args.seeds[0] and rats is not None and name.endswith("teachers' rationales") and alpha == 0.5:
                print(f"    explain: {Xt[0]!r}\n      -> {s.rationale(Xt[0])!r} (gold {yt[0]})", flush=True)
    report(results, args.seeds, majority, time.perf_counter() - started, args.json)


def report(results: dict, seeds: list[int], majority: float, wall: float, out: Path | None) -> None:
    base = {s: r["accuracy"] for s, r in results[("label-only fine-tuning", 1.0)].items()}
    print(f"\n| setting | alpha | steps | train s | eval s | accuracy ({len(seeds)} seeds) | vs label-only (points) "
          "| vs majority |")
    print("|---|---|---|---|---|---|---|---|")
    summary = []
    for (name, alpha), per in results.items():
        a = np.array([per[s]["accuracy"] for s in seeds if s in per])
        d = np.array([per[s]["accuracy"] - base[s] for s in seeds if s in per]) * 100
        sd = lambda x: f" ± {x.std(ddof=1):.1f}" if len(x) > 1 else ""  # noqa: E731
        summary.append({"setting": name, "alpha": alpha, "accuracy": a.tolist(), "mean": float(a.mean()),
                        "vs_label_only": float(d.mean())})
        print(f"| {name} | {alpha:.1f} | {per[seeds[0]]['steps']} | "
              f"{np.mean([r['train_s'] for r in per.values()]):.0f} | {np.mean([r['eval_s'] for r in per.values()]):.0f}"
              f" | {a.mean():.3f} ({', '.join(f'{x:.3f}' for x in a)}) | "
              f"{'' if name.startswith('label-only') else f'{d.mean():+.1f}{sd(d)}'} | "
              f"{(a.mean() - majority) * 100:+.1f} |")
    print(f"| majority class | | | | | {majority:.3f} | | |")
    best = max(summary, key=lambda r: r["mean"])
    sbs = [r for r in summary if r["alpha"] < 1]
    top = max(sbs, key=lambda r: r["mean"]) if sbs else None
    print(f"\nbest: {best['setting']} (alpha {best['alpha']}) at {best['mean']:.3f}, "
          f"{(best['mean'] - majority) * 100:+.1f} points over the majority class", end="")
    if top is not None:
        print(f"; best step-by-step setting {top['vs_label_only']:+.1f} points against label-only "
              f"(mean over seeds; spread in the table)", end="")
    print(f"\nbar (a step-by-step setting >= 10 points above the majority class): "
          f"{'MET' if top and top['mean'] - majority >= 0.10 else 'NOT MET'}; wall {wall / 60:.1f} min")
    if out is not None:
        out.write_text(json.dumps({"majority": majority, "seeds": seeds, "rows": summary, "wall_s": wall}, indent=1))


if __name__ == "__main__":
    main()
