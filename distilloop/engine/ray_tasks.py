"""What runs on a Ray worker: one batch of the pool in, arrays out. Nothing here writes anywhere: a worker gets a
copy of the student (without the campaign's cache) and a read-only view of the vector shards, and returns
what it computed to the campaign's process, which writes it (the shards, then the store).

Batches are dicts of numpy arrays (Ray Data's ``batch_format="numpy"``): ``pos`` (the item's position in the
round's unlabeled pool), ``text``, and for scoring ``jitter`` (the item's seeded tie-break, see
:mod:`distilloop.engine.base`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distilloop.core.types import text_hash
from distilloop.engine.base import shard_top
from distilloop.storage.shards import ShardReader, keys_of


def _vectors(student: Any, reader: ShardReader | None, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts' vectors from the shards where they are, and which were found; the rest encoded here."""
    hashes = [text_hash(t) for t in texts]
    found = np.zeros(len(texts), dtype=bool)
    vecs = None
    if reader is not None and reader.shards:
        found, vecs = reader.lookup(keys_of(hashes))
    missing = np.flatnonzero(~found)
    if missing.size:
        fresh = student.encode_uncached([texts[i] for i in missing])
        if vecs is None:
            vecs = np.zeros((len(texts), fresh.shape[1]), dtype=np.float32)
        vecs[missing] = fresh
    if vecs is None:  # no text at all
        vecs = np.zeros((0, 0), dtype=np.float32)
    return found, vecs


class EmbedBatch:
    """Embeds the texts of a batch that the shards do not hold yet; returns their hashes and vectors."""

    def __init__(self, student: Any, reader: ShardReader | None) -> None:
        self.student = student
        self.reader = reader

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        unique = list(dict.fromkeys(texts))
        found, vecs = _vectors(self.student, self.reader, unique)
        new = np.flatnonzero(~found)
        dim = vecs.shape[1] if vecs.ndim == 2 and vecs.shape[1] else 1
        return {"hash": np.array([text_hash(unique[i]) for i in new], dtype=object),
                "vector": vecs[new] if new.size else np.zeros((0, dim), dtype=np.float32)}


class ScoreBatch:
    """The student's probabilities over a batch; with ``n``, only the batch's first ``n`` by ``score_fn`` of
    them (score descending, then jitter) as candidates for the merge, else every row's probabilities."""

    def __init__(self, student: Any, reader: ShardReader | None,
                 score_fn: Callable[[np.ndarray], np.ndarray] | None, n: int | None) -> None:
        self.student = student
        self.reader = reader
        self.score_fn = score_fn
        self.n = n

    def proba(self, texts: list[str]) -> np.ndarray:
        if self.reader is not None:  # a frozen encoder: the vectors are in the shards
            _, vecs = _vectors(self.student, self.reader, texts)
            return np.asarray(self.student.proba_from_vectors(vecs), dtype=np.float64)
        return np.asarray(self.student.predict_proba(texts), dtype=np.float64)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pos = np.asarray(batch["pos"], dtype=np.int64)
        proba = self.proba([str(t) for t in batch["text"]])
        if self.n is None or self.score_fn is None:
            return {"pos": pos, "proba": proba}
        scores = np.asarray(self.score_fn(proba), dtype=np.float64)
        jitter = np.asarray(batch["jitter"], dtype=np.int64)
        idx = shard_top(scores, jitter, self.n)
        return {"pos": pos[idx], "score": scores[idx], "jitter": jitter[idx]}
