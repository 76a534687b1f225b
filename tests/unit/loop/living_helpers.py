"""Shared set-up for the living-campaign tests: the tiny RT fixture split into a first part and the rest."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES


def fixture_rows() -> tuple[list[dict], list[dict]]:
    rows = [json.loads(x) for x in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "pool"], [r for r in rows if r["split"] == "test"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def split_data(tmp_path: Path, n_first: int = 60, overlap: int = 10) -> tuple[Path, Path, list[dict]]:
    """``part.jsonl``: the first ``n_first`` pool rows and every test row; ``rest.jsonl``: the other pool rows and
    ``overlap`` rows of the first part again, unchanged."""
    pool, test = fixture_rows()
    part = write_jsonl(tmp_path / "part.jsonl", pool[:n_first] + test)
    rest = write_jsonl(tmp_path / "rest.jsonl", pool[n_first - overlap:])
    return part, rest, pool


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "distilloop.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env)


def one_line_error(proc, match: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
