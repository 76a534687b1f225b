"""Record real local-LLM teacher answers once, for the replay teacher and every benchmark.

Runs the packaged local teachers (Qwen2.5-Coder-0.5B and 1.5B Instruct through llama.cpp, the same
``LlamaCppTeacher`` and prompt style that campaigns use) over a slice of a data set's pool, and appends one
JSON line per (teacher, example) to a gzipped file: the raw reply, the parsed label, rationale, confidence
and label distribution (from logprobs), token counts and latency. It resumes: examples already recorded for
a teacher are skipped, so it can be stopped and restarted.

    python benchmarks/record_teachers.py --data data/rt_polarity.jsonl.gz --limit 1000 \
        --out data/recorded/rt_polarity.teachers.jsonl.gz --teacher qwen-0.5b=qwen2.5-coder-0.5b

With ``--prompt explanation_revision --explanations FILE`` each item carries the student's explanation (one step a
line, as a campaign hands it on), recorded with the answer so the replay teacher splices the revision with it.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from distilloop.annotators.local import LlamaCppTeacher
from distilloop.annotators.prompts import NUMERIC_TASK, get_style
from distilloop.core.types import LabelingItem
from distilloop.data import DataSpec, load_examples

#: data set stem -> (task, input fields, answer kind): "label" (from the gold labels' set) or "number"
TASKS = {
    "rt_polarity": ("Classify the sentiment of the movie review snippet as negative or positive.", ["text"], "label"),
    "cose_cqa_v1": ("Answer the commonsense question: pick the letter of the best choice.", ["question", "choices"],
                    "label"),
    "commonsenseqa": ("Answer the commonsense question: pick the letter of the best choice.", ["question", "choices"],
                      "label"),
    "gsm8k": (NUMERIC_TASK, ["question"], "number"),
    "svamp": (NUMERIC_TASK, ["question"], "number"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=1000, help="N pool examples, a seeded random sample")
    ap.add_argument("--start", type=int, default=0, help="skip the first START examples of the seeded order")
    ap.add_argument("--explanations", default=None,
                    help="explanation_revision: a .jsonl(.gz) of {example_id, steps} (the student's explanations, "
                         "e.g. from benchmarks/elad_revision.py --write-explanations); only those items are asked")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample's order")
    ap.add_argument("--teacher", action="append", required=True, help="NAME=MODEL (alias or .gguf)")
    ap.add_argument("--max-tokens", type=int, default=80)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rationale-max-chars", type=int, default=200,
                    help="the grammar's cap on the rationale (math working needs more than a label's reason)")
    ap.add_argument("--prompt", default="zero_shot_rationale",
                    help="the prompt style (ground_truth_priming gives each item its gold label to explain)")
    args = ap.parse_args()
    stem = Path(args.data).name.split(".")[0]
    task, fields, answer = TASKS[stem]
    examples = [e for e in load_examples(args.data, DataSpec(input_fields=tuple(fields))) if e.split == "pool"]
    # a seeded random order: any prefix of the recording is a uniform sample of the pool (the files are
    # sorted in places, e.g. the first 516 Rotten Tomatoes pool rows are all positive)
    order = np.random.default_rng(args.seed).permutation(len(examples))
    examples = [examples[i] for i in order[args.start: args.start + args.limit]]
    explained: dict[str, list[str]] = {}
    if args.explanations:
        with gzip.open(args.explanations, "rt") if args.explanations.endswith(".gz") else open(args.explanations) as f:
            explained = {r["example_id"]: r["steps"] for r in map(json.loads, f) if r.get("steps")}
        examples = [e for e in examples if e.id in explained]
    labels = [] if answer == "number" else sorted(
        {e.gold for e in load_examples(args.data, DataSpec(input_fields=tuple(fields))) if e.gold})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done: set[tuple[str, str, str]] = set()
    if out.exists():
        with gzip.open(out, "rt") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill: recorded again below
                done.add((r["teacher"], r.get("prompt_style") or "zero_shot_rationale", r["example_id"]))
    teachers = []
    for spec in args.teacher:
        name, _, model = spec.partition("=")
        teachers.append((name, model, LlamaCppTeacher(name=name, model=model, max_tokens=args.max_tokens,
                                                      n_threads=args.threads, prompt=args.prompt,
                                                      rationale_max_chars=args.rationale_max_chars)))
    # example by example, every teacher in turn: a partial recording covers the same items for all teachers
    todo = [e for e in examples if any((name, args.prompt, e.id) not in done for name, _, _ in teachers)]
    print(f"{len(todo)} examples to record ({len(examples) - len(todo)} already)", file=sys.stderr, flush=True)
    started = time.time()
    for i, e in enumerate(todo, 1):
        gold = e.gold if get_style(args.prompt).needs_gold else None  # only ground-truth priming sees gold
        steps = "\n".join(explained[e.id]) if e.id in explained else None  # one step a line, as campaigns hand it
        item = LabelingItem(e.id, e.fields, tuple(labels), task, gold=gold, answer=answer, student_explanation=steps)
        for name, model, teacher in teachers:
            if (name, args.prompt, e.id) in done:
                continue
            prompt = teacher.render(item)
            ans = asyncio.run(teacher.answer(prompt, item))
            row = {"teacher": name, "model": model, "example_id": e.id, "prompt_style": prompt.style,
                   "prompt_version": prompt.version, "answer": prompt.answer,
                   "prompt_sha256": hashlib.sha256(prompt.text.encode()).hexdigest()[:16],
                   "raw": ans.raw, "label": ans.label, "rationale": ans.rationale, "confidence": ans.confidence,
                   "distribution": ans.distribution, "valid": ans.valid, "tokens_in": ans.usage.tokens_in,
                   "tokens_out": ans.usage.tokens_out, "latency_s": round(ans.latency_s, 3)}
            if steps:
                row["student_explanation"] = steps
            with gzip.open(out, "at") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        if i % 10 == 0:
            print(f"{i}/{len(todo)} ({(time.time() - started) / i:.2f} s per example)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
