"""The ``Student`` contract: what a campaign distils, retrains each round and promotes when better.

A student is fitted on labeled examples, optionally with the teachers' rationales (Distilling
Step-by-Step) and soft labels (the ensemble's label distribution, for knowledge distillation); it predicts
probabilities over the label set in a fixed order; it saves to a directory and loads back; each fitted
student has a version id. As in scikit-learn, the constructor only stores parameters, ``fit`` validates,
fitted state ends in ``_``, and :meth:`clone` gives a fresh unfitted student with the same parameters.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from distilloop.core.answers import AnswerSpace
from distilloop.errors import StudentError, UserInputError

#: where a long encoding pass reports how far it is (texts done, texts in the pass), while :func:`reporting` holds
_REPORT: ContextVar[Callable[[int, int], None] | None] = ContextVar("distilloop_encoding_report", default=None)


@contextmanager
def reporting(report: Callable[[int, int], None]) -> Iterator[None]:
    """While inside, a student's pass over many texts (a frozen encoder embedding a pool, whatever part of it a
    strategy asks for) calls ``report(done, total)`` after each step. A context variable, not an attribute: a
    student is copied to other processes (Ray workers), a callback is not."""
    token = _REPORT.set(report)
    try:
        yield
    finally:
        _REPORT.reset(token)


def encoding_report() -> Callable[[int, int], None] | None:
    """The current :func:`reporting` callback, if any."""
    return _REPORT.get()


class Student(ABC):
    """Base class of every student. ``classes_`` is the label order of :meth:`predict_proba`'s columns."""

    kind = "abstract"
    #: whether :meth:`fit` uses rationales / soft labels / warm start when given (``needs_rationales``: whether
    #: this student, with its parameters, learns from them at all: what ``[rationales] policy = "auto"`` reads)
    uses_rationales = False
    uses_soft_labels = False
    supports_warm_start = False
    #: the parameters that shape the weights a warm start copies: a student configured with other values (or of
    #: another kind) than the one it would continue trains from scratch (:meth:`continues`)
    warm_start_keys: tuple[str, ...] = ("model",)
    #: whether fitting it again costs seconds, not minutes: ``[routing] review_trust = "auto"`` fits such a student
    #: twice in a round with reviewed labels, once per way of reading the reviews
    cheap_to_refit = False
    #: what it gives a campaign: "probabilities" (over a label set), "embeddings", "explanations" (``explain``
    #: and ``answer_from``), "samples" (``sample_proba``), "numbers" (it learns open numeric answers: ``fit``
    #: with an empty label set, :meth:`predict` generates the answer)
    provides: frozenset[str] = frozenset({"probabilities"})

    @property
    def needs_rationales(self) -> bool:
        return self.uses_rationales

    @property
    def supports_numeric(self) -> bool:
        return "numbers" in self.provides

    def provides_for(self, space: AnswerSpace) -> frozenset[str]:
        """What it provides in a campaign with this answer space (no probabilities without a label set)."""
        return self.provides if space.has_label_set else self.provides - {"probabilities"}

    def check_params(self) -> None:
        """Validate the parameters without fitting (the campaign calls it before anything is written or paid):
        each must have the type of its default, then the student's own checks (``_check_params``)."""
        sig = inspect.signature(type(self).__init__)
        for name, p in sig.parameters.items():
            if name == "self" or p.default is inspect.Parameter.empty or p.default is None:
                continue
            value = getattr(self, name, p.default)
            want = type(p.default)
            ok = (isinstance(value, bool) if want is bool else
                  isinstance(value, int) and not isinstance(value, bool) if want is int else
                  isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                  if want is float else isinstance(value, want))
            if not ok:
                kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
                    want, want.__name__)
                raise StudentError(f"{name} must be {kind}, got {value!r}")
        self._check_params()

    def _check_params(self) -> None:  # noqa: B027 - optional hook
        """A student's own checks of its parameters (ranges, a model that can be found)."""

    classes_: list[str]
    version_: str

    # -- parameters (scikit-learn style) ---------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {n: getattr(self, n) for n in sig.parameters if n != "self" and hasattr(self, n)}

    def continues(self, previous: Student | None) -> Student | None:
        """``previous`` where a warm start can continue it (this kind supports one; the same kind, with the same
        :attr:`warm_start_keys`), else None: a campaign whose student kind or model was changed trains the new
        one from scratch instead of failing on, or silently keeping, the old weights."""
        if previous is None or not self.supports_warm_start or type(previous) is not type(self):
            return None
        mine, theirs = self.get_params(), previous.get_params()
        return previous if all(mine.get(k) == theirs.get(k) for k in self.warm_start_keys) else None

    def clone(self) -> Student:
        """A fresh, unfitted student with the same parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def variants(self, chosen: dict[str, Any] | None = None) -> list[tuple[dict[str, Any], Student]]:
        """The fresh students a round fits, each with the parameters it changes, the one scoring best on the
        campaign's decision reference kept (the first on a tie): by default this student alone. A student cheap to
        refit may return a small grid of a hyperparameter whose best value depends on how many labels there are.
        Called again with the parameters that won (``chosen``), it may return a second, smaller grid around them
        (one more parameter tried at the winner's values, instead of every combination); by default none."""
        return [] if chosen is not None else [({}, self.clone())]

    # -- the contract --------------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[str], *, classes: Sequence[str],
            rationales: Sequence[str | None] | None = None,
            soft_labels: Sequence[Mapping[str, float] | None] | None = None,
            warm_start: Student | None = None) -> Student:
        """Validate the inputs, train, and set ``classes_`` and ``version_``."""
        self.check_params()
        texts, labels, classes = list(texts), list(labels), list(classes)
        if len(texts) != len(labels):
            raise StudentError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
        if not texts:
            raise StudentError("cannot fit a student on no examples; label some first")
        if not classes and not self.supports_numeric:
            raise StudentError(f"the {self.kind} student needs a label set (it classifies); a campaign whose answers "
                               "are numbers needs a student that generates them: kind = \"step_by_step\"")
        unknown = sorted(set(labels) - set(classes)) if classes else []
        if unknown:
            raise StudentError(f"labels {unknown} are not in the label set {classes}")
        for name, seq in (("rationales", rationales), ("soft_labels", soft_labels)):
            if seq is not None and len(seq) != len(texts):
                raise StudentError(f"{name} must have one entry per text, got {len(seq)} for {len(texts)} texts")
        self.classes_ = classes
        started = time.perf_counter()
        self._fit(texts, labels, rationales=rationales, soft_labels=soft_labels,
                  warm_start=warm_start if self.supports_warm_start else None)
        self.fit_seconds_ = time.perf_counter() - started
        # every input that shapes the model, soft labels too: two campaigns that label the same texts the same way
        # but with other distributions train other students, and a student's folder is named by its version
        digest = hashlib.sha256(json.dumps([self.kind, self.get_params(), texts, labels, rationales, soft_labels],
                                           default=str, sort_keys=True).encode()).hexdigest()[:10]
        self.version_ = f"{self.kind}-{digest}"
        return self

    @abstractmethod
    def _fit(self, texts: list[str], labels: list[str], *, rationales: Sequence[str | None] | None,
             soft_labels: Sequence[Mapping[str, float] | None] | None, warm_start: Student | None) -> None: ...

    @property
    def numeric(self) -> bool:
        """Fitted on open numeric answers (an empty label set)."""
        return self.is_fitted() and not self.classes_

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape ``(len(texts), len(classes_))``, rows summing to 1."""

    def predict(self, texts: Sequence[str]) -> list[str]:
        proba = self.predict_proba(texts)
        return [self.classes_[i] for i in np.asarray(proba).argmax(axis=1)]

    def release_memory(self) -> None:  # noqa: B027 - optional hook
        """Drop what predicting kept in memory per text (an input cache): a stream of predictions over a file of
        any length calls it between batches, so its memory stays constant."""

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """Vectors for diversity strategies, where the student has a representation; else ``None``."""
        return None

    def is_fitted(self) -> bool:
        return hasattr(self, "version_")

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"kind": self.kind, "params": self.get_params(), "classes": self.classes_,
                "version": self.version_, "module": type(self).__module__, "class": type(self).__qualname__}
        self._save(path)
        (path / "distilloop_student.json").write_text(json.dumps(meta, indent=2, default=str))
        return path

    @abstractmethod
    def _save(self, path: Path) -> None: ...

    @abstractmethod
    def _load(self, path: Path) -> None: ...

    @staticmethod
    def load(path: str | Path) -> Student:
        path = Path(path)
        meta_file = path / "distilloop_student.json"
        if not path.exists() and path.parent.name.endswith(".students"):
            raise UserInputError(
                f"the saved student {path.name} is not in {path.parent}: a campaign's students folder goes with its "
                f"store; copy {path.parent.name} beside the store")
        if not meta_file.exists():
            raise StudentError(f"{path} is not a saved distilloop student (no distilloop_student.json)")
        meta = json.loads(meta_file.read_text())
        import importlib

        cls = getattr(importlib.import_module(meta["module"]), meta["class"])
        student = cls(**meta["params"])
        student.classes_ = meta["classes"]
        student.version_ = meta["version"]
        student._load(path)
        return student
