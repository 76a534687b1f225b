"""A student that serves (``distilloop predict``): the active or a named student version labels a file.

The file (JSONL, JSONL.gz, CSV or TSV) holds the campaign's input fields (and optionally an id); it is read one
row at a time and labeled in batches, each batch written out before the next is read, so memory stays constant
however long the file is. Each output line is ``{"id", "label", "distribution", "student"}``: the label is the
student's :meth:`~distilloop.students.base.Student.predict`, the distribution its ``predict_proba`` over the
label set (None for a student of numeric answers); with ``rationales`` (``predict --rationales``), a student that
learned to explain (step_by_step) adds the ``rationale`` it generates. In Python the same is::

    from distilloop.students.base import Student
    student = Student.load(path)            # `distilloop students` lists each version's path
    proba = student.predict_proba(texts)    # columns in the order of student.classes_
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

from distilloop.data import DataSpec, read_rows
from distilloop.errors import UserInputError
from distilloop.loop.progress import Progress
from distilloop.storage.export import spreadsheet_safe
from distilloop.storage.store import Store
from distilloop.students.base import Student

#: texts labeled per batch
BATCH = 256


@dataclass
class Served:
    """The student a prediction is made with, and its version."""

    student: Student
    version: str


def serving_student(store: Store, version: str | None = None) -> Served:
    """The active student, or the named ``version`` (see ``distilloop students``)."""
    rows = store.students()
    if version is None:
        row = store.active_student()
        if row is None:
            raise UserInputError("no active student yet: run a round first (`distilloop run`)")
    else:
        found = [r for r in rows if r["version"] == version]
        if not found:
            raise UserInputError(f"no student version '{version}'; known: {', '.join(r['version'] for r in rows)} "
                                 "(see `distilloop students`)")
        row = found[-1]
    return Served(Student.load(row["path"]), row["version"])


def batches(path: str | Path, spec: DataSpec, size: int = BATCH) -> Iterator[list[tuple[str, str]]]:
    """(id, text) pairs of ``path``, ``size`` at a time, read lazily."""
    from distilloop.core.types import render_input

    rows = ((r.example.id, render_input(r.example.fields)) for r in read_rows(path, spec))
    while chunk := list(islice(rows, size)):
        yield chunk


def check_rationales(served: Served) -> None:
    """``predict --rationales`` needs a student that writes them (``provides`` "explanations": step_by_step)."""
    if "explanations" not in served.student.provides:
        raise UserInputError(f"student {served.version} ({served.student.kind}) writes no rationales: only a student "
                             "trained to explain does ([student] kind = \"step_by_step\"); drop --rationales")


def label_batch(served: Served, chunk: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One output row per (id, text): the student's label and its label distribution."""
    student, texts = served.student, [t for _, t in chunk]
    if not getattr(student, "classes_", None):  # numeric answers: generated, no distribution
        return [{"id": i, "label": lab, "distribution": None, "student": served.version}
                for (i, _), lab in zip(chunk, student.predict(texts), strict=True)]
    proba = student.predict_proba(texts)
    classes = list(student.classes_)
    # a student whose predict is the argmax of predict_proba gets both from one pass
    labels = ([classes[int(k)] for k in proba.argmax(axis=1)] if type(student).predict is Student.predict
              else student.predict(texts))
    return [{"id": i, "label": lab, "student": served.version,
             "distribution": {c: round(float(p), 6) for c, p in zip(classes, row, strict=True)}}
            for (i, _), lab, row in zip(chunk, labels, proba, strict=True)]


def count_rows(path: str | Path, spec: DataSpec) -> int:
    """Rows of ``path`` (a first pass, for the progress bar; validates them on the way)."""
    return sum(1 for _ in read_rows(path, spec))


def row_writer(handle: IO[str], *, as_csv: bool) -> Callable[[dict[str, Any]], None]:
    """Writes one output row: a JSON line, or a CSV row (``id``, ``label``, ``student``, then ``p(label)`` for each
    label; the header before the first row)."""
    if not as_csv:
        def line(row: dict[str, Any]) -> None:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

        return line
    writers: list[csv.DictWriter[str]] = []

    def write(row: dict[str, Any]) -> None:
        cells = {"id": spreadsheet_safe(row["id"]), "label": spreadsheet_safe(row["label"]), "student": row["student"],
                 **{f"p({c})": p for c, p in (row["distribution"] or {}).items()},
                 **({"rationale": spreadsheet_safe(row["rationale"])} if "rationale" in row else {})}
        if not writers:
            writers.append(csv.DictWriter(handle, fieldnames=list(cells)))
            writers[0].writeheader()
        writers[0].writerow(cells)

    return write


def predict_file(served: Served, path: str | Path, spec: DataSpec, out: str | Path | None, *,
                 batch_size: int = BATCH, progress: Progress | None = None, rationales: bool = False) -> int:
    """Label every row of ``path`` with ``served``; write JSON lines (CSV where ``out`` ends in ``.csv``) to ``out``
    (atomically: a temporary file renamed when complete) or to stdout when ``out`` is None or ``-``. Returns the
    rows labeled. With ``rationales``, each row also has the student's ``rationale``."""
    if batch_size < 1:
        raise UserInputError(f"predict --batch-size: must be >= 1, got {batch_size}")
    if rationales:
        check_rationales(served)
    progress = progress or Progress(quiet=True)
    total = count_rows(path, spec)
    to_stdout = out is None or str(out) == "-"
    tmp: str | None = None
    handle: IO[str]
    if to_stdout:
        handle = sys.stdout
    else:
        target = Path(str(out))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
    write = row_writer(handle, as_csv=not to_stdout and Path(str(out)).suffix.lower() == ".csv")
    n = 0
    try:
        with progress.bar(f"predicting with {served.version}", total) as advance:
            for chunk in batches(path, spec, batch_size):
                for row, (_, text) in zip(label_batch(served, chunk), chunk, strict=True):
                    if rationales:  # generated one text at a time: the bar moves with each
                        row["rationale"] = served.student.rationale(text)  # type: ignore[attr-defined]
                    write(row)
                    advance()
                n += len(chunk)
                served.student.release_memory()  # nothing kept per text: constant memory
        if tmp is not None:
            handle.close()
            os.chmod(tmp, 0o644)
            os.replace(tmp, Path(str(out)))
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly, as a Unix filter does
        if tmp is not None:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except BaseException:
        if tmp is not None:
            handle.close()
            Path(tmp).unlink(missing_ok=True)
        raise
    return n
