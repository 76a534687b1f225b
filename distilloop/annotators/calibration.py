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

What it assumes: that no label is much rarer in the pool than the others. Under a skewed pool it pulls answers
toward the rare label: ``init``'s levers on pools of the recorded RT items made 80% (90%) positive accept labels 71%
(63%) right with equal shares, 80% (78%) with no calibration. So the bias can be fitted to class shares instead
(``prior``): each teacher's shift is the one whose calibrated distributions average to the shares (Saerens et al.,
"Adjusting the Outputs of a Classifier to New a Priori Probabilities", Neural Computation 2002, the same fixed
point); with the shares of a 200-row gold dev split the labels are 88% (93%) right (``benchmarks/skewed_pool.py``).
:func:`estimate_prior` reads the shares off a gold sample drawn like the pool (a campaign's audit answers or its
dev split's gold labels) and keeps equal shares unless the sample shows the labels are not equally common.

Only teachers that report a distribution over the label set (logprobs: llama.cpp, OpenAI) are calibrated, and
only once they have answered ``min_items`` items; a vote whose calibrated label differs from the teacher's answer
keeps its rationale for display (reviewers see what the teacher said) but that rationale is not used as the
item's training rationale, since it argues for the other label.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from distilloop.core.types import Vote
from distilloop.errors import ConfigError

CALIBRATIONS = ("none", "batch")
#: where the class shares the calibration fits to come from: ``auto`` (:func:`estimate_prior` on the campaign's
#: gold sample), ``uniform`` (every label equally common, Zhou et al.'s assumption), or a table label -> share
PRIORS = ("auto", "uniform")
_FLOOR = 1e-6  # logprob distributions are truncated to the top tokens: a label not among them has p ~ 0
#: a gold sample estimates class shares from this many items up
MIN_PRIOR_ITEMS = 30
#: ... and departs from equal shares only when a chi-square test rejects them at this level
PRIOR_ALPHA = 0.01
_MIN_SHARE = 1e-3  # a label the sample never showed still gets a little mass (the calibration takes its log)


def normalize_prior(prior: Mapping[str, float], labels: Sequence[str], *, where: str = "prior") -> dict[str, float]:
    """``prior`` as shares of ``labels`` that sum to 1 (every label, each at least ``_MIN_SHARE``)."""
    unknown = sorted(set(prior) - set(labels))
    if unknown:
        raise ConfigError(f"{where}: {', '.join(map(repr, unknown))} not among the labels {list(labels)}")
    bad = [k for k, v in prior.items() if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0]
    if bad:
        raise ConfigError(f"{where}: shares must be numbers >= 0, got {', '.join(f'{k} = {prior[k]!r}' for k in bad)}")
    total = float(sum(prior.values()))
    if total <= 0:
        raise ConfigError(f"{where}: the shares add up to 0; give each label its share, e.g. "
                          f"{{ {labels[0]} = 0.8, {labels[-1]} = 0.2 }}")
    return dict(zip(labels, normalize_list([float(prior.get(x, 0.0)) / total for x in labels])))


def estimate_prior(gold: Sequence[str], labels: Sequence[str], *, min_items: int = MIN_PRIOR_ITEMS,
                   alpha: float = PRIOR_ALPHA) -> dict[str, float] | None:
    """The class shares of a gold sample drawn like the pool, or None (keep equal shares) when the sample is
    smaller than ``min_items`` or a chi-square test does not reject equal shares at ``alpha``: a small or nearly
    even sample would only add its sampling noise to the calibration."""
    from scipy.stats import chi2  # scikit-learn's dependency

    known = [g for g in gold if g in labels]
    if len(known) < min_items or len(labels) < 2:
        return None
    counts = Counter(known)
    expected = len(known) / len(labels)
    stat = sum((counts.get(x, 0) - expected) ** 2 / expected for x in labels)
    if chi2.sf(stat, len(labels) - 1) >= alpha:
        return None
    return normalize_prior({x: counts.get(x, 0) for x in labels}, labels)


def _raw(v: Vote, labels: Sequence[str], partial: bool = False) -> dict[str, float] | None:
    """The teacher's own distribution over the label set (before any calibration), or None; ``partial``: also one
    over two or more of the labels (an answer given before labels were added)."""
    d = v.raw_distribution or v.distribution
    if not (v.valid and d):
        return None
    covered = sum(1 for x in labels if x in d)
    return d if covered == len(labels) or (partial and covered >= 2) else None


def _logs(d: Mapping[str, float], labels: Sequence[str]) -> list[float]:
    """A distribution's log probabilities for the calibration. A label at zero is one the API left out of its top
    alternatives (OpenAI's ``top_logprobs``: with a dozen labels, most of them on most answers): its probability
    is unknown, below the smallest given, and is taken as half of that. Floored at ``_FLOOR`` instead, a label
    left out on most answers had a bias of about log(1e-6), and wherever it was given at all (2%) the calibration
    made it the label. On simulated teachers (``benchmarks/calibration_labels.py``), 12 labels, 20 answers: one
    without a lean 88.5% right, 79.0% after that calibration, 88.5% now; one that leans to a label 66.0%, 72.0%,
    89.5% now. The left-out labels' mass lowers the confidences with many labels (77: 0.80 raw, 0.31 here), and
    so a cascade asks its next teacher more; letting them share half the smallest keeps the confidences but
    loses accuracy on a skewed, diversely selected sample (77 labels: 42% against 81% here). Where no label is
    left out (two labels; the recorded local teachers) nothing changes."""
    given = [float(d[x]) for x in labels if float(d[x]) > 0]
    low = min(given) / 2 if given else 1.0
    return [math.log(max(float(d[x]) if float(d[x]) > 0 else low, _FLOOR)) for x in labels]


class BatchCalibration:
    """Per-teacher batch calibration of logprob label distributions (Zhou et al., ICLR 2024), in log space.

    ``fit`` takes every vote of the campaign so far (the teachers' raw distributions) and, optionally, the class
    shares to fit to (``prior``; default: equal shares); ``apply`` returns the votes with calibrated
    distributions, labels and confidences (votes of uncalibrated teachers unchanged). ``prior`` here is the
    setting (``"auto"``, ``"uniform"`` or a table) the campaign resolves before each fit.
    """

    name = "batch"
    needs = frozenset({"label_set"})  # a teacher's bias between the labels of a set

    def __init__(self, min_items: int = 20, prior: str | Mapping[str, float] = "auto") -> None:
        if isinstance(min_items, bool) or not isinstance(min_items, int) or min_items < 1:
            raise ConfigError(f"aggregation.calibrate_min_items: must be a positive integer, got {min_items!r}")
        if not isinstance(prior, Mapping) and prior not in PRIORS:
            raise ConfigError(f"aggregation.calibrate_prior: must be \"auto\", \"uniform\" or a table of label shares "
                              f"(e.g. {{ spam = 0.1, ham = 0.9 }}), got {prior!r}")
        self.min_items = min_items
        self.prior = prior
        self.bias_: dict[str, dict[str, float]] = {}
        self.n_items_: dict[str, int] = {}
        self.prior_: dict[str, float] | None = None  # the shares of the last fit (None: equal)

    def fit(self, votes: Iterable[Sequence[Vote]], labels: Sequence[str],
            prior: Mapping[str, float] | None = None, open_labels: Sequence[str] = ()) -> BatchCalibration:
        """Each teacher's bias from its answers so far. With ``prior``, the teachers that answered the most items
        are fitted to those shares, and a teacher asked about fewer (a cascade's later tier, asked where the first
        was unsure) to the shares the teachers fitted before it give those same items: its items are not a sample
        of the pool, so the pool's shares would over-correct it.

        ``open_labels``: labels whose share ``prior`` cannot give (added to the label set after its gold was
        made, which never says them): each keeps the share the teacher's own answers give it, the other labels
        share the rest as ``prior`` says. Given as 0%, a label added to split another was never chosen.

        A teacher with fewer than ``min_items`` answers over the whole label set (a label was just added: its
        earlier answers were over the labels before) is fitted on the labels most of its answers cover; a label
        outside them keeps the mean shift of the others (its bias is 0, the biases being centred)."""
        items: list[list[tuple[str, dict[str, float]]]] = []  # per item: (teacher, distribution) of each answer
        for item_votes in votes:
            items.append([(v.teacher, d) for v in item_votes if (d := _raw(v, labels, partial=True)) is not None])
        counts: dict[str, int] = {}
        for row in items:
            for t, d in row:
                if all(x in d for x in labels):
                    counts[t] = counts.get(t, 0) + 1
        self.n_items_ = counts
        self.prior_ = normalize_prior(prior, labels) if prior is not None else None
        self.bias_ = {}
        teachers = {t for row in items for t, _ in row}
        most = max(counts.values(), default=0)
        for t in sorted(teachers, key=lambda t: (-counts.get(t, 0), t)):  # the teachers that saw the most first
            cover = self._labels_to_fit(t, items, labels)
            if cover is None:
                continue
            rows = [_logs(d, cover) for row in items for u, d in row if u == t and all(x in d for x in cover)]
            bias = [sum(col) / len(rows) for col in zip(*rows)]
            if self.prior_ is not None:
                shares = self._shares(rows, cover, open_labels)
                if counts.get(t, 0) < most:
                    seen = [self._shares_of_others(row, t, cover) for row in items
                            if any(u == t and all(x in d for x in cover) for u, d in row)]
                    seen = [p for p in seen if p is not None]
                    if len(seen) >= self.min_items:
                        shares = normalize_list([sum(col) / len(seen) for col in zip(*seen)])
                bias = _fit_to_shares(rows, bias, shares)
            mean = sum(bias) / len(bias)
            self.bias_[t] = {x: b - mean for x, b in zip(cover, bias)}
        return self

    def _labels_to_fit(self, teacher: str, items: Sequence[Sequence[tuple[str, dict[str, float]]]],
                       labels: Sequence[str]) -> list[str] | None:
        """The labels a teacher's bias is fitted over: all of them where ``min_items`` of its answers cover
        them, else the label set the most of its answers cover (None: too few answers either way)."""
        sets = [tuple(x for x in labels if x in d) for row in items for u, d in row if u == teacher]
        best: tuple[int, int, tuple[str, ...]] | None = None
        for cand in {s for s in sets if len(s) >= 2}:
            n = sum(1 for s in sets if set(cand) <= set(s))
            if len(cand) == len(labels) and n >= self.min_items:
                return list(labels)
            if best is None or (n, len(cand)) > best[:2]:
                best = (n, len(cand), cand)
        return list(best[2]) if best is not None and best[0] >= self.min_items else None

    def _shares(self, rows: Sequence[Sequence[float]], cover: Sequence[str], open_labels: Sequence[str]) -> list[float]:
        """The shares a teacher's answers (log probabilities over ``cover``) are fitted to: the prior's, each of
        ``open_labels`` at the teacher's own mean probability of it (the others scaled to the rest)."""
        assert self.prior_ is not None
        own = np.exp(np.asarray(rows, dtype=float))
        own = own / own.sum(axis=1, keepdims=True)
        mine = {x: float(own[:, k].mean()) for k, x in enumerate(cover) if x in open_labels}
        known = normalize_list([self.prior_[x] for x in cover if x not in mine])
        rest = 1.0 - sum(mine.values())
        it = iter(known)
        return normalize_list([mine[x] if x in mine else rest * next(it) for x in cover])

    def _shares_of_others(self, row: Sequence[tuple[str, dict[str, float]]], teacher: str,
                          labels: Sequence[str]) -> list[float] | None:
        """The mean calibrated distribution of the already-fitted teachers (not ``teacher``) on one item."""
        dists = []
        for u, d in row:
            if u == teacher or u not in self.bias_ or not all(x in d for x in labels):
                continue
            z = [lp - self.bias_[u].get(x, 0.0) for lp, x in zip(_logs(d, labels), labels)]
            top = max(z)
            e = [math.exp(v - top) for v in z]
            dists.append([v / sum(e) for v in e])
        return [sum(col) / len(dists) for col in zip(*dists)] if dists else None

    def calibrated(self, v: Vote, labels: Sequence[str]) -> Vote:
        bias = self.bias_.get(v.teacher)
        raw = _raw(v, labels)
        if bias is None or raw is None:
            return v
        logits = {x: lp - bias.get(x, 0.0) for x, lp in zip(labels, _logs(raw, labels))}
        top = max(logits.values())
        z = sum(math.exp(s - top) for s in logits.values())
        dist = {x: math.exp(s - top) / z for x, s in logits.items()}
        label = max(labels, key=lambda x: (dist[x], -list(labels).index(x)))
        said = v.answered or v.label  # what the teacher itself answered
        return dataclasses.replace(v, label=label, confidence=dist[label], distribution=dist,
                                   answered=said if said != label else None, raw_distribution=raw)

    def apply(self, votes: Mapping[str, Sequence[Vote]], labels: Sequence[str]) -> dict[str, list[Vote]]:
        return {ex: [self.calibrated(v, labels) for v in vs] for ex, vs in votes.items()}


def normalize_list(shares: Sequence[float]) -> list[float]:
    """``shares`` floored at ``_MIN_SHARE`` and summing to 1."""
    floored = [max(float(v), _MIN_SHARE) for v in shares]
    return [v / sum(floored) for v in floored]


def _fit_to_shares(rows: list[list[float]], bias: list[float], shares: list[float], *, iters: int = 200,
                   tol: float = 1e-7) -> list[float]:
    """The bias whose calibrated distributions of ``rows`` (log probabilities, one row per answer) average to
    ``shares``: each label's bias moved by the log ratio of its mean calibrated probability to its share until
    they agree (a fixed point that exists whenever every label is some answer's most likely one after a shift)."""
    logp = np.asarray(rows, dtype=float)
    b = np.asarray(bias, dtype=float)
    target = np.log(np.asarray(shares, dtype=float))
    for _ in range(iters):
        z = logp - b
        z -= z.max(axis=1, keepdims=True)
        post = np.exp(z)
        post /= post.sum(axis=1, keepdims=True)
        step = np.log(np.maximum(post.mean(axis=0), 1e-300)) - target
        b += step
        b -= b.mean()  # only differences between labels matter
        if np.abs(step).max() < tol:
            break
    return [float(x) for x in b]


def build_calibration(kind: str, min_items: int = 20, prior: str | Mapping[str, float] = "auto") -> BatchCalibration | None:
    if kind not in CALIBRATIONS:
        raise ConfigError(f"aggregation.calibrate: must be one of {', '.join(CALIBRATIONS)}, got {kind!r}")
    return BatchCalibration(min_items, prior) if kind == "batch" else None
