"""Frozen sentence embeddings plus a linear head: a strong, cheap student.

The encoder (default: the packaged sentence-transformers/all-MiniLM-L6-v2; Reimers & Gurevych, 2019,
"Sentence-BERT") is never trained; only a logistic regression on its embeddings is. Embeddings are cached
in memory per model and, once :meth:`EmbeddingLinear.attach_cache` is given a vector cache (the campaign's
store), there by encoder and text hash, so each text is embedded once per campaign, across rounds and restarts.

Soft labels (the ensemble's label distribution) are supported by expanding each example into one row per
class weighted by its probability, which makes the logistic regression minimise the cross-entropy against
the soft targets. With ``class_weight = "balanced"`` each class's total label mass counts the same (a prior
correction for a small or lopsided sample; :meth:`EmbeddingLinear.variants` lets the round choose it on held-out
data).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from distilloop._extras import require
from distilloop.core.protocols import VectorCache
from distilloop.core.types import text_hash
from distilloop.errors import StudentError
from distilloop.students.base import Student, encoding_report
from distilloop.students.encoder import soft_targets
from distilloop.students.hf_common import MINILM, offline_env, resolve_model

#: ``none``: each label counts by its (soft) mass; ``balanced``: each class's total mass counts the same
CLASS_WEIGHTS = ("none", "balanced")
_MODELS: dict[tuple[str, str], Any] = {}
_MEMORY: dict[str, dict[str, np.ndarray]] = {}
#: a pass over at least this many texts reports its progress, in steps of ``PROGRESS_STEP`` texts (about 6 s each
#: for the mpnet encoder on two cores; a smaller pass is encoded in one call)
PROGRESS_MIN = 2000
PROGRESS_STEP = 256
#: a long pass (the pool's first, with the campaign's cache attached) is saved this many texts at a time: an
#: interrupted one (Ctrl-C, a crash; an hour for 200,000 texts with mpnet on a CPU) keeps what it embedded
SAVE_EVERY = 64 * PROGRESS_STEP


def memory_snapshot() -> dict[str, dict[str, np.ndarray]]:
    """The embeddings this process holds in memory, by encoder: what :func:`preload` gives a worker process (a
    benchmark's campaigns in several processes embed each text once, in the parent)."""
    return {encoder: dict(vectors) for encoder, vectors in _MEMORY.items()}


def preload(snapshot: dict[str, dict[str, np.ndarray]]) -> None:
    """Take the embeddings of :func:`memory_snapshot` into this process's memory cache."""
    for encoder, vectors in snapshot.items():
        _MEMORY.setdefault(encoder, {}).update(vectors)


class EmbeddingLinear(Student):
    """Logistic regression on frozen sentence-transformers embeddings."""

    kind = "embedding_linear"
    only_class_: str | None
    uses_soft_labels = True
    cheap_to_refit = True  # a logistic regression on cached embeddings
    provides = frozenset({"probabilities", "embeddings"})

    def __init__(self, model: str = MINILM, C: float = 1.0, normalize: bool = True, batch_size: int = 32,
                 device: str = "cpu", seed: int = 0, tune_C: bool = True, class_weight: str = "none",
                 tune_class_weight: bool = True) -> None:
        self.model = model
        self.C = C
        self.tune_C = tune_C
        self.class_weight = class_weight
        self.tune_class_weight = tune_class_weight
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.seed = seed

    def _check_params(self) -> None:
        if self.C <= 0:
            raise StudentError(f"C must be > 0 (the inverse regularisation strength), got {self.C!r}")
        for key in ("tune_C", "tune_class_weight"):
            if not isinstance(getattr(self, key), bool):
                raise StudentError(f"{key} must be true or false, got {getattr(self, key)!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise StudentError(f"class_weight must be one of {', '.join(map(repr, CLASS_WEIGHTS))}, "
                               f"got {self.class_weight!r}")
        if self.batch_size < 1:
            raise StudentError(f"batch_size must be >= 1, got {self.batch_size!r}")
        resolve_model(self.model, MINILM)  # a model that cannot be found is named now, not at the first fit

    def attach_cache(self, cache: VectorCache) -> EmbeddingLinear:
        """Keep embeddings in ``cache`` (e.g. the campaign's store), so a text is embedded once per campaign."""
        self._cache = cache
        self._stored: set[str] = set()  # the texts known to be in the cache (shared with this student's clones)
        return self

    def __getstate__(self) -> dict[str, Any]:
        # the cache is the campaign's (a store: never sent to another process); a copy sent to a compute
        # engine's worker is given a read-only view of the shards there, if anything
        return {k: v for k, v in self.__dict__.items() if k not in ("_cache", "_stored")}

    def variants(self, chosen: dict[str, Any] | None = None) -> list[tuple[dict[str, Any], Student]]:
        """With ``tune_C``: ``C``, ``C / 3`` and ``3 C`` (a few labels want a weaker penalty than a few hundred
        noisy ones); with ``tune_class_weight``: each of them with either class weight (a few dozen labels rarely
        hold the classes in their true proportion, and a teacher may lean to one class; data whose classes really
        are unequal keeps its prior, because the decision reference says so). The configured parameters come
        first, so that a tie keeps them.

        The two are chosen together, not one after the other: a stronger penalty on a lopsided sample pulls every
        answer toward the larger class unless the classes are weighed equally, so ``C / 3`` alone loses to ``C``
        where ``C / 3`` balanced beats both. On the recorded Rotten Tomatoes campaigns (10 seeds, 101 labels) the
        joint choice gave 82.3% against 81.7% for ``C`` first and then the weight (docs/benchmarks.md)."""
        if chosen is not None:
            return []
        if not self.tune_C and not self.tune_class_weight:
            return super().variants()
        Cs = (self.C, round(self.C / 3, 4), round(self.C * 3, 4)) if self.tune_C else (self.C,)
        weights = ((self.class_weight, *(w for w in CLASS_WEIGHTS if w != self.class_weight))
                   if self.tune_class_weight else (self.class_weight,))
        return [self._variant({**({"C": C} if self.tune_C else {}),
                               **({"class_weight": w} if self.tune_class_weight else {})})
                for w in weights for C in Cs]

    def _variant(self, params: dict[str, Any]) -> tuple[dict[str, Any], Student]:
        c = cast(EmbeddingLinear, self.clone())
        for key, value in params.items():
            setattr(c, key, value)
        return params, c

    def clone(self) -> Student:
        c = cast(EmbeddingLinear, super().clone())
        if getattr(self, "_cache", None) is not None:
            c.attach_cache(self._cache)  # type: ignore[attr-defined]
            c._stored = self._stored  # the same cache: what one knows is stored, so does the other
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

    @property
    def embedding_key(self) -> str:
        """The name of this frozen encoder in the embedding cache (the same across rounds and restarts)."""
        return f"{self.model}|norm={self.normalize}"

    def _lookup(self, keys: Sequence[str]) -> list[str]:
        """Bring what the campaign's cache holds of ``keys`` into memory; the keys still to embed, once each."""
        encoder = self.embedding_key
        memory = _MEMORY.setdefault(encoder, {})
        unique = list(dict.fromkeys(keys))
        cache = getattr(self, "_cache", None)
        if cache is not None:  # what this process has not yet seen in (or put into) the campaign's cache
            stored: set[str] = self._stored
            check = [k for k in unique if k not in stored or k not in memory]
            found = cache.get_vectors(encoder, check) if check else {}
            memory.update(found)
            stored.update(found)
            known = {k: memory[k] for k in check if k not in found and k in memory}  # embedded before attaching
            if known:
                cache.put_vectors(encoder, known)
                stored.update(known)
        return [k for k in unique if k not in memory]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` (rows L2-normalised when ``normalize``), through both caches; a pass over many
        texts tells the current :func:`~distilloop.students.base.reporting` callback how far it is."""
        memory = _MEMORY.setdefault(self.embedding_key, {})
        keys = [text_hash(t) for t in texts]
        unseen = self._lookup(keys)
        report = encoding_report()
        progress: Callable[[int], None] | None = None
        if report is not None and len(unseen) >= PROGRESS_MIN:
            done, total = [0], len(unseen)
            report(0, total)

            def progress(k: int) -> None:  # the pass's steps, told to whoever asked for reports
                done[0] += k
                report(done[0], total)
        if unseen:
            by_key = dict(zip(keys, texts))
            cache = getattr(self, "_cache", None)
            size = SAVE_EVERY if cache is not None and progress is not None else len(unseen)
            for start in range(0, len(unseen), size):  # in steps of PROGRESS_STEP: the same vectors as one call
                part = unseen[start:start + size]
                fresh = dict(zip(part, self.encode_uncached([by_key[k] for k in part], progress,
                                                            stepped=progress is not None)))
                memory.update(fresh)
                if cache is not None:
                    cache.put_vectors(self.embedding_key, fresh)
                    self._stored.update(fresh)
        self.n_encoded_ = getattr(self, "n_encoded_", 0) + len(unseen)
        if not keys:
            return self.encode_uncached([])
        return np.stack([memory[k] for k in keys])

    def encode_uncached(self, texts: Sequence[str], progress: Callable[[int], None] | None = None, *,
                        stepped: bool = False) -> np.ndarray:
        """The encoder's vectors of ``texts``, float32, through no cache (what a compute engine's worker runs).
        With ``progress`` and at least ``PROGRESS_MIN`` texts (or ``stepped``: a part of a longer pass), in steps
        of ``PROGRESS_STEP`` texts, each reported (fewer are encoded in one call, as before: the same batches, the
        same vectors to the last bit)."""
        _, model = self._encoder()
        if not texts:
            return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
        step = (PROGRESS_STEP if progress is not None and (len(texts) >= PROGRESS_MIN or stepped)
                else len(texts))
        parts = []
        for start in range(0, len(texts), step):
            chunk = list(texts[start:start + step])
            parts.append(np.asarray(model.encode(chunk, batch_size=self.batch_size, convert_to_numpy=True,
                                                 normalize_embeddings=self.normalize, show_progress_bar=False),
                                    dtype=np.float32))
            if step < len(texts) and progress is not None:
                progress(len(chunk))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

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
            y, w = labels, np.ones(len(labels))
        if self.class_weight == "balanced":  # each class's label mass counts the same
            ys_ = np.asarray(y)
            mass = {c: float(w[ys_ == c].sum()) for c in set(y)}
            w = w * np.array([sum(mass.values()) / (len(mass) * mass[c]) for c in y])
        present = sorted(set(y), key=self.classes_.index)
        if len(present) < 2:
            self.head_, self.only_class_ = None, present[0]
            return
        self.head_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.head_.fit(X, y, sample_weight=w)
        self.only_class_ = None  # type: ignore[assignment]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.head_ is None:
            return self.proba_from_vectors(np.zeros((len(texts), 1), dtype=np.float32))
        return self.proba_from_vectors(self.encode(list(texts)))

    def proba_from_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` from the texts' vectors (a compute engine reads them from the shards)."""
        out = np.zeros((len(vectors), len(self.classes_)))
        if self.head_ is None:
            out[:, self.classes_.index(str(self.only_class_))] = 1.0
            return out
        proba = self.head_.predict_proba(vectors)
        for j, c in enumerate(self.head_.classes_):
            out[:, self.classes_.index(c)] = proba[:, j]
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        return self.encode(list(texts))

    def release_memory(self) -> None:
        """Forget the in-memory embeddings of this encoder (a campaign's vector cache keeps its own)."""
        _MEMORY.pop(self.embedding_key, None)
        if getattr(self, "_cache", None) is not None:
            self._stored.clear()

    def _save(self, path: Path) -> None:
        with open(path / "head.pkl", "wb") as f:
            pickle.dump({"head": self.head_, "only_class": self.only_class_}, f)

    def _load(self, path: Path) -> None:
        with open(path / "head.pkl", "rb") as f:
            state = pickle.load(f)  # noqa: S301 - a file the campaign itself wrote
        self.head_, self.only_class_ = state["head"], state["only_class"]
