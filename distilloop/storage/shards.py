"""Vectors out of SQLite: columnar shards beside the store, keyed by encoder and text hash.

A shard is two ``.npy`` files in ``<root>/<encoder digest>/``: the sorted text hashes (32 raw bytes each) and the
float32 vectors in the same order, read as numpy memmaps (so a shard costs page cache, not process memory, and
any process that sees the folder can read it: the campaign, or the workers of a compute engine). A shard is
written to temporary names, renamed when complete, and only then recorded in the store's manifest
(:class:`~distilloop.storage.manifest.ManifestPart`): the store stays the single record of what exists, and a
crash between the two leaves an unrecorded file that is ignored and overwritten.

:class:`VectorShards` is the campaign's :class:`~distilloop.core.protocols.VectorCache`: a bulk write (at least
``min_shard_vectors`` vectors, e.g. a pool embedded at once) becomes a shard, a small one (a round's labeled
items) a row of the store's embeddings table; reads look in the shards first. :class:`ShardReader` is the
read-only, picklable view a worker gets: it has the file paths, never the store.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilloop.errors import StoreError

#: a sha256 digest as numpy fixed-width bytes
KEY = np.dtype("S32")


def encoder_dir(encoder: str) -> str:
    """The folder name of an encoder's shards (encoder names hold '/' and '|')."""
    return hashlib.sha256(encoder.encode()).hexdigest()[:16]


def keys_of(text_hashes: Sequence[str]) -> np.ndarray:
    """Hex text hashes as an array of 32-byte keys."""
    return np.array([bytes.fromhex(h) for h in text_hashes], dtype=KEY)


@dataclass(frozen=True)
class ShardFile:
    """One shard's files (absolute paths) and shape."""

    shard: str
    keys_path: str
    vectors_path: str
    rows: int
    dim: int


