"""Rotten Tomatoes with the recorded local teachers, as the step-by-step benchmarks use it: the pool in the
recorder's seeded order, the teachers' answers per prompt style, and the label (and rationale) a campaign would
accept from them."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilloop.annotators.aggregation import ConfidenceWeightedVote
from distilloop.annotators.calibration import BatchCalibration
from distilloop.core.types import Example, Vote
from distilloop.data import DataSpec, load_examples

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "rt_polarity.jsonl.gz"
RECORDED = ROOT / "data" / "recorded"
LABELS = ("negative", "positive")
TASK = "Classify the sentiment of the movie review snippet as negative or positive."


def examples() -> tuple[list[Example], list[Example]]:
    """``(pool in the recorder's seeded order, test split)``: any prefix of the pool is a uniform sample, and
    the recordings under ``data/recorded/`` cover prefixes of it."""
    rows = load_examples(DATA, DataSpec(input_fields=("text",)))
    pool = [e for e in rows if e.split == "pool"]
    order = np.random.default_rng(0).permutation(len(pool))
    return [pool[i] for i in order], [e for e in rows if e.split == "test"]


def test_sample(test: list[Example], n: int, seed: int = 0) -> list[Example]:
    """A seeded sample of ``n`` test items (the split is balanced, the file order is not random)."""
    return [test[i] for i in np.random.default_rng([seed, 11]).permutation(len(test))[:n]]


def recording(name: str, style: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{example_id: {teacher: row}}`` of ``data/recorded/<name>``, rows of ``style`` only when given (a file cut
    short by a running recorder is read up to its last whole line); empty when the file is missing."""
    path = RECORDED / name
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not path.exists():
        return out
    with gzip.open(path, "rt", encoding="utf-8") as f:
        try:
            for line in f:
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if style is None or r.get("prompt_style") == style:
                    out.setdefault(r["example_id"], {})[r["teacher"]] = r
        except EOFError:
            pass
    return out


def vote(r: dict[str, Any]) -> Vote:
    return Vote(r["teacher"], r.get("label"), r.get("rationale"), r.get("confidence"), bool(r.get("valid", True)),
                r.get("distribution"))


@dataclass(frozen=True)
class Accepted:
    label: str
    rationale: str | None


def accepted(rows: dict[str, dict[str, dict[str, Any]]], ids: list[str]) -> dict[str, Accepted]:
    """What a campaign with ``[aggregation] method = "confidence_weighted", calibrate = "batch"`` accepts for each
    item of ``ids``: the calibrated, confidence-weighted vote of every recorded teacher, and the rationale of
    the most confident teacher that answered that label itself (None where calibration moved every supporter:
    their rationales argue for the other label). Calibration is fitted on these items' votes, as a campaign
    fits it on the items it asked."""
    votes = {ex: [vote(r) for r in rows[ex].values()] for ex in ids}
    cal = BatchCalibration().fit(votes.values(), LABELS)
    agg = ConfidenceWeightedVote()
    out = {}
    for ex, vs in cal.apply(votes, LABELS).items():
        v = agg.aggregate(vs, LABELS)
        if v.label is not None:
            out[ex] = Accepted(v.label, v.rationale)
    return out
