"""The campaign store: one SQLite file per campaign (sqlite-utils), schema by named migrations."""

from distilloop.storage.store import Store

__all__ = ["Store"]
