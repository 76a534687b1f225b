"""The shape of the package: a clean stack of layers from ``core`` up to the CLI, small modules, and storage the
only part that knows the schema."""

from __future__ import annotations

import ast
import re
import threading
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "distilloop"

#: bottom to top; a module imports only from its own part or from parts in a strictly lower layer (so the
#: parts of one layer never import each other)
LAYERS: list[set[str]] = [
    {"errors"},
    {"", "core", "_extras"},
    {"ls_export"},  # rows in the shape another tool exports them (a Label Studio project's tasks), flattened
    {"formats"},  # the file formats a data file comes in, read as numbered rows
    {"data", "registry"},
    {"storage"},
    {"strategies", "students", "annotators", "testing"},
    {"engine"},  # compute engines: run strategies' and students' pool-sized work (locally or on Ray)
    {"loop"},
    {"reports"},
    {"cli"},
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def _part(module: str) -> str:
    """``distilloop.loop.steps.train`` -> ``loop``; ``distilloop`` -> ``""``."""
    rest = module.split(".")[1:]
    return rest[0] if rest and rest[0] not in ("__init__", "__main__") else ""


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _parse(text: str) -> ast.Module:
    """``ast.parse``, in a fresh thread when this one's C recursion counter was left skewed by native code run
    earlier in the session (CPython 3.11: "AST constructor recursion depth mismatch"); each thread has its own."""
    try:
        return ast.parse(text)
    except SystemError:
        out: list[ast.Module] = []
        worker = threading.Thread(target=lambda: out.append(ast.parse(text)))
        worker.start()
        worker.join()
        return out[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every distilloop module ``path`` imports (at the top, in functions or under TYPE_CHECKING alike)."""
    out = []
    for node in ast.walk(_parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "distilloop"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "distilloop":
            out.append((node.lineno, node.module))
    return out


def test_every_part_is_in_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()} - {"__init__", "__main__"}
    assert parts <= set(LAYER), f"parts missing from LAYERS: {sorted(parts - set(LAYER))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_reaches_up_or_sideways(path):
    own = _part("distilloop." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    for lineno, module in _imports(path):
        target = _part(module)
        if target == own:
            continue
        assert LAYER[target] < LAYER[own], (f"{path.relative_to(PACKAGE)}:{lineno} imports {module}: {target!r} "
                                            f"(layer {LAYER[target]}) is not below {own!r} (layer {LAYER[own]})")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 400, f"{path.relative_to(PACKAGE)} is over 400 lines: split it"


def test_the_campaign_loop_is_short():
    assert len((PACKAGE / "loop" / "campaign.py").read_text().splitlines()) < 200


_SQL = re.compile(r"\b(select\b.+\bfrom|insert\s+into|update\s+\w+\s+set|delete\s+from|create\s+(table|index)|"
                  r"drop\s+table|pragma\s+\w+)\b", re.I)


@pytest.mark.parametrize("path", [p for p in _modules() if p.relative_to(PACKAGE).parts[0] != "storage"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_storage_speaks_sql(path):
    """Outside distilloop/storage no SQL, no table access (``store.db``), no table named to the store."""
    tree = _parse(path.read_text())
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.search(node.value) \
                and id(node) not in docs:
            pytest.fail(f"{path.relative_to(PACKAGE)}:{node.lineno}: SQL outside storage: {node.value[:80]!r}")
        if isinstance(node, ast.Attribute) and node.attr == "db" and isinstance(node.value, ast.Name) \
                and node.value.id in ("store", "s", "st"):
            pytest.fail(f"{path.relative_to(PACKAGE)}:{node.lineno}: reaches into the store's database")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "count" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            pytest.fail(f"{path.relative_to(PACKAGE)}:{node.lineno}: names a table to the store")
