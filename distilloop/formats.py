"""The file formats a data file may come in, read as numbered rows of dicts: JSON Lines, one JSON array of
objects, CSV (comma or semicolon) and TSV, each optionally gzipped, and Parquet. What a row must hold is
:mod:`distilloop.data`'s to check."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from distilloop.core.types import SPLIT_NAMES
from distilloop.errors import DataError
from distilloop.ls_export import task_row, task_rows

#: the largest CSV field read (Python's csv module stops at 128 KiB by default)
CSV_FIELD_LIMIT = 2**31 - 1


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig: a byte-order mark (Excel's default for CSV) is not part of the first column's name
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


#: rows read from a Parquet file at a time (it is streamed: memory stays flat however long the file)
PARQUET_BATCH = 4096


def _parquet_rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """A Parquet file's rows (what `datasets` and pandas write), numbered from 1, as Python values: a struct
    column a dict, a list column a list, as JSON would give them."""
    from distilloop._extras import require

    pq = require("pyarrow.parquet", "export", purpose="reading Parquet data files")
    try:
        handle = pq.ParquetFile(path)
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}; check the path (relative paths are resolved against the "
                        "campaign file's folder)") from None
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid: not Parquet) share no base with OSError
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    names = _class_label_names(handle.schema_arrow.metadata)
    n = 0
    for batch in handle.iter_batches(batch_size=PARQUET_BATCH):
        for row in batch.to_pylist():
            n += 1
            yield n, _with_names(row, names)


def _with_names(row: dict[str, Any], names: dict[str, list[str]]) -> dict[str, Any]:
    """``row`` with each ClassLabel column's code read as its name (-1: the hub's "no label", a test split)."""
    for column, labels in names.items():
        code = row.get(column)
        if isinstance(code, int) and not isinstance(code, bool):
            row[column] = labels[code] if 0 <= code < len(labels) else None
    return row


def _arrow_rows(path: Path, split: str | None = None, start: int = 0) -> Iterable[tuple[int, dict[str, Any]]]:
    """An Arrow file's rows (a `datasets` ``save_to_disk`` shard: the IPC stream format; or the file format),
    numbered on from ``start``; ``split``: the split they are in (a ``DatasetDict``'s), where a row names none."""
    from distilloop._extras import require

    pa = require("pyarrow", "export", purpose="reading Arrow data files (a Hugging Face dataset saved to disk)")
    n = start
    try:
        with open(path, "rb") as handle:
            try:
                reader = pa.ipc.open_stream(handle)
                batches = iter(reader)
            except pa.ArrowInvalid:
                handle.seek(0)
                reader = pa.ipc.open_file(handle)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            names = _class_label_names(reader.schema.metadata)
            for batch in batches:  # a batch at a time: a shard of millions of rows is not held as dicts at once
                for row in batch.to_pylist():
                    n += 1
                    if split is not None and row.get("split") is None:
                        row["split"] = split
                    yield n, _with_names(row, names)
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}; check the path") from None
    except DataError:
        raise
    except Exception as exc:  # pyarrow's own errors share no base with OSError
        raise DataError(f"{path}: not a readable Arrow file ({exc})") from None


