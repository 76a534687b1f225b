"""The columns of a data file that `distilloop init` reads off its first rows: the input fields, the gold label's
column and the id column, and the hints it gives where it cannot tell."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from distilloop.errors import UserInputError

#: columns of a data file that are never input fields (the defaults of [data]'s field names)
NOT_INPUT = frozenset({"id", "label", "split", "rationale",
                       "soft_label", "provenance"})  # (the last two: a distilloop export's, `distilloop export`)
#: column names that usually hold a gold label under another name: never guessed to be an input (a label shown to
#: the teachers would leak the answer)
LABEL_LIKE = frozenset({"labels", "target", "targets", "class", "category", "gold", "answer", "sentiment", "y",
                        "label_text", "label_id", "gold_label", "answerkey", "answer_key", "intent", "emotion",
                        "polarity"})


#: column names that name a row (besides ``id`` and names ending in ``_id``/``Id``)
ID_NAMES = frozenset({"uuid", "guid", "uid", "key", "idx", "_id", "identifier", "row_id", "example_id"})

#: column names that are inputs wherever they appear together (multiple choice, sentence pairs, a titled text)
INPUT_NAMES = frozenset({"question", "choices", "options", "premise", "hypothesis", "sentence", "sentence1", "sentence2",
                         "context", "passage", "title", "body", "review", "content", "headline", "document", "query",
                         "text_a", "text_b", "description", "summary"})


def id_column(row: dict[str, Any]) -> str:
    """The column that names a row: ``id``, else the one column named like an id (``ticket_id``, ``uuid``,
    ``docId``...), else ``id`` (absent: rows are known by their line)."""
    if "id" in row:
        return "id"
    like = [k for k, v in row.items() if k.lower() not in LABEL_LIKE and isinstance(v, str | int)
            and not isinstance(v, bool)
            and (k.lower() in ID_NAMES or k.lower().endswith(("_id", "-id", " id")) or k.endswith("Id")
                 or k.endswith("ID"))]
    return like[0] if len(like) == 1 else "id"


def _is_code(value: object) -> bool:
    """Whether a label value is a class code (``0``, ``"1"``) rather than a name."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit())


def infer_columns(data: Path, fields_arg: str | None, label_arg: str | None = None) -> tuple[list[str], str, str]:
    """The input fields, the gold label's column and the id column ``init`` writes. Input fields: ``--fields``, else
    ``text`` where the first row has one, else the one other column of the first row that is not an id, label,
    split or rationale, nor named like a label (a CSV's ``headline``), or several that are inputs by name (a
    multiple-choice file's ``question`` and ``choices``); any other mix is the user's to choose (a column may hold
    the answer). The label: ``label``, else the one column named like a label (``sentiment``, ``target``...). The
    id: :func:`id_column`. Each said on the way, so that the user sees the choice."""
    from distilloop.data import first_row

    row = first_row(data) or {}
    named = {k.lower(): k for k in row}  # a spreadsheet's "Text" and "Label" are the text and the label
    like = [k for k in row if k.lower() in LABEL_LIKE]
    label_field = label_arg or ("label" if "label" in row else named.get("label") or
                                (like[0] if len(like) == 1 else "label"))
    if label_arg and row and label_arg not in row:
        raise UserInputError(f"--label-field {label_arg}: {data} has no such column (columns: {', '.join(row)})")
    names = next((k for k in row if k.lower() in ("label_text", "label_name")), None)
    if not label_arg and names and _is_code(row.get(label_field)) and isinstance(row[names], str) and row[names]:
        # a hub export's label 0/1 beside its names (SetFit's label_text): the teachers are asked for the names
        print(f"gold labels: column {names!r} (the names of the codes in {label_field!r})")
        label_field = names
    elif label_field != "label" and not label_arg:
        print(f"gold labels: column {label_field!r} (the file has no 'label' column)")
    if label_field == "label" and isinstance(row.get("provenance"), dict) and "soft_label" in row:
        print("note: this is a distilloop export: its 'label' column holds that campaign's accepted labels (the "
              "teachers' votes and reviews), read here as gold: the new campaign's accuracy is then agreement with "
              "them (to label more on top of them, go on with that campaign: `distilloop add` new rows to it)")
    id_field = id_column(row)
    if fields_arg is not None:
        return [f.strip() for f in fields_arg.split(",") if f.strip()], label_field, id_field
    if not row or "text" in row:
        return ["text"], label_field, id_field
    if "text" in named:
        print(f"input fields: {named['text']} (the first row's columns; --fields to choose others)")
        return [named["text"]], label_field, id_field
    fields = [k for k, v in row.items() if k.lower() not in NOT_INPUT and k not in (id_field, label_field)
              and k.lower() not in LABEL_LIKE and isinstance(v, str | list | dict)]
    if not fields:
        raise UserInputError(f"{data}: the first row has no 'text' column nor another input column (columns: "
                             f"{', '.join(row) or 'none'}); pass --fields with the column(s) the teachers should read")
    if len(fields) > 1 and not set(fields) <= INPUT_NAMES:
        # an extra column may hold the answer (a worked equation, an explanation) and would leak it to the teachers
        hint = label_column_hint(data, fields) if label_field not in row else ""
        raise UserInputError(f"{data}: no 'text' column, and several that could be inputs ({', '.join(fields)}); pass "
                             "--fields with the ones the teachers should read (never one that holds the answer)"
                             + hint)
    left = [k for k in row if k not in fields and k.lower() not in NOT_INPUT and k not in (label_field, id_field)]
    print(f"input fields: {', '.join(fields)} (the first row's columns; --fields to choose others)"
          + (f"; not read: {', '.join(left)}" if left else ""))
    return fields, label_field, id_field


