"""Calibrating a teacher's label distribution before its vote is counted.

A small instruct LLM read as a zero-shot classifier leans toward some labels whatever the input: on the
recorded Rotten Tomatoes answers (604 items), Qwen2.5-Coder-0.5B says "positive" to 95% of the snippets and
the 1.5B says "negative" to 67%, on a sample that is 56% positive. Its label *ranking* is still good (the
logprob of "positive" separates the classes with an AUC of 0.88 and 0.95): the error is a shift, the model's prior over
the labels under this prompt. Contextual calibration (Zhao et al., "Calibrate Before Use: Improving Few-Shot
Performance of Language Models", ICML 2021) estimates that prior from a content-free input and divides it out;
batch calibration (Zhou et al., "Batch Calibration: Rethinking Calibration for In-Context Learning and Prompt
Engineering", ICLR 2024) estimates it from the model's own outputs on a batch of real, unlabeled inputs, which
needs no extra call and no gold label.

:class:`BatchCalibration` does the latter per teacher, over every answer of that teacher the campaign has
(earlier rounds and this one), in log space: the bias is the mean over the teacher's answers of
``log p(label | x)``, and the calibrated distribution is ``softmax(log p(label | x) - bias)``. (The mean in
log space measured better than the arithmetic mean of the probabilities on the recorded answers: 86.6% against
81.0% for the 1.5B, 75.7% uncalibrated; see ``benchmarks/aggregation.py``.)

What it assumes, and why it is off by default: that no label is much rarer in the pool than the others. Under a
strongly skewed pool (say 90% "positive") it pulls answers toward the minority label. Only teachers that report
a distribution over the label set (logprobs: llama.cpp, OpenAI) are calibrated, and only once they have
answered ``min_items`` items; a vote whose calibrated label differs from the teacher's answer keeps its
rationale for display (reviewers see what the teacher said) but that rationale is not used as the item's
training rationale, since it argues for the other label.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

from distilloop.core.types import Vote
from distilloop.errors import ConfigError

CALIBRATIONS = ("none", "batch")
_FLOOR = 1e-6  # logprob distributions are truncated to the top tokens: a label not among them has p ~ 0


def _raw(v: Vote, labels: Sequence[str]) -> dict[str, float] | None:
    """The teacher's own distribution over the label set (before any calibration), or None."""
    d = v.raw_distribution or v.distribution
    return d if v.valid and d and all(x in d for x in labels) else None


class BatchCalibration:
    """Per-teacher batch calibration of logprob label distributions (Zhou et al., ICLR 2024), in log space.

    ``fit`` takes every vote of the campaign so far (the teachers' raw distributions); ``apply`` returns the
    votes with calibrated distributions, labels and confidences (votes of uncalibrated teachers unchanged).
    """

    name = "batch"
    needs = frozenset({"label_set"})  # a teacher's bias between the labels of a set

    def __init__(self, min_items: int = 20) -> None:
        if isinstance(min_items, bool) or not isinstance(min_items, int) or min_items < 1:
            raise ConfigError(f"aggregation.calibrate_min_items: must be a positive integer, got {min_items!r}")
        self.min_items = min_items
        self.bias_: dict[str, dict[str, float]] = {}
        self.n_items_: dict[str, int] = {}

    def fit(self, votes: Iterable[Sequence[Vote]], labels: Sequence[str]) -> BatchCalibration:
        sums: dict[str, dict[str, float]] = {}
        counts: dict[str, int] = {}
        for item_votes in votes:
            for v in item_votes:
                d = _raw(v, labels)
                if d is None:
                    continue
                acc = sums.setdefault(v.teacher, {x: 0.0 for x in labels})
                for x in labels:
                    acc[x] += math.log(max(float(d[x]), _FLOOR))
                counts[v.teacher] = counts.get(v.teacher, 0) + 1
        self.n_items_ = counts
        self.bias_ = {t: {x: s / counts[t] for x, s in acc.items()}
                      for t, acc in sums.items() if counts[t] >= self.min_items}
        return self

    def calibrated(self, v: Vote, labels: Sequence[str]) -> Vote:
        bias = self.bias_.get(v.teacher)
        raw = _raw(v, labels)
        if bias is None or raw is None:
            return v
        logits = {x: math.log(max(float(raw[x]), _FLOOR)) - bias[x] for x in labels}
        top = max(logits.values())
        z = sum(math.exp(s - top) for s in logits.values())
        dist = {x: math.exp(s - top) / z for x, s in logits.items()}
        label = max(labels, key=lambda x: (dist[x], -list(labels).index(x)))
        said = v.answered or v.label  # what the teacher itself answered
        return dataclasses.replace(v, label=label, confidence=dist[label], distribution=dist,
                                   answered=said if said != label else None, raw_distribution=raw)

    def apply(self, votes: Mapping[str, Sequence[Vote]], labels: Sequence[str]) -> dict[str, list[Vote]]:
        return {ex: [self.calibrated(v, labels) for v in vs] for ex, vs in votes.items()}


def build_calibration(kind: str, min_items: int = 20) -> BatchCalibration | None:
    if kind not in CALIBRATIONS:
        raise ConfigError(f"aggregation.calibrate: must be one of {', '.join(CALIBRATIONS)}, got {kind!r}")
    return BatchCalibration(min_items) if kind == "batch" else None
