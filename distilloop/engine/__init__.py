"""Compute engines: where a round's pool-sized work (embedding the pool, scoring it with the student) runs.

``[compute] engine = "local"`` (the default, :class:`~distilloop.engine.base.Engine`): in the campaign's process;
nothing of Ray is imported. ``engine = "ray"`` (:class:`~distilloop.engine.ray_engine.RayEngine`, the ``ray``
extra): as Ray Data ``map_batches`` on a cluster. Both keep the pool's vectors in the columnar shards beside the
store (:mod:`distilloop.storage.shards`), and with both the campaign's process alone writes the store.
"""

from __future__ import annotations

from typing import Any

from distilloop.engine.base import Engine
from distilloop.storage.shards import VectorShards

__all__ = ["Engine", "build_engine"]


def build_engine(kind: str, vectors: VectorShards, **options: Any) -> Engine:
    """The engine named ``kind`` ("local" or "ray"); ``options`` are the Ray engine's (address, batch_rows,
    workers, gpus_per_worker). Nothing connects until the engine is first used."""
    if kind == "ray":
        from distilloop.engine.ray_engine import RayEngine  # the only path that imports Ray, and only on use

        return RayEngine(vectors, **options)
    return Engine(vectors)
