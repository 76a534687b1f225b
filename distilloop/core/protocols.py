"""The interfaces parts see of each other, as structural types: a part depends on what it uses, not on the
package that provides it (a strategy sees a student as something that predicts and embeds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorCache(Protocol):
    """Where computed embeddings are kept, by encoder and text hash (the store, or columnar shards beside it)."""

    def get_vectors(self, encoder: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_vectors(self, encoder: str, vectors: Mapping[str, np.ndarray]) -> None: ...


class StudentLike(Protocol):
    """What a selection strategy may use of the student."""

    classes_: list[str]

    def is_fitted(self) -> bool: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict(self, texts: Sequence[str]) -> list[str]: ...

    def embed(self, texts: Sequence[str]) -> Any: ...
