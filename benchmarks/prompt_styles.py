"""The teacher prompt as a lever: each recorded prompt style's label accuracy, raw and after batch calibration, and
its tokens per answer, side by side for each teacher on the same items.

Reads the recordings of a data set's label-efficiency spec (``benchmarks/label_efficiency``: the answers with a
rationale and the label-only ones) and any other recording named with ``--extra`` (e.g. a priming style), keeps
the items every file answered for that teacher, and scores each (teacher, style) against gold. Calibration is
``distilloop.annotators.calibration.BatchCalibration`` fitted on that teacher's answers of that style, as a
campaign fits it. Nothing is asked of a model.

    PYTHONPATH=. python benchmarks/prompt_styles.py [--dataset rt_polarity] [--extra FILE ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.label_efficiency import DATASETS, ROOT
from distilloop.annotators.calibration import BatchCalibration
from distilloop.core.types import Vote
from distilloop.data import DataSpec, load_examples


def rows_of(path: Path) -> list[dict[str, Any]]:
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted recording
    return out


def score(rows: list[dict[str, Any]], gold: dict[str, str], labels: tuple[str, ...]) -> dict[str, float]:
    votes = [Vote(r["teacher"], r["label"], confidence=r.get("confidence"), valid=bool(r.get("valid", True)),
                  distribution=r.get("distribution")) for r in rows]
    cal = BatchCalibration(min_items=1).fit([votes], labels)
    raw = sum(v.label == gold[r["example_id"]] for v, r in zip(votes, rows))
    calibrated = sum(cal.calibrated(v, labels).label == gold[r["example_id"]] for v, r in zip(votes, rows))
    tokens = sum(r["tokens_in"] + r["tokens_out"] for r in rows)
    return {"items": len(rows), "raw": raw / len(rows), "calibrated": calibrated / len(rows),
            "tokens": tokens / len(rows), "tokens_out": sum(r["tokens_out"] for r in rows) / len(rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="rt_polarity", choices=sorted(DATASETS))
    ap.add_argument("--extra", nargs="*", default=[], help="more recordings of the same data set (other styles)")
    args = ap.parse_args()
    spec = DATASETS[args.dataset]
    files = [ROOT / spec.recording] + ([ROOT / spec.label_only] if spec.label_only else []) + \
        [Path(p) for p in args.extra]
    files = [f for f in files if f.exists()]
    gold = {e.id: str(e.gold) for e in load_examples(ROOT / spec.data, DataSpec(input_fields=spec.input_fields))
            if e.gold is not None}
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for f in files:
        for r in rows_of(f):
            if r["teacher"] in spec.teachers and r["example_id"] in gold:
                by[(r["teacher"], r.get("prompt_style") or "zero_shot_rationale")].append(r)
    print(f"{spec.name}: prompt styles of the recorded teachers, on the items every style answered for the teacher")
    print(f"{'teacher':10} {'style':22} {'items':>5} {'raw acc':>8} {'calibrated':>10} {'tokens':>7} {'out':>5} "
          f"{'acc per 1k tokens':>17}")
    for teacher in spec.teachers:
        styles = {s: rs for (t, s), rs in by.items() if t == teacher}
        common = set.intersection(*(set(r["example_id"] for r in rs) for rs in styles.values())) if styles else set()
        for style, rs in sorted(styles.items()):
            m = score([r for r in rs if r["example_id"] in common], gold, spec.labels)
            print(f"{teacher:10} {style:22} {m['items']:5d} {100 * m['raw']:7.1f}% {100 * m['calibrated']:9.1f}% "
                  f"{m['tokens']:7.1f} {m['tokens_out']:5.1f} {1000 * m['calibrated'] / m['tokens']:17.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
