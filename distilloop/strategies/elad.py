"""Explanation-guided sample selection (ELAD: Zhang, Pan, Ling, Hu & Zhao, "ELAD: Explanation-Guided Large
Language Models Active Distillation", Findings of ACL 2024, arXiv 2402.13098).

The student explains each candidate step by step, and the items whose *reasoning* is unstable are picked,
even when the final answer happens to be right:

* **within-explanation uncertainty**: the explanation is cut after each step (after 0, 1, ..., m-1 of its m
  steps), the student finishes from there, and we measure how far that answer is from the answer after the
  whole explanation (total-variation distance between the two label distributions; with hard labels, the
  fraction of cut points whose answer differs), averaged over cut points and over sampled explanations;
* **across-explanation uncertainty**: several explanations are sampled and the entropy of their final
  answers is taken, scaled to ``[0, 1]`` by its maximum ``log(min(k, n_classes))``.

The score is ``within_weight * within + (1 - within_weight) * across``. The chosen items' student
explanations are handed on for the teachers' explanation-revision prompt (ELAD's CLEAR step): in
``ctx.extra["explanations"]`` (``{id: [step, ...]}``, the first explanation of each chosen item), with the two
uncertainties in ``ctx.extra["explanation_uncertainty"]`` (``{id: {"within": .., "across": ..}}``), and on the
returned :class:`~distilloop.core.types.Selection` (``explanations``), which the campaign stores with the round's
selection and hands to the prompts.

The explaining-student protocol (the student, or ``ctx.extra["explainer"]``, provides):

* ``explain(text) -> list[str]``: one explanation as a list of steps (greedy; required);
* ``answer_from(text, partial_steps) -> str | Mapping[str, float]``: the answer (a label, or a distribution
  over labels) after reading ``text`` and the first steps of an explanation (required); with no label set
  (``ctx.classes`` empty: numeric answers) the answers are compared as they are, so within-explanation
  uncertainty is the fraction of cut points whose answer is another number;
* ``sample_explanations(text, n_samples, rng) -> list[list[str]]``: ``n_samples`` sampled explanations
  (optional: without it only ``explain``'s one explanation is used and across-explanation uncertainty is 0).

Explaining every pool item is expensive (a generation per sample plus one scoring pass per step), so ELAD
runs on the ``candidates`` items a cheap ``prefilter`` strategy ranks highest (:class:`TopCandidates`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from distilloop.core.types import Selection
from distilloop.errors import DistilloopError
from distilloop.strategies.base import Composite, SelectionContext, Strategy, top_n
from distilloop.strategies.subsample import TopCandidates


@runtime_checkable
class ExplainingStudent(Protocol):
    def explain(self, text: str) -> list[str]: ...

    def answer_from(self, text: str, partial_steps: Sequence[str]) -> str | Mapping[str, float]: ...


def _dist(answer: str | Mapping[str, float], classes: Sequence[str]) -> np.ndarray:
    out = np.zeros(len(classes))
    if isinstance(answer, Mapping):
        for label, p in answer.items():
            if label in classes:
                out[classes.index(label)] = float(p)
        total = out.sum()
        return out / total if total > 0 else np.full(len(classes), 1.0 / len(classes))
    if answer in classes:
        out[classes.index(answer)] = 1.0
        return out
    return np.full(len(classes), 1.0 / len(classes))  # an answer outside the label set: no information


def _open_answer(answer: str | Mapping[str, float]) -> str:
    """An answer with no label set (a number): the answer itself, or the mode of a distribution."""
    if isinstance(answer, Mapping):
        return max(answer, key=lambda k: answer[k]) if answer else ""
    return str(answer)


def within_uncertainty(explainer: Any, text: str, steps: Sequence[str], classes: Sequence[str]) -> float:
    """Mean total-variation distance between the answer after each cut and after the whole explanation (with
    no label set, i.e. numeric answers: the fraction of cuts whose answer differs from the final one)."""
    if not steps:
        return 0.0
    if not classes:
        last = _open_answer(explainer.answer_from(text, list(steps)))
        return float(np.mean([_open_answer(explainer.answer_from(text, list(steps[:j]))) != last
                              for j in range(len(steps))]))
    final = _dist(explainer.answer_from(text, list(steps)), classes)
    moves = [0.5 * np.abs(_dist(explainer.answer_from(text, list(steps[:j])), classes) - final).sum()
             for j in range(len(steps))]
    return float(np.mean(moves))


def across_uncertainty(explainer: Any, text: str, explanations: Sequence[Sequence[str]],
                       classes: Sequence[str]) -> float:
    """Entropy of the final answers of several explanations, scaled to [0, 1]."""
    if len(explanations) < 2:
        return 0.0
    votes: Counter[Any]
    if classes:
        votes = Counter(int(np.argmax(_dist(explainer.answer_from(text, list(e)), classes))) for e in explanations)
        scale = math.log(min(len(explanations), len(classes)))
    else:  # numeric answers: any two different numbers are different answers
        votes = Counter(_open_answer(explainer.answer_from(text, list(e))) for e in explanations)
        scale = math.log(len(explanations))
    p = np.array(list(votes.values()), dtype=np.float64) / len(explanations)
    h = float(-(p * np.log(p)).sum())
    return h / scale


class ExplanationInstability(Strategy):
    """ELAD's scoring on a (small) pool: every item is explained and scored; see the module doc."""

    name = "elad_scores"
    # the student's answers along its own explanation steps, not its label probabilities
    own_needs = frozenset({"student", "explanations"})

    def __init__(self, n_explanations: int = 3, within_weight: float = 0.5) -> None:
        if n_explanations < 1:
            raise ValueError(f"n_explanations must be at least 1, got {n_explanations!r}")
        if not 0.0 <= within_weight <= 1.0:
            raise ValueError(f"within_weight must be in [0, 1], got {within_weight!r}")
        self.n_explanations = n_explanations
        self.within_weight = within_weight

    @staticmethod
    def explainer(ctx: SelectionContext) -> Any:
        ex = ctx.extra.get("explainer", ctx.student)
        if ex is None or not (hasattr(ex, "explain") and hasattr(ex, "answer_from")):
            raise DistilloopError(
                "elad needs a student that explains itself (explain(text) and answer_from(text, steps)), got "
                f"{type(ex).__name__}; use the 'step_by_step' student or another strategy")
        return ex

    def explanations(self, ex: Any, text: str, rng: np.random.Generator) -> list[list[str]]:
        if self.n_explanations > 1 and hasattr(ex, "sample_explanations"):
            return [list(e) for e in ex.sample_explanations(text, self.n_explanations, rng)]
        return [list(ex.explain(text))]

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        ex = self.explainer(ctx)
        classes = list(ctx.classes)
        found, within, across = [], np.zeros(len(ctx.unlabeled_ids)), np.zeros(len(ctx.unlabeled_ids))
        for i, text in enumerate(ctx.unlabeled_texts):
            exps = self.explanations(ex, text, ctx.rng)
            found.append(exps)
            within[i] = np.mean([within_uncertainty(ex, text, e, classes) for e in exps])
            across[i] = across_uncertainty(ex, text, exps, classes)
        score = self.within_weight * within + (1.0 - self.within_weight) * across
        sel = top_n(ctx.unlabeled_ids, score, n, ctx.rng)
        pos = {id_: i for i, id_ in enumerate(ctx.unlabeled_ids)}
        chosen = {id_: found[pos[id_]][0] for id_ in sel.ids}
        ctx.extra.setdefault("explanations", {}).update(chosen)
        ctx.extra.setdefault("explanation_uncertainty", {}).update(
            {id_: {"within": float(within[pos[id_]]), "across": float(across[pos[id_]])} for id_ in sel.ids})
        return Selection(sel.ids, sel.scores, explanations=chosen)


class ELADSampling(Composite):
    """ELAD on the ``candidates`` items the cheap ``prefilter`` strategy ranks highest (0: the whole pool)."""

    name = "elad"

    def __init__(self, candidates: int = 100, prefilter: Any = "entropy", n_explanations: int = 3,
                 within_weight: float = 0.5) -> None:
        self.candidates = candidates
        self.prefilter = prefilter
        self.n_explanations = n_explanations
        self.within_weight = within_weight
        self.scorer_ = ExplanationInstability(n_explanations, within_weight)
        self.inner_ = (TopCandidates(base=self.scorer_, prefilter=prefilter, size=candidates)
                       if candidates > 0 else self.scorer_)

    def children(self) -> list[Strategy]:
        return [self.inner_]  # the scorer, and the prefilter's needs (numeric answers: prefilter = "typiclust")

    def query(self, ctx: SelectionContext, n: int) -> Selection:
        return self.inner_.select(ctx, n)
