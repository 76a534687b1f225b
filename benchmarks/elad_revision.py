"""ELAD's explanation revision against a full teacher rationale, on the same items, from real recordings.

ELAD (Zhang et al., Findings of ACL 2024, arXiv 2402.13098) asks the teacher to revise the student's own
explanation instead of writing one from scratch. The ``explanation_revision`` prompt style does it in one call:
the teacher names the first wrong step of the student's numbered explanation and writes the explanation from
there on; the steps before it are kept as the student wrote them. Against the ``zero_shot_rationale`` answers of
the same packaged local teachers (``LlamaCppTeacher``, llama.cpp) on the same Rotten Tomatoes pool items, this
prints side by side, per teacher: output tokens per item (what a paid teacher bills most), the agreement of the
labels with gold (raw, and with batch calibration as campaigns use it), and how much of the student's
explanation the revision kept. The figure to beat: revision at no more than 60% of a full rationale's output
tokens. Then (``--train``) it trains the step-by-step student on those items with the full rationales, with the
revised explanations, and with no rationale, the same labels and steps for each (the teachers' accepted labels),
and scores each on the Rotten Tomatoes test items.

The three steps, each resumable::

    # 1. a step-by-step student (trained on the first 300 recorded items) explains the next --n items
    PYTHONPATH=. python benchmarks/elad_revision.py --write-explanations
    # 2. the local teachers revise those explanations (llama.cpp; about 4-6 s an answer on one thread)
    python benchmarks/record_teachers.py --data data/rt_polarity.jsonl.gz --start 300 --limit 120 \\
        --out data/recorded/rt_polarity.explanation_revision.jsonl.gz --prompt explanation_revision \\
        --explanations data/recorded/rt_polarity.student_explanations.jsonl.gz --threads 1 \\
        --teacher qwen-0.5b=qwen2.5-coder-0.5b --teacher qwen-1.5b=qwen2.5-coder-1.5b
    # 3. the comparison (replayed from the recordings; --train adds the students)
    PYTHONPATH=. python benchmarks/elad_revision.py [--train]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from benchmarks import _rt  # noqa: E402
from distilloop.annotators.calibration import BatchCalibration  # noqa: E402
from distilloop.annotators.parsing import extract_object  # noqa: E402
from distilloop.errors import InvalidAnswer  # noqa: E402

EXPLANATIONS = _rt.RECORDED / "rt_polarity.student_explanations.jsonl.gz"
REVISIONS = "rt_polarity.explanation_revision.jsonl.gz"
#: the explaining student: what benchmarks/step_by_step_rt.py trains, with longer rationales so that its
#: explanations have steps to revise
EXPLAINER = {"alpha": 0.5, "epochs": 2, "batch_size": 4, "lr": 2e-4, "max_input_tokens": 64,
             "max_rationale_tokens": 40, "train_layers": 2, "seed": 0}
STUDENT = {"epochs": 4, "batch_size": 4, "lr": 2e-4, "max_input_tokens": 64, "max_rationale_tokens": 16,
           "train_layers": 2}


def write_explanations(n_train: int, start: int, n: int) -> None:
    """Train the explainer on the first ``n_train`` recorded items; write its explanations of items
    ``start .. start + n`` (one row per item: its steps and its own label)."""
    from distilloop.students.step_by_step import StepByStepStudent

    pool, _ = _rt.examples()
    rec = _rt.recording("rt_polarity.teachers.jsonl.gz", "zero_shot_rationale")
    recorded = [e for e in pool if len(rec.get(e.id, {})) == 2]
    train = [e.id for e in recorded[:n_train]]
    acc = _rt.accepted(rec, train)
    train = [i for i in train if i in acc]
    text = {e.id: e.text for e in pool}
    s = StepByStepStudent(**EXPLAINER).fit([text[i] for i in train], [acc[i].label for i in train],
                                           classes=list(_rt.LABELS), rationales=[acc[i].rationale for i in train])
    print(f"explainer: {s.steps_} steps in {s.fit_seconds_:.0f} s", flush=True)
    done = {r["example_id"] for r in _read(EXPLANATIONS)}
    todo = [e for e in recorded[start:start + n] if e.id not in done]
    t = time.perf_counter()
    for e in todo:
        row = {"example_id": e.id, "steps": s.explain(e.text), "label": s.predict([e.text])[0],
               "student": "step_by_step SmolLM2-135M " + json.dumps(EXPLAINER, sort_keys=True)}
        with gzip.open(EXPLANATIONS, "at", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(todo)} explanations written to {EXPLANATIONS} in {time.perf_counter() - t:.0f} s", flush=True)


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _calibrated_labels(rows: list[dict[str, Any]]) -> list[str | None]:
    votes = [[_rt.vote(r)] for r in rows]
    cal = BatchCalibration().fit(votes, _rt.LABELS)
    return [cal.calibrated(v[0], _rt.LABELS).label for v in votes]


def compare(gold: dict[str, str]) -> dict[str, Any]:
    """Tokens and label agreement, full rationale against revision, per teacher, on the items both answered."""
    full = _rt.recording("rt_polarity.teachers.jsonl.gz", "zero_shot_rationale")
    rev = _rt.recording(REVISIONS, "explanation_revision")
    out: dict[str, Any] = {}
    print("| teacher | items | answer | output tokens / item | vs full | labels right (raw) | labels right "
          "(calibrated) | student's steps kept |")
    print("|---|---|---|---|---|---|---|---|")
    for teacher in ("qwen-1.5b", "qwen-0.5b"):
        ids = [i for i in rev if teacher in rev[i] and teacher in full.get(i, {})]
        if not ids:
            continue
        f_rows, r_rows = [full[i][teacher] for i in ids], [rev[i][teacher] for i in ids]
        f_tok, r_tok = np.mean([r["tokens_out"] for r in f_rows]), np.mean([r["tokens_out"] for r in r_rows])
        kept = []
        for r in r_rows:
            steps = _rt_steps(r)
            try:
                k = int(extract_object(r["raw"]).get("first_wrong_step", 0))
            except (InvalidAnswer, ValueError, TypeError):
                k = 0
            kept.append(len(steps) if not 1 <= k <= len(steps) else k - 1)
        n_steps = sum(len(_rt_steps(r)) for r in r_rows)
        for name, rows, tok in (("full rationale", f_rows, f_tok), ("revision", r_rows, r_tok)):
            raw = np.mean([r["label"] == gold[r["example_id"]] for r in rows])
            cal = np.mean([c == gold[r["example_id"]] for c, r in zip(_calibrated_labels(rows), rows)])
            extra = f"{sum(kept)} of {n_steps} ({sum(kept) / max(n_steps, 1):.0%})" if name == "revision" else ""
            print(f"| {teacher} | {len(ids)} | {name} | {tok:.1f} | {tok / f_tok:.0%} | {raw:.1%} | {cal:.1%} | {extra} |")
        out[teacher] = {"items": len(ids), "full_tokens": float(f_tok), "revision_tokens": float(r_tok),
                        "ratio": float(r_tok / f_tok)}
        print(f"  {teacher}: revision at {r_tok / f_tok:.0%} of a full rationale's output tokens; the bar "
              f"(<= 60%): {'MET' if r_tok / f_tok <= 0.6 else 'NOT MET'}", flush=True)
    return out


def _rt_steps(row: dict[str, Any]) -> list[str]:
    from distilloop.annotators.prompts import student_steps

    return student_steps(row.get("student_explanation") or "")


def train_students(gold: dict[str, str], n_test: int, seeds: list[int]) -> None:
    """The student on the revised items with full rationales, revised explanations and none (same labels)."""
    from distilloop.annotators.parsing import parse_answer
    from distilloop.students.promotion import evaluate
    from distilloop.students.step_by_step import StepByStepStudent

    pool, test = _rt.examples()
    text = {e.id: e.text for e in pool}
    full = _rt.recording("rt_polarity.teachers.jsonl.gz", "zero_shot_rationale")
    rev = _rt.recording(REVISIONS, "explanation_revision")
    ids = [i for i in rev if "qwen-1.5b" in rev[i] and len(full.get(i, {})) == 2]
    acc = _rt.accepted(full, ids)
    ids = [i for i in ids if i in acc]
    revised = {}
    for i in ids:
        r = rev[i]["qwen-1.5b"]
        revised[i] = parse_answer(r["raw"], _rt.LABELS, "label", _rt_steps(r)).rationale
    tset = _rt.test_sample(test, n_test)
    Xt, yt = [e.text for e in tset], [str(e.gold) for e in tset]
    X, y = [text[i] for i in ids], [acc[i].label for i in ids]
    print(f"\nstudents on the {len(ids)} revised items (labels: the teachers' accepted labels, "
          f"{np.mean([acc[i].label == gold[i] for i in ids]):.1%} right), {len(Xt)} test items", flush=True)
    settings = [("no rationale", None, 1.0),
                ("full rationales (qwen-1.5b)", [full[i]["qwen-1.5b"].get("rationale") for i in ids], 0.5),
                ("revised explanations (qwen-1.5b)", [revised[i] for i in ids], 0.5)]
    res: dict[str, list[float]] = {}
    for seed in seeds:
        for name, rats, alpha in settings:
            s = StepByStepStudent(alpha=alpha, seed=seed, **STUDENT).fit(X, y, classes=list(_rt.LABELS),
                                                                          rationales=rats)
            a = evaluate(s, Xt, yt)["accuracy"]
            res.setdefault(name, []).append(a)
            print(f"  seed {seed}  {name:<34} acc {a:.3f}  steps {s.steps_}  train {s.fit_seconds_:.0f} s", flush=True)
    print("\n| student trained with | steps | accuracy | vs no rationale (points) |\n|---|---|---|---|")
    for name, a in res.items():
        d = (np.array(a) - np.array(res["no rationale"])) * 100
        print(f"| {name} | {s.steps_} | {np.mean(a):.3f} ({', '.join(f'{x:.3f}' for x in a)}) | "
              f"{'' if name == 'no rationale' else f'{d.mean():+.1f}'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-explanations", action="store_true")
    ap.add_argument("--n-train", type=int, default=300, help="the explainer's training items")
    ap.add_argument("--start", type=int, default=300, help="the first item to explain (after its training items)")
    ap.add_argument("--n", type=int, default=120, help="items to explain")
    ap.add_argument("--train", action="store_true", help="also train students on full and revised explanations")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.write_explanations or args.train:
        import torch

        torch.set_num_threads(args.threads)
    if args.write_explanations:
        write_explanations(args.n_train, args.start, args.n)
        return
    pool, _ = _rt.examples()
    gold = {e.id: str(e.gold) for e in pool}
    compare(gold)
    if args.train:
        train_students(gold, args.n_test, args.seeds)


if __name__ == "__main__":
    main()