class ShardReader:
    """The shards of one encoder, read-only (what a worker of a compute engine is given: paths, never the store).

    Lookups try the shard that answered last first, so a batch of the pool (embedded together, so kept
    together) is found in one shard rather than by searching all of them."""

    def __init__(self, encoder: str, shards: Sequence[ShardFile]) -> None:
        self.encoder = encoder
        self.shards = list(shards)
        self._open: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._order = list(range(len(self.shards)))[::-1]  # newest first, then most recently useful first

    def __getstate__(self) -> dict[str, Any]:
        return {"encoder": self.encoder, "shards": self.shards}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["encoder"], state["shards"])  # type: ignore[misc]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def add(self, shard: ShardFile) -> None:
        self.shards.append(shard)
        self._order.insert(0, len(self.shards) - 1)

    def _files(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._open:
            s = self.shards[i]
            try:
                self._open[i] = (np.load(s.keys_path, mmap_mode="r"), np.load(s.vectors_path, mmap_mode="r"))
            except (OSError, ValueError) as exc:
                raise StoreError(f"vector shard {s.shard} of the campaign's manifest cannot be read ({exc}); the "
                                 "shard folder must be beside the store and, on a cluster, on a file system every "
                                 "node mounts at the same path ([compute] vectors_dir)") from None
        return self._open[i]

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """For 32-byte ``keys``: which were found, and their vectors (rows of the missing ones are zeros)."""
        found = np.zeros(len(keys), dtype=bool)
        out: np.ndarray | None = None
        todo = np.arange(len(keys))
        for i in list(self._order):
            if not todo.size:
                break
            k, v = self._files(i)
            pos = np.searchsorted(k, keys[todo])
            inside = pos < len(k)
            hit = np.zeros(len(todo), dtype=bool)
            hit[inside] = k[pos[inside]] == keys[todo][inside]
            if not hit.any():
                continue
            if out is None:
                out = np.zeros((len(keys), v.shape[1]), dtype=np.float32)
            rows = pos[hit]
            order = np.argsort(rows, kind="stable")  # read the memmap front to back
            out[todo[hit][order]] = v[rows[order]]
            found[todo[hit]] = True
            todo = todo[~hit]
            self._order.remove(i)
            self._order.insert(0, i)
        return found, out

    def get_vectors(self, encoder: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        if encoder != self.encoder or not self.shards or not text_hashes:
            return {}
        unique = list(dict.fromkeys(text_hashes))
        found, vecs = self.lookup(keys_of(unique))
        return {h: vecs[i] for i, h in enumerate(unique) if found[i]} if vecs is not None else {}

    def put_vectors(self, encoder: str, vectors: Mapping[str, np.ndarray]) -> None:
        raise StoreError("a shard reader is read-only: workers never write the store or its shards; return the "
                         "vectors to the campaign, which writes them")


def write_shard_files(folder: Path, vectors: Mapping[str, np.ndarray]) -> ShardFile:
    """Write one shard (sorted by key) to ``folder``; files complete before they get their final names."""
    hashes = list(vectors)
    keys = keys_of(hashes)
    mat = np.stack([np.asarray(vectors[h], dtype=np.float32) for h in hashes])
    order = np.argsort(keys, kind="stable")
    keys, mat = keys[order], mat[order]
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    keys, mat = keys[keep], mat[keep]
    shard = hashlib.sha256(keys.tobytes() + str(mat.shape[1]).encode()).hexdigest()[:20]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, arr in ((".keys.npy", keys), (".vectors.npy", mat)):
        final = folder / f"{shard}{suffix}"
        tmp = folder / f".{shard}{suffix}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, final)
        paths.append(str(final))
    return ShardFile(shard, paths[0], paths[1], len(keys), int(mat.shape[1]))


class VectorShards:
    """The campaign's vector cache: bulk writes as shards beside the store (recorded in its manifest), small
    ones in the store's embeddings table; reads from both. Written only by the campaign's own process."""

    def __init__(self, store: Any, root: str | Path, *, min_shard_vectors: int = 1000) -> None:
        self.store = store
        self.root = Path(root)
        self.min_shard_vectors = min_shard_vectors
        self._readers: dict[str, ShardReader] = {}

    def reader(self, encoder: str) -> ShardReader:
        """The shards of ``encoder`` in the manifest (what a worker is given)."""
        if encoder not in self._readers:
            rows = self.store.vector_shards(encoder)
            self._readers[encoder] = ShardReader(encoder, [self._file(r) for r in rows])
        return self._readers[encoder]

    def _file(self, row: Mapping[str, Any]) -> ShardFile:
        return ShardFile(row["shard"], str(self.root / row["keys_path"]), str(self.root / row["vectors_path"]),
                         int(row["rows"]), int(row["dim"]))

    def shard_rows(self, encoder: str) -> int:
        """How many vectors of ``encoder`` the shards hold."""
        return self.reader(encoder).rows

    def write_shard(self, encoder: str, vectors: Mapping[str, np.ndarray]) -> ShardFile | None:
        """Write ``vectors`` as one shard and record it in the manifest; None when there is nothing to write."""
        if not vectors:
            return None
        sub = encoder_dir(encoder)
        f = write_shard_files(self.root / sub, vectors)
        self.store.add_vector_shard(encoder=encoder, shard=f.shard, keys_path=f"{sub}/{Path(f.keys_path).name}",
                                    vectors_path=f"{sub}/{Path(f.vectors_path).name}", rows=f.rows, dim=f.dim)
        self.reader(encoder).add(f)
        return f

    # -- the VectorCache protocol -------------------------------------------------------------------
    def get_vectors(self, encoder: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out = self.reader(encoder).get_vectors(encoder, text_hashes)
        rest = [h for h in text_hashes if h not in out]
        if rest:
            out.update(self.store.get_vectors(encoder, rest))
        return out

    def put_vectors(self, encoder: str, vectors: Mapping[str, np.ndarray]) -> None:
        if len(vectors) >= self.min_shard_vectors:
            self.write_shard(encoder, vectors)
        elif vectors:
            self.store.put_vectors(encoder, vectors)
