"""The campaign file (TOML), parsed into validated dataclasses.

Every message names the bad key and the fix, e.g. ``budget.max_usd: must be >= 0, got -1``.
Unknown keys are errors with a "did you mean" hint, so a typo never silently changes a campaign.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distilloop.core.answers import AnswerSpace, answer_space
from distilloop.data import DataSpec, data_stem
from distilloop.errors import ConfigError
from distilloop.loop.sections import (
    BudgetSection,
    CampaignSection,
    ComputeSection,
    DataSection,
    EvaluationSection,
    RationalesSection,
    RoundsSection,
    RoutingSection,
    StoppingSection,
)
from distilloop.registry import PLUGIN, did_you_mean

__all__ = ["CampaignConfig", "Component", "load_config", "parse_config", "SECTIONS"]


@dataclass
class Component:
    """A pluggable part named by ``kind`` with its own options (checked by the part's constructor)."""

    kind: str
    params: dict[str, Any]
    where: str


@dataclass
class CampaignConfig:
    campaign: CampaignSection
    data: DataSection
    budget: BudgetSection
    rounds: RoundsSection
    routing: RoutingSection
    evaluation: EvaluationSection
    stopping: StoppingSection
    rationales: RationalesSection
    compute: ComputeSection
    strategy: Component
    student: Component
    review: Component
    aggregation: Component
    teachers: list[Component]
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else self.base_dir / q

    @property
    def data_path(self) -> Path:
        return self.resolve(self.data.path)

    @property
    def store_path(self) -> Path:
        return self.resolve(self.campaign.store or f"{self.campaign.name}.distilloop.db")

    def beside_store(self, suffix: str) -> Path:
        """A file or folder next to the store, named after the campaign: ``<name><suffix>``."""
        return self.store_path.with_name(self.campaign.name + suffix)

    @property
    def vectors_dir(self) -> Path:
        """Where the columnar vector shards are kept (``[compute] vectors_dir``, default beside the store)."""
        return self.resolve(self.compute.vectors_dir) if self.compute.vectors_dir else self.beside_store(".vectors")

    @property
    def students_dir(self) -> Path:
        """Where every trained student version is saved."""
        return self.beside_store(".students")

    @property
    def space(self) -> AnswerSpace:
        """The campaign's answer space: its label set, or open numeric answers."""
        return answer_space(self.campaign.answer, self.campaign.labels)

    def data_spec(self) -> DataSpec:
        return DataSpec(tuple(self.data.input_fields), self.data.label_field, self.data.id_field,
                        self.data.split_field, self.data.rationale_field, self.data.test_fraction,
                        self.data.dev_fraction, self.campaign.seed, dict(self.data.limits))


SECTIONS: dict[str, type] = {
    "campaign": CampaignSection, "data": DataSection, "budget": BudgetSection, "rounds": RoundsSection,
    "routing": RoutingSection, "evaluation": EvaluationSection, "stopping": StoppingSection,
    "rationales": RationalesSection,
    "compute": ComputeSection,
}
COMPONENTS = {"strategy": ("name", "entropy"), "student": ("kind", "tfidf_logreg"), "review": ("kind", "auto"),
              "aggregation": ("method", "majority")}


def _section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: must be a table ([{name}]), got {type(table).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key{did_you_mean(key, known)}; [{name}] takes: {', '.join(known)}")
    for f in dataclasses.fields(cls):
        if f.name in table:
            _check_type(f"{name}.{f.name}", table[f.name], f.type)
    return cls(**table)


def _check_type(where: str, value: Any, annotation: Any) -> None:
    """``value`` has the declared type (``int``, ``float``, ``str``, ``list``, ``dict``; an optional key is checked
    by its section); numbers are finite (TOML has ``inf`` and ``nan``)."""
    text = str(annotation)
    kinds = [t.strip().split("[")[0] for t in text.split("|")]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    if "None" in kinds:  # an optional key: its section checks what it takes
        return
    ok = False
    for kind in kinds:
        if kind == "list":
            ok = ok or isinstance(value, list)
        elif kind == "dict":
            ok = ok or isinstance(value, dict)
        elif kind == "str":
            ok = ok or isinstance(value, str)
        elif kind == "int":
            ok = ok or (isinstance(value, int) and not isinstance(value, bool))
        elif kind == "float":
            ok = ok or (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))
        elif kind != "None":
            ok = True  # a type the section checks itself
    if not ok:
        raise ConfigError(f"{where}: expected {text}, got {type(value).__name__} {value!r}")


def _component(name: str, table: Any, key: str, default: str) -> Component:
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigError(f"{name}: must be a table ([{name}]), got {type(table).__name__}")
    params = dict(table)
    kind = params.pop(key, default)
    if not isinstance(kind, str):
        raise ConfigError(f"{name}.{key}: must be a string, got {kind!r}")
    return Component(kind, params, name)


def parse_config(raw: dict[str, Any], path: Path | None = None) -> CampaignConfig:
    allowed = [*SECTIONS, *COMPONENTS, "teachers"]
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{key}: unknown section{did_you_mean(key, allowed)}; a campaign file has "
                              f"{', '.join('[' + a + ']' for a in allowed)}")
    for required in ("campaign", "data", "budget"):
        if required not in raw:
            raise ConfigError(f"[{required}]: missing section; see `distilloop init --help` for a starter file")
    sections = {name: _section(name, cls, raw.get(name, {})) for name, cls in SECTIONS.items()}
    comps = {name: _component(name, raw.get(name), key, default) for name, (key, default) in COMPONENTS.items()}
    teachers_raw = raw.get("teachers")
    if not isinstance(teachers_raw, list) or not teachers_raw:
        raise ConfigError("teachers: at least one [[teachers]] entry is needed, e.g.\n"
                          '[[teachers]]\nname = "qwen-1.5b"\nkind = "llama_cpp"\nmodel = "qwen2.5-coder-1.5b"')
    teachers, names = [], set()
    for i, t in enumerate(teachers_raw):
        where = f"teachers[{i}]"
        if not isinstance(t, dict):
            raise ConfigError(f"{where}: must be a table ([[teachers]])")
        params = dict(t)
        kind = params.pop("kind", None)
        if not isinstance(kind, str):
            raise ConfigError(f"{where}.kind: missing; set kind = \"llama_cpp\", \"openai\", \"anthropic\" or \"replay\"")
        tname = params.get("name")
        if not isinstance(tname, str) or not tname:
            raise ConfigError(f"{where}.name: missing; give each teacher a unique name")
        if tname in names:
            raise ConfigError(f"{where}.name: '{tname}' is used twice; teacher names must be unique")
        names.add(tname)
        teachers.append(Component(kind, params, f"{where} ({tname})"))
    tiered = [n for tier in sections["routing"].tiers() for n in tier]
    for n in tiered:
        if n not in names:
            raise ConfigError(f"routing.cascade: no teacher named '{n}'{did_you_mean(n, names)}; the teachers are "
                              f"{', '.join(sorted(names))}")
    if len(set(tiered)) != len(tiered):
        raise ConfigError(f"routing.cascade: a teacher is named in two tiers ({tiered}); name each once")
    for t in teachers if tiered else ():  # a cascade asks only the teachers it names
        if (tname := t.params["name"]) not in tiered:
            cascade = list(sections["routing"].cascade)
            raise ConfigError(f"{t.where}: in no tier of [routing] cascade = {json.dumps(cascade)}, so never asked; "
                              f"add it (e.g. cascade = {json.dumps([*cascade, tname])}) or remove the teacher")
    own = [c.kind for c in (*teachers, *comps.values()) if isinstance(c, Component) and PLUGIN.match(c.kind)]
    if own and path is not None and str(path.parent) not in sys.path:  # parts of the user's own: found beside it
        sys.path.insert(0, str(path.parent))
    return CampaignConfig(teachers=teachers, path=path, raw=raw, **sections, **comps)  # type: ignore[arg-type]


def load_config(path: str | Path) -> CampaignConfig:
    """The campaign file at ``path``, or a folder's ``campaign.toml`` (``distilloop run examples/rt_demo``)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f.name for f in path.glob("*.toml"))
        if not (path / "campaign.toml").is_file():
            raise ConfigError(f"{path} is a folder and holds no campaign.toml; pass the campaign file"
                              + (f" ({', '.join(files[:5])} are there)" if files else "") + ", or create one "
                              "with `distilloop init <data file>`")
        path = path / "campaign.toml"
    if not path.exists():
        raise ConfigError(f"campaign file not found: {path}; create one with `distilloop init <data file>`")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # Notepad's byte-order mark is not TOML's error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        if data_stem(path.name) is not None:  # `distilloop predict data.csv campaign.toml`, `run data.parquet`
            raise ConfigError(f"{path} is a data file, not a campaign file: pass the campaign file (a data file comes after "
                              f"it: `distilloop predict campaign.toml {path}`), or write one with `distilloop init {path}`"
                              ) from None
        if isinstance(exc, tomllib.TOMLDecodeError):
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        raise ConfigError(f"{path}: not UTF-8 text; save the campaign file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    return parse_config(raw, path.resolve())
