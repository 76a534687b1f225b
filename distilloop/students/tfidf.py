"""TF-IDF features and logistic regression (scikit-learn): the fast default student."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distilloop.errors import StudentError
from distilloop.students.base import Student

#: n-grams a process remembers per analyzer, of the first texts it meets (a campaign's reference texts, scored from
#: the first round on, come before most of a large pool): interned, so each costs a pointer (40 MB per analyzer)
MEMO_NGRAMS = 5_000_000
_MEMO: dict[tuple[str, int, int], dict[str, list[str]]] = {}
_MEMO_SIZE: dict[tuple[str, int, int], int] = {}  # n-grams remembered per analyzer


class NgramAnalyzer:
    """scikit-learn's own analyzer (``analyzer`` and ``ngram_range`` of a ``TfidfVectorizer``: lower-cased words or
    characters within word boundaries), remembering each text's n-grams: the vocabulary is fitted again every
    round, but a text's n-grams never change, and a campaign scores its student every round on the same reference
    texts (analysing them was half of a TF-IDF student's time). Pickles as its settings only."""

    def __init__(self, analyzer: str, ngram_range: tuple[int, int]) -> None:
        self.analyzer = analyzer
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self._analyze: Callable[[str], list[str]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"analyzer": self.analyzer, "ngram_range": self.ngram_range}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["analyzer"], state["ngram_range"])  # type: ignore[misc]

    def __call__(self, text: str) -> list[str]:
        key = (self.analyzer, *self.ngram_range)
        memo = _MEMO.setdefault(key, {})
        grams = memo.get(text)
        if grams is None:
            if self._analyze is None:
                from sklearn.feature_extraction.text import TfidfVectorizer

                self._analyze = TfidfVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range).build_analyzer()
            grams = [sys.intern(g) for g in self._analyze(text)]
            size = _MEMO_SIZE.get(key, 0) + len(grams)
            if size <= MEMO_NGRAMS:
                memo[text] = grams
                _MEMO_SIZE[key] = size
        return grams


class TfidfLogReg(Student):
    """Word and character n-gram TF-IDF with a logistic regression head.

    Trains in well under a second on thousands of examples; a single-class training set predicts that
    class with probability 1 until a second class is labeled.
    """

    kind = "tfidf_logreg"
    provides = frozenset({"probabilities", "embeddings"})

    def __init__(self, C: float = 4.0, ngram_max: int = 2, char_ngrams: bool = True, max_features: int = 50000,
                 seed: int = 0) -> None:
        self.C = C
        self.ngram_max = ngram_max
        self.char_ngrams = char_ngrams
        self.max_features = max_features
        self.seed = seed

    def _check_params(self) -> None:
        if self.C <= 0:
            raise StudentError(f"C must be > 0 (the inverse regularisation strength), got {self.C!r}")
        if self.ngram_max < 1 or self.max_features < 1:
            raise StudentError(f"ngram_max and max_features must be >= 1, got {self.ngram_max!r} and "
                               f"{self.max_features!r}")

    def _vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        parts = [("word", TfidfVectorizer(analyzer=NgramAnalyzer("word", (1, self.ngram_max)), sublinear_tf=True,
                                          max_features=self.max_features, min_df=1))]
        if self.char_ngrams:
            parts.append(("char", TfidfVectorizer(analyzer=NgramAnalyzer("char_wb", (2, 5)), sublinear_tf=True,
                                                  max_features=self.max_features, min_df=1)))
        return FeatureUnion(parts)

    def _fit(self, texts: list[str], labels: list[str], *, rationales: Sequence[str | None] | None,
             soft_labels: Sequence[Mapping[str, float] | None] | None, warm_start: Student | None) -> None:
        from sklearn.linear_model import LogisticRegression

        self.vectorizer_ = self._vectorizer()
        X = self.vectorizer_.fit_transform(texts)
        present = sorted(set(labels), key=self.classes_.index)
        if len(present) < 2:
            self.model_ = None
            self.only_class_ = present[0]
            return
        self.model_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.model_.fit(X, labels)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.classes_)))
        if self.model_ is None:
            out[:, self.classes_.index(self.only_class_)] = 1.0
            return out
        proba = self.model_.predict_proba(self.vectorizer_.transform(list(texts)))
        for j, cls in enumerate(self.model_.classes_):
            out[:, self.classes_.index(cls)] = proba[:, j]
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        return self.vectorizer_.transform(list(texts)) if hasattr(self, "vectorizer_") else None

    def _save(self, path: Path) -> None:
        with open(path / "model.pkl", "wb") as f:
            pickle.dump({"vectorizer": self.vectorizer_, "model": self.model_,
                         "only_class": getattr(self, "only_class_", None)}, f)

    def _load(self, path: Path) -> None:
        with open(path / "model.pkl", "rb") as f:
            state = pickle.load(f)  # noqa: S301 - files the campaign itself wrote
        self.vectorizer_, self.model_, self.only_class_ = state["vectorizer"], state["model"], state["only_class"]