def no_label_set(data: Path, label_field: str, labels: list[str], not_labels: list[str]) -> UserInputError:
    """The error for a file whose gold column gives fewer than two labels (none, one, or no such column): what
    it holds and how to name the labels (``--labels``), or the column that looks like them (``not_labels``: the
    input and id columns, never suggested)."""
    from distilloop.data import first_row

    columns = list(first_row(data) or {})
    held = f"holds only {labels}" if labels else "is empty on every row (no gold labels)"
    where = (f"column {label_field!r} {held}:" if label_field in columns else
             f"no column {label_field!r} (columns: {', '.join(columns)}); name the gold labels' column with "
             "--label-field COLUMN, or")
    hint = "" if label_field in columns else label_column_hint(data, [c for c in columns if c not in not_labels])
    return UserInputError(f"cannot infer the label set from {data}: {where} give the labels to ask for with "
                          "--labels a,b,..." + hint)


def label_column_hint(data: Path, columns: list[str]) -> str:
    """Where a file has no label column by name: the columns whose values look like a label set (a few short
    values, each on many rows: the SMS spam file's ``v1`` of ham/spam), said as the options that would name them
    (``"; 'v1' looks like the labels (2 values: ham, spam): --label-field v1 --fields v2"``); "" when none does."""
    from distilloop.errors import DataError
    from distilloop.formats import rows

    values: dict[str, Counter[str]] = {c: Counter() for c in columns}
    try:
        for n, (_, row) in enumerate(rows(data)):
            if n == 2000:
                break
            for c in columns:
                v = row.get(c)
                if isinstance(v, str | int) and not isinstance(v, bool) and str(v).strip():
                    values[c][str(v).strip()] += 1
    except DataError:
        return ""
    like = [c for c, seen in values.items()
            if 2 <= len(seen) <= 50 and all(len(v) <= 40 for v in seen)
            and sum(seen.values()) >= 5 * len(seen) and min(seen.values()) >= 2]
    if len(like) != 1:
        return ""
    seen = values[like[0]]
    rest = [c for c in columns if c != like[0]]
    shown = ", ".join(v for v, _ in seen.most_common(5)) + (", ..." if len(seen) > 5 else "")
    return (f"; {like[0]!r} looks like the labels ({len(seen)} values: {shown}): --label-field {like[0]}"
            + (f" --fields {','.join(rest)}" if len(rest) == 1 else ""))


def numbers_hint(values: list[str]) -> str:
    """What to do about a label column of many distinct numbers: exact answers (math word problems: --answer
    number), or, where most have decimals (STS-B's 0.0-5.0 similarity), a continuous score no label set or exact
    answer fits."""
    from distilloop.core.answers import normalize_number

    decimals = sum(1 for v in values if "." in (normalize_number(v) or ""))
    if decimals * 2 > len(values):
        return ("most of them with decimals, a continuous score: a campaign labels classes, or exact numeric answers "
                "(--answer number, e.g. math word problems), not a score to regress; bin the scores into a column of "
                "labels (e.g. low/mid/high) and pass it as --label-field")
    return "if the answers are numbers (math word problems), pass --answer number; else pass --labels"

