"""A Label Studio project's JSON export read as data rows.

Label Studio's "JSON" export (and its task import format) nests each row: ``{"id": 17, "data": {"text": ...},
"annotations": [{"result": [{"from_name": "sentiment", "type": "choices", "value": {"choices": ["Positive"]}}]}],
...}``. Read as is, its columns were ``data``, ``annotations`` and ``predictions``, none of them text. A task is
read as its ``data`` fields, its id (``data``'s own ``id`` where it has one, else the task's), and one column per
control of its first annotation that was not cancelled: a choice (one chosen) as that choice, a text area as its
text, named by the control's ``from_name`` (a campaign's own review project gives ``label`` and ``rationale``).
Predictions are not answers and are not read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: the keys of an exported task besides ``data``: a row holding only these (and ``data``) is a task
TASK_KEYS = frozenset({
    "id", "annotations", "predictions", "drafts", "meta", "file_upload", "created_at", "updated_at", "inner_id",
    "total_annotations", "cancelled_annotations", "total_predictions", "comment_count", "unresolved_comment_count",
    "last_comment_updated_at", "project", "updated_by", "comment_authors", "annotators", "is_labeled",
    "overlap", "storage_filename", "allow_skip", "completed_at", "annotations_results", "predictions_results",
    "predictions_score", "annotations_ids", "predictions_model_versions", "avg_lead_time", "draft_exists",
})


def is_task(row: dict[str, Any]) -> bool:
    """Whether ``row`` is a Label Studio task: a ``data`` object with a list of annotations or predictions (an
    export, whatever other keys its version adds), or with nothing but a task's other keys (the import format)."""
    if not isinstance(row.get("data"), dict):
        return False
    return any(isinstance(row.get(k), list) for k in ("annotations", "predictions")) or set(row) - {"data"} <= TASK_KEYS


def _answers(annotation: dict[str, Any]) -> dict[str, Any]:
    """An annotation's answers by control name: one choice, or a text area's text (lines joined)."""
    out: dict[str, Any] = {}
    for result in annotation.get("result") or []:
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            continue
        name, value = result.get("from_name"), result["value"]
        if not isinstance(name, str) or name in out:
            continue
        choices, text = value.get("choices"), value.get("text")
        if isinstance(choices, list) and len(choices) == 1:
            out[name] = choices[0]
        elif isinstance(choices, list) and choices:
            out[name] = choices  # several chosen: the data reader says a row has one label
        elif isinstance(text, list) and all(isinstance(t, str) for t in text):
            out[name] = "\n".join(text)
        elif isinstance(text, str):
            out[name] = text
    return out


def task_row(row: dict[str, Any]) -> dict[str, Any]:
    """A task as one flat row (see the module's docstring); any other row as it is."""
    if not is_task(row):
        return row
    flat = dict(row["data"])
    if "id" not in flat and "id" in row:
        flat["id"] = row["id"]
    done = [a for a in row.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if done:
        for name, answer in _answers(done[0]).items():
            flat.setdefault(name, answer)
    return flat


def task_rows(rows: Iterable[tuple[int, dict[str, Any]]]) -> Iterable[tuple[int, dict[str, Any]]]:
    """``rows`` with each Label Studio task flattened (:func:`task_row`)."""
    for lineno, row in rows:
        yield lineno, task_row(row)