def _dataset_folder_rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """A Hugging Face dataset saved with ``save_to_disk``: a ``Dataset`` folder (``state.json`` naming its Arrow
    shards) or a ``DatasetDict`` one (``dataset_dict.json`` naming its splits, each such a folder, whose rows
    take the split's name: train the pool, validation dev, test test). Rows numbered across the shards."""
    def shards(folder: Path) -> list[Path]:
        try:
            state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
            return [folder / f["filename"] for f in state["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            names = ", ".join(sorted(f.name for f in folder.iterdir() if f.is_file())[:3]) or "it holds none"
            raise DataError(f"{folder}: a folder, not a Hugging Face dataset saved to disk (its state.json: {exc}); "
                            f"name a data file ({names}), and add the others with `distilloop add`") from None

    parts: list[tuple[Path, str | None]]
    if (path / "dataset_dict.json").is_file():
        try:
            splits = [str(x) for x in json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}/dataset_dict.json: cannot be read ({exc})") from None
        parts = [(shard, split) for split in splits for shard in shards(path / split)]
    else:
        parts = [(shard, None) for shard in shards(path)]
    done = 0
    for shard, split in parts:
        for n, row in _arrow_rows(shard, split, done):
            yield n, row
            done = n


def _class_label_names(metadata: dict[bytes, bytes] | None) -> dict[str, list[str]]:
    """The class names of each ``ClassLabel`` column that `datasets` recorded in a Parquet file's metadata (a
    hub export's ``label`` holds codes 0, 1...: its rows are read with the names, as the hub shows them)."""
    try:
        features = json.loads((metadata or {}).get(b"huggingface", b"{}"))["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return {}
    if not isinstance(features, dict):
        return {}
    return {column: [str(x) for x in f["names"]] for column, f in features.items()
            if isinstance(f, dict) and f.get("_type") == "ClassLabel" and isinstance(f.get("names"), list)
            and f["names"]}


def rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """A data file's rows as dicts, each with its line number (a Parquet file's: its row number), by the file's
    extension; a malformed file is a :class:`DataError` naming the line."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        yield from _parquet_rows(path)
        return
    if name.endswith(".arrow"):
        yield from _arrow_rows(path)
        return
    if path.is_dir():
        yield from _dataset_folder_rows(path)
        return
    try:
        with _open_text(path) as handle:
            if name.endswith((".json", ".json.gz")) and _starts_with(handle, "["):
                yield from task_rows(_json_array_rows(path, handle.read()))
            elif name.endswith((".json", ".json.gz")) and (frame := _one_object_rows(handle, str(path))) is not None:
                yield from enumerate(frame, 1)
            elif name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz", ".ndjson.gz")):
                for lineno, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line, parse_constant=_no_constant)
                    except ValueError as exc:
                        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                        raise DataError(
                            f"{path}:{lineno}: not valid JSON ({msg}); each line must be one JSON object"
                        ) from None
                    except RecursionError:
                        raise DataError(f"{path}:{lineno}: a JSON value nested too deeply") from None
                    if not isinstance(row, dict):
                        raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                    yield lineno, task_row(row)
            elif name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
                tsv = ".tsv" in name
                yield from _csv_rows(path, handle, "\t" if tsv else _csv_delimiter(handle),
                                     _tsv_quoting(path) if tsv else csv.QUOTE_MINIMAL)
            else:
                sheet = (" (a spreadsheet: save it as 'CSV UTF-8', Excel's File > Save As, or LibreOffice's CSV with "
                         "UTF-8)" if name.endswith((".xlsx", ".xls", ".ods", ".numbers")) else "")
                raise DataError(
                    f"{path}: unknown data format; use .jsonl, .json (JSON Lines or one array of objects), .csv or "
                    f".tsv, each optionally .gz, .parquet, .arrow or a Hugging Face dataset's folder (got '{path.suffix}'){sheet}"
                )
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"data file not found: {path}; check the path (relative paths are resolved "
                            "against the campaign file's folder)") from None
        if isinstance(exc, UnicodeDecodeError) and (bad_line := _first_non_utf8_line(path)) is not None:
            name = path.name
            convert = (f"zcat {name} | iconv -f cp1252 -t utf-8 | gzip > utf8-{name}" if path.suffix == ".gz" else
                       f"iconv -f cp1252 -t utf-8 {name} > utf8-{name}")
            raise DataError(f"{path}:{bad_line}: not UTF-8 (byte {exc.object[exc.start]:#04x} there is not valid "
                            "UTF-8; a spreadsheet's plain 'CSV' is often Windows-1252): save the file as "
                            f"UTF-8 (Excel: 'CSV UTF-8'), or convert it: {convert}") from None
        raise DataError(f"{path}: cannot be read ({exc}); is it a UTF-8 text or gzip file?") from None


def _first_non_utf8_line(path: Path) -> int | None:
    """The number of the first line of a file (gzipped or not) that is not UTF-8, or None."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as raw:
            for n, line in enumerate(raw, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return n
    except (OSError, EOFError, zlib.error):
        return None
    return None


def _starts_with(handle: Any, char: str) -> bool:
    """Whether the text's first non-blank character is ``char``; the handle is left at its start."""
    while True:
        c = handle.read(1)
        if not c or not c.isspace():
            handle.seek(0)
            return c == char


NEWLINE = "\n"


def _csv_delimiter(handle: Any) -> str:
    """A CSV file's delimiter: a comma, or a semicolon where the header has semicolons and no comma (what
    spreadsheets write where the comma is the decimal mark); the handle is left at its start."""
    header = handle.readline()
    handle.seek(0)
    return ";" if ";" in header and "," not in header else ","


def _one_object_rows(handle: Any, name: str) -> list[dict[str, Any]] | None:
    """The rows of a file holding one JSON object: a ``pandas.DataFrame.to_json`` shape but records (``columns``,
    its default: ``{"text": {"0": ...}}``; ``index``, ``split``, ``table``), or the rows in a list under one key
    (``{"data": [...]}``) or one per split (``{"train": [...]}``); else None (JSON Lines, the handle at its start)."""
    first = handle.readline()
    more = handle.read(1 << 16)
    handle.seek(0)
    if not first.lstrip().startswith("{"):
        return None
    try:
        obj = json.loads(first)
        if more.strip():
            return None  # one object a line
    except ValueError:
        try:  # an object over several lines (to_json(indent=2))
            obj = json.loads(handle.read())
        except (ValueError, RecursionError):
            return None
        finally:
            handle.seek(0)
    if not isinstance(obj, dict):
        return None
    if set(obj) in ({"columns", "index", "data"}, {"columns", "data"}) and isinstance(obj["data"], list):
        return [dict(zip(obj["columns"], values)) for values in obj["data"] if isinstance(values, list)]
    if set(obj) == {"schema", "data"} and isinstance(obj["data"], list):
        return [{k: v for k, v in r.items() if k != "index"} if isinstance(r, dict) else r for r in obj["data"]]
    lists = {k: v for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)}
    lists = {} if {"id", "text"} & set(obj) else lists  # an object with an id or a text is a row, whatever it holds
    if len(lists) == 1:
        return list(next(iter(lists.values())))
    if lists and all(k.strip().lower() in SPLIT_NAMES for k in lists):
        return [{"split": k, **r} if "split" not in r else r for k, v in lists.items() for r in v]
    if lists:
        raise DataError(f"{name}: one JSON object holding lists of rows under {', '.join(lists)}, not split names (train, "
                        "validation, test...): write the rows as one JSON array, or JSON Lines")
    inner = [set(v) for v in obj.values() if isinstance(v, dict)]
    if len(obj) < 2 or len(inner) != len(obj) or any(keys != inner[0] for keys in inner):
        return None
    # columns: {column: {row: value}}, index: {row: {column: value}}; the rows are the numbered side (pandas'
    # default index), else the longer one
    numbered_inner, numbered_outer = (all(str(k).isdigit() for k in keys) for keys in (inner[0], obj))
    if numbered_outer and not numbered_inner or (numbered_outer == numbered_inner and len(obj) > len(inner[0])):
        index, frame = list(obj), [dict(v) for v in obj.values()]
    else:
        index = list(obj[next(iter(obj))])
        frame = [{column: obj[column][i] for column in obj} for i in index]
    if index != [str(i) for i in range(len(index))] and not any("id" in row for row in frame):
        frame = [{"id": key, **row} for key, row in zip(index, frame)]  # an index of one's own: the rows' ids
    return frame


def _json_array_rows(path: Path, text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    """The objects of a file holding one JSON array (``pandas.to_json(orient="records")``, a Label Studio or
    spreadsheet export), each with the line it starts on; in an array written on one line (pandas'), each with
    its place in it (every row was on line 1: rows without ids were all ``row-1``, a duplicate id)."""
    decoder = json.JSONDecoder(parse_constant=_no_constant)
    one_line, ordinal = NEWLINE not in text.strip(), 0
    pos, line = text.index("[") + 1, 1 + text.count(NEWLINE, 0, text.index("["))

    def skip(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    def bad(at: int, msg: str) -> DataError:
        return DataError(f"{path}:{line + text.count(NEWLINE, start, at)}: {msg}")

    start = pos
    pos = skip(pos)
    if text[pos:pos + 1] == "]":
        return
    while True:
        line += text.count(NEWLINE, start, pos)
        start = pos
        try:
            row, end = decoder.raw_decode(text, pos)
        except ValueError as exc:
            at = exc.pos if isinstance(exc, json.JSONDecodeError) else pos
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise bad(at, f"not valid JSON ({msg}); the file must be one JSON array of objects") from None
        except RecursionError:
            raise bad(pos, "a JSON value nested too deeply") from None
        if not isinstance(row, dict):
            raise bad(pos, f"expected a JSON object in the array, got {type(row).__name__}")
        ordinal += 1
        yield ordinal if one_line else line, row
        pos = skip(end)
        if text[pos:pos + 1] == ",":
            pos = skip(pos + 1)
            continue
        if text[pos:pos + 1] == "]" and not text[skip(pos + 1):].strip():
            return
        raise bad(pos, "expected ',' or the array's closing ']' after an object; the file must be one JSON array "
                       "of objects")


def _tsv_quoting(path: Path) -> Literal[0, 3]:
    """How a TSV file quotes: as CSV does (pandas, spreadsheets: a cell holding a tab, a line break or a quote is
    quoted, its quotes doubled) where the whole file reads so, else not at all (GLUE's and many tools' TSV: a
    quote is text, as in ``"Wow" he said``, which read as CSV loses its quotes or swallows the rows after it).
    Found once per version of the file (``init`` and a campaign read it more than once)."""
    stat = path.stat()
    return _tsv_quoting_of(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _tsv_quoting_of(path: Path, size: int, mtime_ns: int) -> Literal[0, 3]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with _open_text(path) as handle:
        try:
            for _ in csv.reader(handle, delimiter="\t", strict=True):
                pass
        except csv.Error:
            return csv.QUOTE_NONE
    return csv.QUOTE_MINIMAL


def _csv_rows(path: Path, handle: Any, delimiter: str,
              quoting: Literal[0, 3] = csv.QUOTE_MINIMAL) -> Iterable[tuple[int, dict[str, Any]]]:
    """CSV rows as dicts; a row with more or fewer cells than the header is an error, never silently cut, and so
    is a stray quote (one that closes before its cell ends or never closes: read leniently, it drops the quotes
    or takes the rows after it into one cell)."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    # "id, text, label": the space after a delimiter is not part of a cell (nor of a quoted one's opening)
    reader = csv.reader(handle, delimiter=delimiter, skipinitialspace=True, strict=True, quoting=quoting)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        named = [name for name in header if name]
        if len(set(named)) != len(named):
            raise DataError(f"{path}:1: the header names a column twice ({header}); give each column its own name")
        # a spreadsheet's trailing columns without a name ("id,text,label,,"): left out while their cells are empty
        unnamed = [i for i, name in enumerate(header) if not name]
        while True:
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                break
            lineno = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                where = f"{start}" if lineno == start else f"{start}-{lineno} (one row: a quoted cell spans the lines)"
                raise DataError(f"{path}:{where}: {len(row)} cells where the header has {len(header)}; quote cells "
                                "that hold the delimiter, or fix the row")
            if unnamed and unnamed[0] == 0 and row[0].strip().lstrip("-").isdigit():
                unnamed = unnamed[1:]  # pandas' to_csv writes its index first, unnamed (0, 1, 2...): not read
            full = [i for i in unnamed if row[i].strip()]
            if full:
                raise DataError(f"{path}:{lineno}: column {full[0] + 1} has a value ({row[full[0]][:40]!r}) but no "
                                "name in the header; name the column, or delete it")
            yield lineno, {name: cell for name, cell in zip(header, row, strict=True) if name}
    except csv.Error as exc:
        if "end of data" not in str(exc) and "expected after" not in str(exc):  # not a quote's: a NUL byte...
            raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
        where = "never closes" if "end of data" in str(exc) else (
            "closes before the cell ends" if reader.line_num == start else
            f"runs to line {reader.line_num} and closes before the cell ends")
        raise DataError(f"{path}:{start}: a quote opens a cell there and {where} ({exc}); a quote inside a cell is "
                        'written twice, in a quoted cell ("""Wow"" he said"), or delete the stray quote') from None
