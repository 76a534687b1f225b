"""Export of the distilled data set: one JSON object a line, with labels, rationales and provenance."""

from __future__ import annotations

import json
import os
from pathlib import Path

from distilloop.errors import UserInputError
from distilloop.storage.store import Store


def export_jsonl(store: Store, path: str | Path, *, include_gold: bool = False) -> int:
    """Write every accepted label to ``path`` (atomically: a temporary file renamed when complete)."""
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{path} is a folder; give the export a file name, e.g. -o {path / 'export.jsonl'}")
    tmp = path.with_name(f".{path.name}.tmp")
    name = store.get_meta("name")
    n = 0
    try:
        n = _write(store, tmp, name, include_gold)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _write(store: Store, tmp: Path, name: str, include_gold: bool) -> int:
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for row in store.labeled():
            cons = store.consensus(row["example_id"]) or {}
            reviews = store.reviews(row["example_id"])
            record = {
                "id": row["example_id"], **row["fields"], "label": row["label"], "rationale": row["rationale"],
                "soft_label": row["soft_label"],
                "provenance": {
                    "campaign": name, "source": row["source"], "round": row["round"],
                    "agreement": cons.get("agreement"), "aggregation": cons.get("method"),
                    "teachers": [{k: v.get(k) for k in ("teacher", "label", "confidence", "rationale")}
                                 for v in (cons.get("votes") or [])],
                    "reviews": [{k: r[k] for k in ("reviewer", "label", "rationale", "seconds_spent", "source")}
                                for r in reviews],
                },
            }
            if include_gold:
                record["gold"] = store.example(row["example_id"]).gold
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n
