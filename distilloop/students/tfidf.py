"""TF-IDF features and logistic regression (scikit-learn): the fast default student."""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from distilloop.errors import StudentError
from distilloop.students.base import Student


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

        parts = [("word", TfidfVectorizer(ngram_range=(1, self.ngram_max), sublinear_tf=True,
                                          max_features=self.max_features, min_df=1))]
        if self.char_ngrams:
            parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
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
