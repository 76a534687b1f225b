"""Export of the distilled data set with its provenance: JSON lines, CSV (for a spreadsheet: one column per
provenance field and per label's probability), a Hugging Face ``datasets`` directory (``save_to_disk``), or
Parquet.

Every row is one accepted label: the example's id and input fields, the label, rationale and soft label, and
its provenance (the source, round, guideline version and data version it was made under, the agreement, every
teacher's vote and every review). Files are written atomically: a temporary file or folder renamed when
complete.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from distilloop._extras import require
from distilloop.errors import UserInputError
from distilloop.storage.store import Store

FORMATS = ("jsonl", "csv", "hf", "parquet")

#: the format an output file's name asks for (``export -o labels.csv``), where ``--format`` is not given
SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl",
                  ".ndjson": "jsonl"}


def export_records(store: Store, *, include_gold: bool = False) -> Iterator[dict[str, Any]]:
    """Every accepted label as one record, in data order."""
    name = store.get_meta("name")
    rows = store.labeled()
    versions = store.data_version_of([r["example_id"] for r in rows])
    for row in rows:
        cons = store.consensus(row["example_id"]) or {}
        reviews = store.reviews(row["example_id"])
        record = {
            "id": row["example_id"], **row["fields"], "label": row["label"], "rationale": row["rationale"],
            "soft_label": row["soft_label"],
            "provenance": {
                "campaign": name, "source": row["source"], "round": row["round"],
                "guideline": row.get("guideline"), "data_version": versions.get(row["example_id"]),
                "agreement": cons.get("agreement"), "aggregation": cons.get("method"),
                "teachers": [{k: v.get(k) for k in ("teacher", "label", "confidence", "rationale")}
                             for v in (cons.get("votes") or [])],
                "reviews": [{k: r[k] for k in ("reviewer", "label", "rationale", "seconds_spent", "source")}
                            for r in reviews],
            },
        }
        if include_gold:
            record["gold"] = store.example(row["example_id"]).gold
        yield record


def export_jsonl(store: Store, path: str | Path, *, include_gold: bool = False) -> int:
    """Write every accepted label to ``path`` as JSON lines (atomically)."""
    return _write_file(path, "export.jsonl", lambda f: write_jsonl(store, f, include_gold=include_gold))


def write_jsonl(store: Store, handle: IO[str], *, include_gold: bool = False) -> int:
    """Every accepted label as JSON lines on ``handle``; returns how many."""
    n = 0
    for record in export_records(store, include_gold=include_gold):
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        n += 1
    return n


def _write_file(path: str | Path, example: str, write: Callable[[IO[str]], int]) -> int:
    """``write`` into ``path`` atomically (a temporary file renamed when complete, its folder made as the other
    formats and the report do); returns what ``write`` returns."""
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{path} is a folder; give the export a file name, e.g. -o {path / example}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            n = write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


#: a plain number, which a spreadsheet reads as a number, not a formula
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet would run as a formula (text from a data file or a teacher starting with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: CSV injection) gets a leading apostrophe, which the
    spreadsheet shows as text; plain numbers and everything else are left as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(record: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """One record as flat CSV cells: the provenance's fields as columns, each label's probability as ``p(label)``,
    the votes and reviews (and any structured input field) as JSON text."""
    prov = dict(record["provenance"])
    soft = record.get("soft_label") or {}
    row = {k: v for k, v in record.items() if k not in ("provenance", "soft_label")}
    cells = {k: v for k, v in prov.items() if k != "campaign"}
    cells.update({f"p({label})": soft.get(label) for label in labels})
    for key, value in cells.items():
        row[f"provenance_{key}" if key in row else key] = value  # an input field of that name keeps its own
    return {k: spreadsheet_safe(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)
            for k, v in row.items()}


def export_csv(store: Store, path: str | Path, labels: list[str], *, include_gold: bool = False) -> int:
    """Write every accepted label to ``path`` as CSV (UTF-8, a header row), atomically; ``labels``: the label set,
    in the order of the probability columns (none for numeric answers)."""
    return _write_file(path, "export.csv", lambda f: write_csv(store, f, labels, include_gold=include_gold))


def write_csv(store: Store, handle: IO[str], labels: list[str], *, include_gold: bool = False) -> int:
    """Every accepted label as CSV rows (a header first) on ``handle``; returns how many."""
    rows = [csv_row(r, labels) for r in export_records(store, include_gold=include_gold)]
    writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for r in rows for k in r)) or ["id", "label"])
    writer.writeheader()
    writer.writerows(rows)
    return len(rows)


def arrow_table(records: list[dict[str, Any]]) -> Any:
    """The records as a typed Arrow table: the soft label as a list of (label, p), the provenance a struct."""
    pa = require("pyarrow", "export", purpose="exporting as hf or parquet")
    vote = pa.struct([("teacher", pa.string()), ("label", pa.string()), ("confidence", pa.float64()),
                      ("rationale", pa.string())])
    review = pa.struct([("reviewer", pa.string()), ("label", pa.string()), ("rationale", pa.string()),
                        ("seconds_spent", pa.float64()), ("source", pa.string())])
    provenance = pa.struct([("campaign", pa.string()), ("source", pa.string()), ("round", pa.int64()),
                            ("guideline", pa.int64()), ("data_version", pa.int64()), ("agreement", pa.float64()),
                            ("aggregation", pa.string()), ("teachers", pa.list_(vote)),
                            ("reviews", pa.list_(review))])
    known = {"id": pa.string(), "label": pa.string(), "rationale": pa.string(), "gold": pa.string(),
             "soft_label": pa.list_(pa.struct([("label", pa.string()), ("p", pa.float64())])),
             "provenance": provenance}
    rows = [{**r, "soft_label": [{"label": k, "p": float(v)} for k, v in (r["soft_label"] or {}).items()]}
            for r in records]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    fields = [(c, known[c]) if c in known else (c, pa.array([r.get(c) for r in rows]).type) for c in columns]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def export_table(store: Store, path: str | Path, fmt: str, *, include_gold: bool = False,
                 labels: Sequence[str] = ()) -> int:
    """Write every accepted label to ``path`` as a Hugging Face ``datasets`` directory (``fmt="hf"``: read it back
    with ``datasets.load_from_disk(path)``) or a Parquet file (``fmt="parquet"``), atomically. Given the campaign's
    ``labels`` (a label set, not numeric answers), the dataset's ``label`` (and a complete ``gold``) column is a
    ``ClassLabel`` of them, as a ``Trainer`` for sequence classification reads it; the Parquet file keeps the names."""
    if fmt not in ("hf", "parquet"):
        raise UserInputError(f"export --format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    records = list(export_records(store, include_gold=include_gold))
    if not records:
        raise UserInputError("export: no accepted label yet; run a round first (`distilloop run`)")
    table = arrow_table(records)
    path = Path(path)
    if fmt == "parquet" and path.is_dir():
        raise UserInputError(f"{path} is a folder; give the export a file name, e.g. -o {path / 'export.parquet'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        if fmt == "parquet":
            pq = require("pyarrow.parquet", "export", purpose="exporting as parquet")
            pq.write_table(table, tmp / "data.parquet")
            os.replace(tmp / "data.parquet", path)
            tmp.rmdir()
        else:
            datasets = require("datasets", "export", purpose="exporting as a Hugging Face dataset")
            shown = datasets.is_progress_bar_enabled()
            datasets.disable_progress_bars()
            try:
                dataset = datasets.Dataset(table)
                for column in ("label", "gold") if labels else ():
                    if column in dataset.column_names and set(dataset[column]) <= set(labels):
                        dataset = dataset.cast_column(column, datasets.ClassLabel(names=list(labels)))
                dataset.save_to_disk(str(tmp / "dataset"))
            finally:
                if shown:
                    datasets.enable_progress_bars()
            _replace_dir(tmp / "dataset", path)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(records)


def _replace_dir(src: Path, dest: Path) -> None:
    """Put the folder ``src`` at ``dest``, replacing an earlier export there."""
    if dest.exists() and not dest.is_dir():
        raise UserInputError(f"export: {dest} is a file; a Hugging Face dataset is a folder: choose another -o")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / "dataset_info.json").exists():
        raise UserInputError(f"export: {dest} is a folder that holds something else than a dataset; choose a new "
                             "or empty folder for -o")
    old = dest.with_name(f".{dest.name}.old")
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(src, dest)
    shutil.rmtree(old, ignore_errors=True)
