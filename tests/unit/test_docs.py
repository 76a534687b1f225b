"""Every name a campaign file can use is documented under docs/: each registered component and prompt style,
every key of every section and every component's options, every command and its options (as sqlite-utils
checks its CLI against its docs)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from distilloop.annotators.prompts import STYLES
from distilloop.cli import build_parser
from distilloop.loop.config import SECTIONS
from distilloop.loop.parts import CALIBRATION_KEYS
from distilloop.registry import TABLES, resolve

ROOT = Path(__file__).resolve().parents[2]
DOCS = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
#: constructor parameters that a campaign file never sets (wired by the campaign itself)
INTERNAL = {"self", "args", "kwargs", "http_client", "base_dir", "name", "kind"}


def documented(word: str) -> bool:
    """Named in code (`word`, or inside a code span), or set in an example campaign file (``word = ...``)."""
    return (f"`{word}`" in DOCS or re.search(rf"`[^`\n]*\b{re.escape(word)}\b[^`\n]*`", DOCS) is not None
            or re.search(rf"^\s*#?\s*{re.escape(word)} = ", DOCS, re.M) is not None)


def _params(part: str, name: str) -> list[str]:
    cls = resolve(part, name, where="docs")
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls) if f.init]
    return list(inspect.signature(cls.__init__).parameters)  # type: ignore[misc]


def test_the_readme_is_short_and_points_to_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    for page in ("campaign-file", "teachers", "review", "students", "strategies", "numeric-answers", "benchmarks",
                 "cli", "extending"):
        assert (ROOT / "docs" / f"{page}.md").exists(), page
        assert f"docs/{page}.md" in readme, f"the README does not link docs/{page}.md"


@pytest.mark.parametrize("part", sorted(TABLES))
def test_every_registered_component_and_its_options_are_documented(part):
    for name in TABLES[part]:
        assert documented(name), f"{part} '{name}' is not documented in docs/"
        for key in _params(part, name):
            if key not in INTERNAL:
                assert documented(key), f"{part} '{name}' option '{key}' is not documented in docs/"


def test_every_prompt_style_is_documented():
    for name in STYLES:
        assert documented(name), f"prompt style '{name}' is not documented in docs/"


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_key_of_every_section_is_documented(section):
    assert f"[{section}]" in DOCS, f"section [{section}] is not documented"
    for f in dataclasses.fields(SECTIONS[section]):
        assert documented(f.name), f"[{section}] {f.name} is not documented in docs/"
    for key in CALIBRATION_KEYS:
        assert documented(key)


def test_every_command_and_option_is_documented():
    cli = (ROOT / "docs" / "cli.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for command, sp in sub.choices.items():
        assert f"distilloop {command}" in cli, f"`distilloop {command}` is not in docs/cli.md"
        for action in sp._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help":
                    assert opt in cli, f"`distilloop {command} {opt}` is not in docs/cli.md"
