"""A teacher that answers from a recorded file of earlier teacher responses (JSONL, optionally gzipped).

Benchmarks use it so that every run sees real LLM outputs without re-running the LLMs. Each line holds at
least ``example_id``, ``raw`` (the reply text) and the usage (``tokens_in``, ``tokens_out``); ``label``,
``rationale``, ``confidence`` and ``distribution`` are used as recorded when present, else parsed from
``raw``. A file may hold several teachers' answers; ``source`` selects one by its ``teacher`` field. A recorded
explanation revision (ELAD) keeps the ``student_explanation`` it revised, so it replays spliced with it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilloop.annotators.base import Teacher
from distilloop.annotators.parsing import parse_answer
from distilloop.annotators.prompts import Prompt, student_steps
from distilloop.core.answers import normalize_label, normalize_number
from distilloop.core.types import LabelingItem, Spend, TeacherAnswer, Usage
from distilloop.errors import ConfigError, InvalidAnswer, TeacherError

_FILES: dict[tuple[str, str | None, str | None], dict[str, dict[str, Any]]] = {}


def load_recording(path: Path, source: str | None, style: str | None = None) -> dict[str, dict[str, Any]]:
    """The recorded answers of ``source`` (every teacher's when None) by example id. A file may hold answers
    under several prompt styles (``prompt_style``): ``style`` picks one (rows that name no style, e.g.
    synthetic fixtures, stand for any); None takes every row."""
    key = (str(path), source, style)
    if key not in _FILES:
        if not path.exists():
            raise ConfigError(f"replay file not found: {path}")
        opener = gzip.open if path.suffix == ".gz" else open
        rows: dict[str, dict[str, Any]] = {}
        with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise ConfigError(f"{path}:{lineno}: not valid JSON") from None
                if source is not None and row.get("teacher") != source:
                    continue
                if "example_id" not in row:
                    raise ConfigError(f"{path}:{lineno}: a recorded answer needs 'example_id'")
                if style is not None and row.get("prompt_style") not in (None, style):
                    continue
                rows[str(row["example_id"])] = row
        if not rows:
            raise ConfigError(f"{path}: no recorded answers" + (f" for teacher '{source}'" if source else "")
                              + (f" under prompt style '{style}'" if style else ""))
        _FILES[key] = rows
    return _FILES[key]


@dataclass
class ReplayTeacher(Teacher):
    """Answers from ``path`` (a recording, or a list of them: e.g. one per prompt style); ``source`` picks a
    recorded teacher; ``latency_s`` simulates a slow API. Each prompt is answered from the rows recorded under its
    own style, so a campaign that asks some items for the label alone replays the label-only answers."""

    path: str | list[str] = ""
    source: str | None = None
    latency_s: float = 0.0
    base_dir: str = ""

    kind = "replay"
    exact_estimate = True

    def __post_init__(self) -> None:
        super().__post_init__()
        paths = [self.path] if isinstance(self.path, str) else list(self.path)
        if not paths or not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"teacher {self.name}: a replay teacher needs path = \"<recorded .jsonl.gz>\" (or a list "
                              f"of recordings), got {self.path!r}")
        self._paths = [Path(self.base_dir) / p if not Path(p).is_absolute() and self.base_dir else Path(p)
                       for p in paths]
        self._by_style: dict[str, dict[str, dict[str, Any]]] = {}
        self._rows = self._style_rows(self.prompt)  # the answers recorded under this teacher's prompt style

    def _style_rows(self, style: str) -> dict[str, dict[str, Any]]:
        if style not in self._by_style:
            rows: dict[str, dict[str, Any]] = {}
            for p in self._paths:
                try:
                    rows.update(load_recording(p, self.source, style))
                except ConfigError:
                    if style == self.prompt and len(self._paths) == 1:
                        raise
            if not rows and style == self.prompt:
                raise ConfigError(f"teacher {self.name}: no recorded answers under prompt style '{style}' in "
                                  f"{', '.join(map(str, self._paths))}")
            self._by_style[style] = rows
        return self._by_style[style]

    def hash_extra(self) -> Any:
        return {"source": self.source}

    def _row(self, example_id: str | None, style: str | None = None) -> dict[str, Any]:
        rows = self._style_rows(style or self.prompt)
        if example_id is None or example_id not in rows:
            raise TeacherError(f"teacher {self.name}: no recorded answer for example '{example_id}' under prompt "
                               f"style '{style or self.prompt}'")
        return rows[example_id]

    def has(self, example_id: str) -> bool:
        return example_id in self._rows

    def estimate(self, prompt: Prompt, example_id: str | None = None) -> Spend:
        row = self._row(example_id, prompt.style)
        t_in, t_out = int(row.get("tokens_in", 0)), int(row.get("tokens_out", 0))
        return Spend(t_in, t_out, self._price.cost(t_in, t_out))

    def expected(self, prompt: Prompt, example_id: str | None = None) -> Spend:
        """The recorded usage where there is a recording for the item: a replayed answer's cost is known."""
        if example_id is not None and example_id in self._rows:
            return self.estimate(prompt, example_id)
        return super().expected(prompt, example_id)

    async def answer(self, prompt: Prompt, item: LabelingItem) -> TeacherAnswer:
        row = self._row(item.example_id, prompt.style)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        usage = Usage(int(row.get("tokens_in", 0)), int(row.get("tokens_out", 0)))
        raw = row.get("raw") or json.dumps({"rationale": row.get("rationale"), "label": row.get("label")})
        dist = row.get("distribution")
        # a recorded revision is spliced with the explanation it revised, recorded with it
        recorded = row.get("student_explanation")
        steps = student_steps(recorded) if recorded else prompt.extra.get("student_steps")
        try:
            parsed = parse_answer(raw, prompt.labels, prompt.answer, steps)
            label: str | None = parsed.label
            rationale = parsed.rationale
        except InvalidAnswer as exc:
            label = (normalize_number(row.get("label")) if prompt.numeric
                     else normalize_label(row.get("label"), prompt.labels))
            if label is None:
                return TeacherAnswer(raw, None, None, None, usage, float(row.get("latency_s", 0.0)),
                                     valid=False, error=str(exc))
            rationale = row.get("rationale")
        conf = row.get("confidence")
        if conf is None and dist:
            conf = dist.get(label)
        return TeacherAnswer(raw, label, rationale, conf, usage, float(row.get("latency_s", 0.0)),
                             confidence_source="recorded" if conf is not None else None, distribution=dist)
