"""A cheap, deterministic frozen-encoder student for scale tests and benchmarks: the embedding student's caches,
head and engine paths, with feature hashing (Weinberger et al., "Feature Hashing for Large Scale Multitask
Learning", ICML 2009) of words instead of a transformer, so a million texts embed in seconds
rather than hours. Not a model to distil into: a stand-in with the same shapes and the same code around it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from distilloop.students.embedding import EmbeddingLinear


class HashingEncoderStudent(EmbeddingLinear):
    """:class:`~distilloop.students.embedding.EmbeddingLinear` whose encoder is a ``dim``-wide hashing trick."""

    kind = "hashing_linear"

    def __init__(self, dim: int = 384, C: float = 1.0, normalize: bool = True, seed: int = 0) -> None:
        super().__init__(model=f"hashing-{dim}", C=C, normalize=normalize, seed=seed)
        self.dim = dim

    def get_params(self) -> dict[str, object]:
        return {"dim": self.dim, "C": self.C, "normalize": self.normalize, "seed": self.seed}

    def _check_params(self) -> None:
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2, got {self.dim}")

    def encode_uncached(self, texts: Sequence[str], progress: Callable[[int], None] | None = None, *,
                        stepped: bool = False) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        hv = HashingVectorizer(n_features=self.dim, alternate_sign=True,
                               norm="l2" if self.normalize else None)
        out = np.asarray(hv.transform(list(texts)).toarray(), dtype=np.float32)
        if progress is not None:
            progress(len(texts))
        return out
