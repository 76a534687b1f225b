"""Frozen sentence embeddings plus a linear head: a strong, cheap student.

The encoder (default: the packaged sentence-transformers/all-MiniLM-L6-v2; Reimers & Gurevych, 2019,
"Sentence-BERT") is never trained; only a logistic regression on its embeddings is. Embeddings are cached
in memory per model and, once :meth:`EmbeddingLinear.attach_cache` is given a store-like object
(``cache_get(kind, key)`` / ``cache_put(kind, key, bytes)``, e.g. the campaign's Store), in the store by a
hash of the model and the text, so each text is embedded once per campaign, across rounds and restarts.

Soft labels (the ensemble's label distribution) are supported by expanding each example into one row per
class weighted by its probability, which makes the logistic regression minimise the cross-entropy against
the soft targets.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from distilloop._extras import require
from distilloop.students.base import Student
from distilloop.students.encoder import soft_targets
from distilloop.students.hf_common import MINILM, offline_env, resolve_model

_MODELS: dict[tuple[str, str], Any] = {}
_MEMORY: dict[str, dict[str, np.ndarray]] = {}
CACHE_KIND = "embedding"


class EmbeddingLinear(Student):
    """Logistic regression on frozen sentence-transformers embeddings."""

    kind = "embedding_linear"
    only_class_: str | None
    uses_soft_labels = True

    def __init__(self, model: str = MINILM, C: float = 1.0, normalize: bool = True, batch_size: int = 32,
                 device: str = "cpu", seed: int = 0) -> None:
        self.model = model
        self.C = C
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.seed = seed

    def attach_cache(self, cache: Any) -> EmbeddingLinear:
        """Cache embeddings in ``cache`` (an object with ``cache_get``/``cache_put``, e.g. a Store)."""
        self._cache = cache
        return self

    def clone(self) -> Student:
        c = cast(EmbeddingLinear, super().clone())
        if getattr(self, "_cache", None) is not None:
            c.attach_cache(self._cache)  # type: ignore[attr-defined]
        return c

    # -- embeddings --------------------------------------------------------------------------------
    def _encoder(self):
        path = str(resolve_model(self.model, MINILM))
        key = (path, self.device)
        if key not in _MODELS:
            st = require("sentence_transformers", "hf", purpose="EmbeddingLinear")
            offline_env()
            _MODELS[key] = st.SentenceTransformer(path, device=self.device)
        return path, _MODELS[key]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` (rows L2-normalised when ``normalize``), through both caches."""
        path, model = self._encoder()
        tag = f"{path}|norm={self.normalize}"
        memory = _MEMORY.setdefault(tag, {})
        store = getattr(self, "_cache", None)
        keys = [hashlib.sha256(f"{tag}\n{t}".encode()).hexdigest() for t in texts]
        missing: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k in missing:
                continue
            if store is not None:
                blob = store.cache_get(CACHE_KIND, k)
                if blob is not None:
                    memory[k] = np.frombuffer(blob, dtype=np.float32)
                    continue
                if k in memory:  # embedded before the store was attached: persist it now
                    store.cache_put(CACHE_KIND, k, memory[k].tobytes())
                    continue
            elif k in memory:
                continue
            missing[k] = t
        if missing:
            vecs = model.encode(list(missing.values()), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=self.normalize, show_progress_bar=False)
            for k, v in zip(missing, np.asarray(vecs, dtype=np.float32)):
                memory[k] = v
                if store is not None:
                    store.cache_put(CACHE_KIND, k, v.tobytes())
        self.n_encoded_ = getattr(self, "n_encoded_", 0) + len(missing)
        if not keys:
            return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
        return np.stack([memory[k] for k in keys])

    # -- the contract ------------------------------------------------------------------------------
    def _fit(self, texts: list[str], labels: list[str], *, rationales: Sequence[str | None] | None,
             soft_labels: Sequence[Mapping[str, float] | None] | None, warm_start: Student | None) -> None:
        from sklearn.linear_model import LogisticRegression

        X = self.encode(texts)
        if soft_labels is not None:
            q = soft_targets(labels, soft_labels, self.classes_)
            rows, ys, ws = [], [], []
            for j, c in enumerate(self.classes_):
                keep = q[:, j] > 0
                rows.append(X[keep])
                ys += [c] * int(keep.sum())
                ws.append(q[keep, j])
            X, y, w = np.concatenate(rows), ys, np.concatenate(ws)
        else:
            y, w = labels, None
        present = sorted(set(y), key=self.classes_.index)
        if len(present) < 2:
            self.head_, self.only_class_ = None, present[0]
            return
        self.head_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.head_.fit(X, y, sample_weight=w)
        self.only_class_ = None  # type: ignore[assignment]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.classes_)))
        if self.head_ is None:
            out[:, self.classes_.index(str(self.only_class_))] = 1.0
            return out
        proba = self.head_.predict_proba(self.encode(list(texts)))
        for j, c in enumerate(self.head_.classes_):
            out[:, self.classes_.index(c)] = proba[:, j]
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        return self.encode(list(texts))

    def _save(self, path: Path) -> None:
        with open(path / "head.pkl", "wb") as f:
            pickle.dump({"head": self.head_, "only_class": self.only_class_}, f)

    def _load(self, path: Path) -> None:
        with open(path / "head.pkl", "rb") as f:
            state = pickle.load(f)  # noqa: S301 - a file the campaign itself wrote
        self.head_, self.only_class_ = state["head"], state["only_class"]
