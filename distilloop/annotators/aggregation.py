"""Turning the teachers' votes on one item into a verdict: a label, a soft label and an agreement score.

Three aggregators:

- :class:`MajorityVote`: plurality of valid votes.
- :class:`ConfidenceWeightedVote`: each vote counts with the teacher's confidence in its label.
- :class:`DawidSkene`: EM over one confusion matrix per teacher (Dawid & Skene, "Maximum Likelihood
  Estimation of Observer Error-Rates Using the EM Algorithm", Applied Statistics 28(1), 1979), learned over
  every item the campaign has seen; items a human reviewed are clamped to the human label (known truth), so
  the reviews sharpen each teacher's estimated reliability per class. EM starts from the confidence-weighted
  vote (``init = "vote"`` starts from vote shares, as in the paper).

Every verdict carries the agreement of the item: the vote share of the winner, the entropy of the vote
distribution, and whether the rationales support the same label (:func:`rationale_stance`); and a soft label
(a distribution over the label set) kept for the students.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from distilloop.core.types import Verdict, Vote
from distilloop.errors import UserInputError


def entropy(dist: Mapping[str, float]) -> float:
    return -sum(p * math.log(p) for p in dist.values() if p > 0)


def vote_table(votes: Sequence[Vote]) -> list[dict]:
    """The votes as stored with the item's consensus: ``distribution`` is the teacher's own (uncalibrated)
    one, so later rounds can re-fit calibration on the campaign's history; a calibrated vote also keeps
    ``calibrated_distribution`` and, when calibration changed its label, ``answered``."""
    rows = []
    for v in votes:
        row = {"teacher": v.teacher, "label": v.label, "confidence": v.confidence, "rationale": v.rationale,
               "valid": v.valid, "distribution": v.raw_distribution or v.distribution}
        if v.raw_distribution is not None:
            row["calibrated_distribution"] = v.distribution
        if v.answered is not None:
            row["answered"] = v.answered
        rows.append(row)
    return rows


def votes_from_rows(rows: Sequence[Mapping[str, Any]] | None) -> list[Vote]:
    """Votes back from a stored vote table (:func:`vote_table`)."""
    out = []
    for r in rows or []:
        calibrated = r.get("calibrated_distribution")
        out.append(Vote(r["teacher"], r.get("label"), r.get("rationale"), r.get("confidence"),
                        bool(r.get("valid", True)), calibrated or r.get("distribution"), r.get("answered"),
                        r.get("distribution") if calibrated else None))
    return out


def valid_votes(votes: Sequence[Vote], labels: Sequence[str]) -> list[Vote]:
    return [v for v in votes if v.valid and v.label is not None and v.label in labels]


_NEGATION = re.compile(r"\b(not|no|never|n't|isn't|wasn't|hardly|neither|nor)\W+(\w+\W+)?$", re.I)


def rationale_stance(rationale: str | None, labels: Sequence[str]) -> str | None:
    """The label a rationale argues for, by a deliberately simple check: the one label of the set that the
    rationale names as a whole word (case-insensitive) without a negation ("not", "no", "n't", ...) in the two
    words before it. ``None`` when it names none or several: the check then abstains."""
    if not rationale:
        return None
    named = set()
    for label in labels:
        for m in re.finditer(rf"\b{re.escape(label)}\b", rationale, flags=re.I):
            if not _NEGATION.search(rationale[max(0, m.start() - 40):m.start()]):
                named.add(label)
    return next(iter(named)) if len(named) == 1 else None


def rationales_agree(votes: Sequence[Vote], labels: Sequence[str]) -> bool | None:
    """True when every rationale that takes a stance (:func:`rationale_stance`) supports the same label,
    False when two rationales argue for different labels, None when fewer than one takes a stance."""
    stances = {s for v in valid_votes(votes, labels) if (s := rationale_stance(v.rationale, labels)) is not None}
    if not stances:
        return None
    return len(stances) == 1


def _counts(valid: Sequence[Vote], labels: Sequence[str]) -> dict[str, int]:
    counts = {label: 0 for label in labels}
    for v in valid:
        counts[v.label] += 1  # type: ignore[index]
    return counts


def verdict_from_soft(soft: Mapping[str, float], votes: Sequence[Vote], labels: Sequence[str], method: str,
                      ) -> Verdict:
    """A verdict whose label is the mode of ``soft``; a tie goes to the label with the larger summed confidence,
    and a tie on both is left unresolved (``label`` None: the item goes to review), never settled by the order
    of the label set or of the teachers."""
    valid = valid_votes(votes, labels)
    if not valid:
        return Verdict(None, {}, 0.0, 0.0, 0, None, method, vote_table(votes))
    conf = {label: 0.0 for label in labels}
    for v in valid:
        conf[v.label] += v.confidence if v.confidence is not None else 0.0  # type: ignore[index]
    rank = {x: (round(soft.get(x, 0.0), 12), round(conf[x], 12)) for x in labels}
    best = max(rank.values())
    top = [x for x in labels if rank[x] == best]
    soft = {label: float(soft.get(label, 0.0)) for label in labels}
    counts = _counts(valid, labels)
    if len(top) > 1:  # an even split the confidences do not break: nobody won
        return Verdict(None, soft, soft[top[0]], entropy(soft), len(valid), None, method, vote_table(votes),
                       vote_share=counts[top[0]] / len(valid), rationales_agree=rationales_agree(votes, labels))
    winner = top[0]
    # a vote that calibration moved to this label kept a rationale arguing for another one: not a training rationale
    supporters = [v for v in valid if v.label == winner and v.answered is None]
    rationale = None
    if supporters:
        rationale = max(supporters, key=lambda v: v.confidence if v.confidence is not None else 0.0).rationale
    return Verdict(winner, soft, soft[winner], entropy(soft), len(valid), rationale, method, vote_table(votes),
                   vote_share=counts[winner] / len(valid), rationales_agree=rationales_agree(votes, labels))


class MajorityVote:
    """Plurality of valid votes; ties broken by summed confidence, else left unresolved (the item goes to review).

    The soft label is the vote share per label; agreement is the winner's share.
    """

    name = "majority"
    needs: frozenset[str] = frozenset()  # counts over whatever answers were given: numbers too

    def aggregate(self, votes: Sequence[Vote], labels: Sequence[str]) -> Verdict:
        valid = valid_votes(votes, labels)
        counts = _counts(valid, labels)
        soft = {label: counts[label] / len(valid) for label in labels} if valid else {}
        return verdict_from_soft(soft, votes, labels, self.name)


class ConfidenceWeightedVote:
    """Each valid vote adds its teacher's confidence in its label (``default_confidence`` when the teacher gave
    none); the soft label is the normalised weight per label. A teacher that reports a full distribution
    over the label set adds that distribution instead (``use_distribution``), so a 0.55-"negative" vote counts
    0.45 for "positive"."""

    name = "confidence_weighted"
    needs: frozenset[str] = frozenset()

    def __init__(self, default_confidence: float = 0.5, use_distribution: bool = True) -> None:
        self.default_confidence = default_confidence
        self.use_distribution = use_distribution

    def aggregate(self, votes: Sequence[Vote], labels: Sequence[str]) -> Verdict:
        valid = valid_votes(votes, labels)
        weight = {label: 0.0 for label in labels}
        for v in valid:
            if self.use_distribution and v.distribution and all(k in weight for k in v.distribution):
                for k, p in v.distribution.items():
                    weight[k] += float(p)
            else:
                c = v.confidence if v.confidence is not None else self.default_confidence
                weight[v.label] += float(c)  # type: ignore[index]
        total = sum(weight.values())
        soft = {k: w / total for k, w in weight.items()} if total > 0 else (
            {k: c / len(valid) for k, c in _counts(valid, labels).items()} if valid else {})
        return verdict_from_soft(soft, votes, labels, self.name)


@dataclass
class Reliability:
    """A teacher's estimated confusion matrix: ``matrix[true][given]`` = P(teacher says ``given`` | truth is
    ``true``), and ``support[true]`` the (expected) number of items of that class the teacher labeled."""

    teacher: str
    matrix: dict[str, dict[str, float]]
    support: dict[str, float]

    def accuracy(self, label: str) -> float:
        return self.matrix[label][label]


class DawidSkene:
    """Dawid-Skene EM over per-teacher confusion matrices (Dawid & Skene 1979).

    :meth:`aggregate_many` fits on a batch of items (the round's items plus the campaign's history, passed in
    by the runner) with optional ``known`` labels from human review, which are clamped: they act as ground
    truth when estimating each teacher's confusion matrix. ``smoothing`` is a Dirichlet pseudo-count added to
    every cell of a two-label matrix (and ``diag_prior`` more to the diagonal) so a teacher seen on few items is
    assumed better than chance rather than perfect or useless; with k labels a row's ``2 * smoothing`` is spread
    over its k cells, so the prior weighs as much as with two (at 1 a cell, a 30-label teacher right on all 4
    items of a class read 0.17 there, each item outweighed by the 31 pseudo-counts; now 0.72). The confusion matrices are learnt only from items with answers of two
    or more teachers or a known label (``n_informative_``); every item's posterior uses them. A single item
    (``aggregate``) falls back to majority-vote initialisation, which is all EM can do with one item.
    """

    name = "dawid_skene"
    needs = frozenset({"label_set"})  # one confusion matrix per teacher over the label set

    def __init__(self, max_iter: int = 100, tol: float = 1e-6, smoothing: float = 1.0, diag_prior: float = 1.0,
                 init: str = "confidence") -> None:
        if init not in ("vote", "confidence"):
            raise UserInputError(f"aggregation.init: must be 'vote' or 'confidence', got {init!r}")
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing
        self.diag_prior = diag_prior
        self.reliability_: dict[str, Reliability] = {}
        self.priors_: dict[str, float] = {}
        self.n_iter_ = 0
        self.n_informative_ = 0  # items the confusion matrices were learnt from (two or more answers, or known)

    def aggregate(self, votes: Sequence[Vote], labels: Sequence[str]) -> Verdict:
        return self.aggregate_many({"_": list(votes)}, labels)["_"]

    def fit(self, items: Mapping[str, Sequence[Vote]], labels: Sequence[str],
            known: Mapping[str, str] | None = None) -> np.ndarray:
        """Run EM; return the posterior over labels per item (rows in ``items`` order)."""
        labels = list(labels)
        k = len(labels)
        lab_idx = {x: i for i, x in enumerate(labels)}
        ids = list(items)
        teachers = sorted({v.teacher for vs in items.values() for v in vs})
        t_idx = {t: j for j, t in enumerate(teachers)}
        n, m = len(ids), len(teachers)
        # obs[i, j] = label index given by teacher j on item i, -1 if none/invalid
        obs = np.full((n, m), -1, dtype=int)
        for i, ex in enumerate(ids):
            for v in valid_votes(items[ex], labels):
                obs[i, t_idx[v.teacher]] = lab_idx[v.label]  # type: ignore[index]
        onehot = np.zeros((n, m, k))
        ii, jj = np.nonzero(obs >= 0)
        onehot[ii, jj, obs[ii, jj]] = 1.0
        clamp = np.zeros(n, dtype=bool)
        clamped = np.zeros((n, k))
        for i, ex in enumerate(ids):
            if known and ex in known and known[ex] in lab_idx:
                clamp[i] = True
                clamped[i, lab_idx[known[ex]]] = 1.0
        # initialise with vote shares, or the confidence-weighted vote (which breaks 1-1 ties between two
        # teachers by how sure each was; with vote shares EM has nothing to start from on those items)
        post = onehot.sum(axis=1) + 1e-9
        if self.init == "confidence":
            cw = ConfidenceWeightedVote()
            for i, ex in enumerate(ids):
                soft = cw.aggregate(items[ex], labels).soft_label
                if soft:
                    post[i] = [soft[x] + 1e-9 for x in labels]
        post /= post.sum(axis=1, keepdims=True)
        post[clamp] = clamped[clamp]
        prior_cells = self.smoothing * 2 / max(k, 2) + self.diag_prior * np.eye(k)
        # the confusion matrices are learnt from the items that can say something about them: answered by two or
        # more teachers, or with a known label. An item one teacher answered alone only echoes the starting guess
        # (a cascade's items, mostly): fitted on those, EM keeps each teacher's own confidence as its reliability
        informative = clamp | ((obs >= 0).sum(axis=1) >= 2)
        self.n_informative_ = int(informative.sum())
        pi = np.full(k, 1.0 / k)
        conf = np.zeros((m, k, k))
        self.n_iter_ = 0
        for it in range(self.max_iter):
            self.n_iter_ = it + 1
            # M-step: class priors and confusion matrices
            pi = (post.sum(axis=0) + 1.0) / (n + k)
            conf = np.einsum("ik,ijl->jkl", post[informative], onehot[informative]) + prior_cells[None]
            conf /= conf.sum(axis=2, keepdims=True)
            # E-step
            log_post = np.log(pi)[None, :] + np.einsum("ijl,jkl->ik", onehot, np.log(conf))
            log_post -= log_post.max(axis=1, keepdims=True)
            new = np.exp(log_post)
            new /= new.sum(axis=1, keepdims=True)
            new[clamp] = clamped[clamp]
            delta = float(np.abs(new - post).max()) if n else 0.0
            post = new
            if delta < self.tol:
                break
        support = np.einsum("ik,ij->jk", post[informative], (obs[informative] >= 0).astype(float))
        self.priors_ = {x: float(pi[lab_idx[x]]) for x in labels}
        self.reliability_ = {
            t: Reliability(t, {a: {b: float(conf[j, lab_idx[a], lab_idx[b]]) for b in labels} for a in labels},
                           {a: float(support[j, lab_idx[a]]) for a in labels})
            for t, j in t_idx.items()}
        return post

    def aggregate_many(self, items: Mapping[str, Sequence[Vote]], labels: Sequence[str],
                       known: Mapping[str, str] | None = None) -> dict[str, Verdict]:
        post = self.fit(items, labels, known)
        out = {}
        for i, ex in enumerate(items):
            soft = {x: float(post[i, a]) for a, x in enumerate(labels)}
            out[ex] = verdict_from_soft(soft, items[ex], labels, self.name)
        return out


def reliability_rows(reliability: Mapping[str, Reliability]) -> list[dict[str, Any]]:
    """Flat rows (teacher, true label, given label, probability, support) for the store."""
    rows = []
    for t, r in reliability.items():
        for a, row in r.matrix.items():
            for b, p in row.items():
                rows.append({"teacher": t, "true_label": a, "given_label": b, "prob": p,
                             "support": r.support.get(a, 0.0)})
    return rows
