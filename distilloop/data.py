"""Reading labeled and unlabeled example files (JSONL, JSON, CSV/TSV, each optionally gzipped, and Parquet) into
:class:`Example` records.

A row carries an id, the input fields (``text``, or ``question`` and ``choices`` for multiple choice), an
optional ``split`` (pool / dev / test) and an optional gold ``label`` and human ``rationale``. Gold labels are
kept for evaluation and simulated review; they never reach a teacher unless the user asks for
ground-truth priming.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distilloop.core.answers import normalize_number
from distilloop.core.types import SPLIT_NAMES, SPLITS, Example
from distilloop.errors import DataError
from distilloop.formats import rows

#: the endings of the data files :func:`distilloop.formats.rows` reads by name, each optionally gzipped
DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".arrow")


def data_stem(name: str) -> str | None:
    """``name`` without its data file ending (``news.csv.gz`` -> ``news``); None when it has none."""
    base = name.removesuffix(".gz")
    ext = next((e for e in DATA_SUFFIXES if base.lower().endswith(e)), None)
    return base[: -len(ext)] if ext else None


@dataclass
class DataSpec:
    """Where the fields of a row are (all names configurable in the campaign's ``[data]`` table)."""

    input_fields: Sequence[str] = ("text",)
    label_field: str = "label"
    id_field: str = "id"
    split_field: str = "split"
    rationale_field: str = "rationale"
    test_fraction: float = 0.2
    dev_fraction: float = 0.0
    seed: int = 0
    limits: dict[str, int] = field(default_factory=dict)
    #: how a row without an input field is fixed, in its error: a campaign's own data file can name other fields; a
    #: file of new rows or of rows to predict must have the campaign's (:func:`for_campaign_rows`)
    fields_hint: str = "or set [data] input_fields"


def for_campaign_rows(spec: DataSpec) -> DataSpec:
    """``spec`` for a file whose rows join or are read by an existing campaign (``add``, ``predict``)."""
    import dataclasses

    return dataclasses.replace(spec, fields_hint="as the campaign's data does (its [data] input_fields)")


def first_row(path: str | Path) -> dict[str, Any] | None:
    """The first row of a data file as read (None for an empty file); the same errors as reading it all."""
    for _, row in rows(Path(path)):
        return row
    return None


def other_case(row: dict[str, Any], spec: DataSpec) -> list[tuple[str, str]]:
    """The spec's field names (``[data]`` input, label, id, split, rationale) that ``row`` lacks but holds in
    another case (``("Id", "id")``): a column found by its exact name only, so such a column would be ignored."""
    names = [*spec.input_fields, spec.label_field, spec.id_field, spec.split_field, spec.rationale_field]
    folded = {k.lower(): k for k in row}
    return [(n, folded[n.lower()]) for n in names if n not in row and n.lower() in folded]


def _input_value(where: str, name: str, value: Any) -> Any:
    """An input field's value: text; a multiple-choice field may be a list or a table of texts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        if name == "choices":  # options lettered as a table would letter them: (A) ..., (B) ...
            return {(chr(65 + i) if i < 26 else str(i + 1)): v for i, v in enumerate(value)}
        return "\n".join(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()) and value and name == "choices":
        return value
    if name == "choices" and isinstance(value, dict) and set(value) == {"label", "text"}:
        # Hugging Face's multiple-choice shape (commonsense_qa, openbookqa, ai2_arc): {"label": [...], "text": [...]}
        keys, texts = value["label"], value["text"]
        if (isinstance(keys, list) and isinstance(texts, list) and len(keys) == len(texts) and keys
                and all(isinstance(v, str) for v in [*keys, *texts])):
            return dict(zip(keys, texts))
    if isinstance(value, dict) and value:  # an API dump's {"review": {"title": ..., "body": ...}}
        parts = ", ".join(f'"{name}.{k}"' for k in list(value)[:3])
        raise DataError(f"{where}: input field '{name}' is an object ({str(value)[:60]!r}); name the parts to read "
                        f"with dotted fields, e.g. input_fields = [{parts}] (init: --fields)")
    raise DataError(f"{where}: input field '{name}' must be text, got {type(value).__name__} {str(value)[:60]!r}; "
                    "write it as a string")


_MISSING = object()


def _get(row: dict[str, Any], name: str) -> Any:
    """:func:`_field`, None where it finds nothing (the label, id, split and rationale: each may be absent)."""
    value = _field(row, name)
    return None if value is _MISSING else value


def _field(row: dict[str, Any], name: str) -> Any:
    """``row[name]``; where there is no such key, a dotted name is a path into nested objects (``review.body``
    of ``{"review": {"body": ...}}``); ``_MISSING`` where neither finds it."""
    if name in row:
        return row[name]
    value: Any = row
    for part in name.split(".") if "." in name else [name]:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


@dataclass(frozen=True)
class Row:
    """One validated row of a data file: the example (split "pool" where the row names none) and whether the
    row named its split."""

    example: Example
    split_given: bool
    lineno: int


def fold(label: str) -> str:
    """A label as compared across spellings: without surrounding spaces, case folded."""
    return label.strip().casefold()


def label_lookup(labels: Iterable[str]) -> dict[str, str]:
    """Each label's folded spelling to the label, for the spellings only one label has: a gold label written
    " Positive " or "POSITIVE" in a file is the campaign's "positive"."""
    by: dict[str, list[str]] = {}
    for label in labels:
        by.setdefault(fold(label), []).append(label)
    return {k: v[0] for k, v in by.items() if len(v) == 1}


def merge_spellings(golds: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The label set of a file's gold labels, spellings that differ only in case or surrounding spaces taken as
    one label (the most common spelling, stripped; on a tie the lower-case one); and each other spelling to it."""
    counts: dict[str, dict[str, int]] = {}
    for g in golds:
        group = counts.setdefault(fold(g), {})
        group[g.strip()] = group.get(g.strip(), 0) + 1
    labels, merged = [], {}
    for group in counts.values():
        best = max(group, key=lambda x: (group[x], x == x.lower(), x))
        labels.append(best)
        merged.update({g: best for g in group if g != best})
    return sorted(labels), merged


def read_rows(path: str | Path, spec: DataSpec | None = None, labels: Sequence[str] | None = None,
              answer: str = "label") -> Iterator[Row]:
    """Each row of ``path``, validated, one at a time (constant memory); raise :class:`DataError` naming the
    first bad row. Ids are not checked for uniqueness here; a row without an id is ``row-<line>``."""
    spec = spec or DataSpec()
    numeric = answer == "number"
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}; check the path (relative paths are resolved against "
                        "the campaign file's folder)")
    label_set = set(labels) if labels is not None and not numeric else None
    lookup = label_lookup(label_set or ())
    for lineno, row in rows(path):
        where = f"{path.name}:{lineno}"
        fields: dict[str, Any] = {}
        for name in spec.input_fields:
            value = _field(row, name)
            if value is _MISSING:
                near = next((k for k in row if k.lower() == name.lower()), None)
                raise DataError(f"{where}: row has no '{name}' (an input field)"
                                + (f" but has {near!r} (columns are found by their exact name)" if near else "")
                                + f"; every row needs {', '.join(repr(f) for f in spec.input_fields)}, "
                                f"{spec.fields_hint}")
            # one empty field of several (a ticket without a subject) is fine; an empty input is not
            empty = value is None or (isinstance(value, str) and not value.strip())
            fields[name] = "" if empty else _input_value(where, name, value)
        if not any(fields.values()):
            what = (f"'{spec.input_fields[0]}' (the input field) is" if len(spec.input_fields) == 1 else
                    f"every input field ({', '.join(repr(f) for f in spec.input_fields)}) is")
            raise DataError(f"{where}: {what} empty, and an empty input cannot be labeled: fill it in or delete "
                            "the row")
        rid = _get(row, spec.id_field)
        if isinstance(rid, bool) or not isinstance(rid, str | int | None):
            raise DataError(f"{where}: id must be a string or an integer, got {type(rid).__name__} {str(rid)[:40]!r}")
        rid = str(rid) if rid not in (None, "") else f"row-{lineno}"
        gold = _get(row, spec.label_field)
        if isinstance(gold, bool):  # a yes/no column (is_spam: true): the labels "true" and "false", as JSON spells them
            gold = "true" if gold else "false"
        if isinstance(gold, list) and len(gold) <= 1 and all(isinstance(g, str | int) and not isinstance(g, bool)
                                                             for g in gold):
            gold = gold[0] if gold else None  # a multi-label export whose rows have one label each (or none)
        if isinstance(gold, list):
            raise DataError(f"{where}: label is a list ({str(gold)[:60]}): a campaign gives each row one label, and "
                            "multi-label rows are not supported; keep one label per row (or one campaign per label, "
                            "its labels yes/no)")
        if not isinstance(gold, str | int | float | None):
            raise DataError(f"{where}: label must be a string, a number or true/false, got {type(gold).__name__}; "
                            "write it as one of those")
        gold = None if gold in (None, "") else str(gold)
        if gold is not None and numeric:
            number = normalize_number(gold)
            if number is None:
                raise DataError(f"{where}: label {gold!r} is not a number, and this campaign's answers are numbers "
                                "([campaign] answer = \"number\"); fix the row or leave its label empty")
            gold = number
        if gold is not None and label_set is not None and gold not in label_set:
            gold = lookup.get(fold(gold), gold)  # "POSITIVE" or " positive " in the file: the label "positive"
        if gold is not None and label_set is not None and gold not in label_set:
            raise DataError(f"{where}: label {gold!r} is not in the label set {sorted(label_set)}; fix the row "
                            "or add the label to [campaign] labels")
        split = _get(row, spec.split_field)
        if not isinstance(split, str | None):
            raise DataError(f"{where}: split must be one of {', '.join(SPLITS)}, got {str(split)[:40]!r}")
        if split is None or not split.strip():
            split = None
        elif split.strip().lower() in SPLIT_NAMES:
            split = SPLIT_NAMES[split.strip().lower()]
        else:
            raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)} (or train or unlabeled: "
                            "the pool, validation: the dev split); fix the row, or name the column with [data] split_field")
        rationale = _get(row, spec.rationale_field)
        if rationale is not None and not isinstance(rationale, str):
            raise DataError(f"{where}: rationale must be text, got {type(rationale).__name__}")
        yield Row(Example(rid, fields, split or "pool", gold, rationale or None),
                  split is not None, lineno)


def load_examples(path: str | Path, spec: DataSpec | None = None, labels: Sequence[str] | None = None,
                  answer: str = "label") -> list[Example]:
    """Read and validate every row of ``path``; raise :class:`DataError` naming the first bad row.

    Rows without a split are assigned to pool / dev / test by ``spec``'s fractions and seed, so the same
    file always gives the same splits. With ``answer="number"`` a gold label must be a number and is kept in
    its canonical form (``"1,800.0"`` becomes ``"1800"``), the form teachers' answers are compared in.
    """
    spec = spec or DataSpec()
    path = Path(path)
    examples: list[Example] = []
    seen: set[str] = set()
    unsplit: list[int] = []
    for row in read_rows(path, spec, labels, answer):
        rid = row.example.id
        if rid in seen:
            raise DataError(f"{path.name}:{row.lineno}: duplicate id '{rid}'; ids must be unique")
        seen.add(rid)
        if not row.split_given:
            unsplit.append(len(examples))
        examples.append(row.example)
    if not examples:
        raise DataError(f"{path}: no rows; the data file is empty")
    if unsplit:
        examples = _assign_splits(examples, unsplit, spec)
    if spec.limits:
        examples = _apply_limits(examples, spec.limits, spec.seed)
    return examples


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in chunks; of a folder (a dataset saved to disk), of its files' names
    and bytes, in order."""
    import hashlib

    h = hashlib.sha256()
    path = Path(path)
    for f in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        if f != path:
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):  # noqa: B023 (called at once)
                h.update(chunk)
    return h.hexdigest()


def check_pool(examples: Sequence[Example], path: str | Path, spec: DataSpec | None = None) -> None:
    """A campaign needs rows to label: refuse data whose rows all went to test or dev, before anything is written;
    with the campaign's ``spec``, refuse a column ``[data]`` names in another case (a hand-written campaign file's
    default ``label`` over a spreadsheet's "Label": its gold labels, splits or ids were ignored)."""
    if not any(e.split == "pool" for e in examples):
        raise DataError(f"{path}: no row is left in the pool to label ({len(examples)} rows, all in test or dev); "
                        "lower [data] test_fraction / dev_fraction, or mark rows split = \"pool\"")
    keys = {"label": "label_field", "id": "id_field", "split": "split_field", "rationale": "rationale_field"}
    for ours, theirs in other_case(first_row(path) or {}, spec) if spec is not None else ():
        key = next((v for k, v in keys.items() if getattr(spec, v) == ours), "input_fields")
        raise DataError(f"{Path(path).name}: its column {theirs!r} is not read: [data] {key} is {ours!r} (column names "
                        f"are matched exactly, case included); set {key} = \"{theirs}\" in the campaign file")


def held_out_in_pool(examples: Sequence[Example]) -> str | None:
    """A note when dev or test rows have the input of a pool row (splits the file names: the ones held out here
    never do): the student may train on the very items it is judged on."""
    pool = {e.text for e in examples if e.split == "pool"}
    seen = {s: sum(1 for e in examples if e.split == s and e.text in pool) for s in ("test", "dev")}
    if not any(seen.values()):
        return None
    said = " and ".join(f"{n} {s} row(s)" for s, n in seen.items() if n)
    return (f"{said} have the same input as a pool row: the student may be trained on items it is judged on, which "
            "flatters its accuracy; remove them from the pool (or from the split) in the file")


def _assign_splits(examples: list[Example], idx: list[int], spec: DataSpec) -> list[Example]:
    """Hold out ``test_fraction`` and ``dev_fraction`` of the rows that name no split; only rows with a gold label
    can be held out (a held-out row without gold measures nothing), every other row stays in the pool. Each gold
    label is held out in those shares (stratified: the splits hold a rare label in its share of the file, not in
    what a random draw happens to give it; with a handful of its rows, decisions swing by points). Rows with the
    same input are held out together or not at all (a test row whose input a pool row also has scores a label
    the student may have trained on: duplicated support tickets made a test split half made of pool items)."""
    named = set(idx)
    in_pool = {e.text for k, e in enumerate(examples) if k not in named and e.split == "pool"}
    groups: dict[str, list[int]] = {}
    for i in idx:
        groups.setdefault(examples[i].text, []).append(i)
    held = [g for text, g in groups.items() if text not in in_pool and all(examples[i].gold is not None for i in g)]
    by_label: dict[str, list[list[int]]] = {}
    for g in held:
        by_label.setdefault(str(examples[g[0]].gold), []).append(g)
    rng = np.random.default_rng(spec.seed)
    # each label's groups spread evenly over [0, 1) in a random order, then the whole taken in that order:
    # every label lands in each split in its share (within a group of rows with the same input), and the splits
    # have their sizes
    order: list[tuple[float, str, list[int]]] = []
    for label in sorted(by_label):
        part, offset = by_label[label], float(rng.random())
        order += [((k + offset) / len(part), label, part[j]) for k, j in enumerate(rng.permutation(len(part)))]
    order.sort(key=lambda o: (o[0], o[1]))
    n = sum(len(g) for g in held)
    n_test, n_dev = int(round(n * spec.test_fraction)), int(round(n * spec.dev_fraction))
    out, rank = list(examples), 0
    for _, _, group in order:
        split = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "pool"
        rank += len(group)
        for i in group:
            e = examples[i]
            out[i] = Example(e.id, e.fields, split, e.gold, e.gold_rationale)
    return out


def _apply_limits(examples: list[Example], limits: dict[str, int], seed: int) -> list[Example]:
    """Keep a seeded random sample of at most ``limits[split]`` rows of each split, in file order (files are
    often sorted by label or source, so the first rows would be a biased sample)."""
    rng = np.random.default_rng([seed, 7])
    keep: set[int] = set()
    for split in SPLITS:
        idx = [i for i, e in enumerate(examples) if e.split == split]
        cap = limits.get(split)
        if cap is not None and cap < len(idx):
            idx = sorted(rng.choice(idx, size=cap, replace=False).tolist())
        keep.update(idx)
    return [e for i, e in enumerate(examples) if i in keep]
