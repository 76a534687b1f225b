"""The one embedding cache (vectors keyed by encoder and text hash) and the stop set's per-round predictions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from distilloop.storage.base import StoreBase, now

#: texts looked up per query (SQLite's default limit on bound parameters is 32766)
CHUNK = 900


class VectorsPart(StoreBase):
    # -- embeddings ------------------------------------------------------------------------------------
    def get_vectors(self, encoder: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of ``encoder`` for those of ``text_hashes`` it has (float32)."""
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(text_hashes))
        for s in range(0, len(unique), CHUNK):
            part = unique[s:s + CHUNK]
            marks = ",".join("?" * len(part))
            for r in self.db.query(f"select text_hash, vector from embeddings where encoder = ? and text_hash in "
                                   f"({marks})", [encoder, *part]):
                out[r["text_hash"]] = np.frombuffer(r["vector"], dtype=np.float32)
        return out

    def put_vectors(self, encoder: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Cache ``encoder``'s vectors by text hash (one transaction)."""
        stamp = now()
        with self.db.atomic():
            self.db.table("embeddings").upsert_all(
                ({"encoder": encoder, "text_hash": h, "vector": np.asarray(v, dtype=np.float32).tobytes(),
                  "created_at": stamp} for h, v in vectors.items()), pk=("encoder", "text_hash"))

    def vector_count(self, encoder: str | None = None) -> int:
        if encoder is None:
            return int(self._scalar("select count(*) from embeddings") or 0)
        return int(self._scalar("select count(*) from embeddings where encoder = ?", [encoder]) or 0)

    # -- stop-set predictions (stabilizing predictions) -----------------------------------------------------
    def record_stop_predictions(self, round_no: int, student: str, digest: str, predictions: Sequence[str]) -> None:
        self.db.table("stop_predictions").upsert({"round": round_no, "student": student, "stop_set": digest,
                                                  "predictions": json.dumps(list(predictions))}, pk="round")

    def stop_predictions(self, digest: str) -> list[dict[str, Any]]:
        """Every round's predictions on the stop set with this digest, in round order."""
        rows = self.db.query("select * from stop_predictions where stop_set = ? order by round", [digest])
        return [{"round": r["round"], "student": r["student"], "stop_set": r["stop_set"],
                 "predictions": json.loads(r["predictions"])} for r in rows]
