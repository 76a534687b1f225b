"""The manifest of the vector shards: which columnar shard files beside the store hold which encoder's vectors.

The files themselves are written and read by :mod:`distilloop.storage.shards`; a shard belongs to the campaign
once its manifest row is committed here (a file without a row, left by a crash, is ignored and overwritten).
"""

from __future__ import annotations

from typing import Any

from distilloop.storage.base import StoreBase, now


class ManifestPart(StoreBase):
    def add_vector_shard(self, *, encoder: str, shard: str, keys_path: str, vectors_path: str, rows: int,
                         dim: int) -> None:
        """Record a shard whose files are complete (one transaction)."""
        with self.db.atomic():
            self.db.table("vector_shards").upsert(
                {"encoder": encoder, "shard": shard, "keys_path": keys_path, "vectors_path": vectors_path,
                 "rows": rows, "dim": dim, "created_at": now()}, pk=("encoder", "shard"))

    def vector_shards(self, encoder: str | None = None) -> list[dict[str, Any]]:
        """The manifest rows of ``encoder``'s shards (every encoder's without one), oldest first."""
        if encoder is None:
            return list(self.db.query("select * from vector_shards order by created_at, shard"))
        return list(self.db.query("select * from vector_shards where encoder = ? order by created_at, shard",
                                  [encoder]))
