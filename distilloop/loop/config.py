"""The campaign file (TOML), parsed into validated dataclasses.

Every message names the bad key and the fix, e.g. ``budget.max_usd: must be >= 0, got -1``.
Unknown keys are errors with a "did you mean" hint, so a typo never silently changes a campaign.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distilloop.core.ledger import Caps
from distilloop.data import DataSpec
from distilloop.errors import ConfigError
from distilloop.registry import did_you_mean


@dataclass
class CampaignSection:
    name: str = "campaign"
    labels: list[str] = field(default_factory=list)
    task: str = "Classify the input."
    store: str = ""
    seed: int = 0
    models_dir: str = ""
    #: "label": one of ``labels``; "number": an open numeric answer (math word problems), no label set
    answer: str = "label"

    @property
    def numeric(self) -> bool:
        return self.answer == "number"

    def __post_init__(self) -> None:
        if self.answer not in ("label", "number"):
            raise ConfigError(f"campaign.answer: must be \"label\" (one of [campaign] labels) or \"number\" (a numeric "
                              f"answer, e.g. math word problems), got {self.answer!r}")
        if self.numeric:
            if self.labels:
                raise ConfigError("campaign.labels: a campaign with answer = \"number\" has no label set; remove "
                                  "labels (or set answer = \"label\")")
        elif not isinstance(self.labels, list) or len(self.labels) < 2 or not all(isinstance(x, str) and x for x in self.labels):
            raise ConfigError(f"campaign.labels: must be a list of at least two label names, got {self.labels!r}; "
                              'e.g. labels = ["negative", "positive"]')
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"campaign.labels: labels must be unique, got {self.labels!r}")
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise ConfigError(f"campaign.name: use letters, digits, '-', '_' or '.', got {self.name!r}")


@dataclass
class DataSection:
    path: str = ""
    input_fields: list[str] = field(default_factory=lambda: ["text"])
    label_field: str = "label"
    id_field: str = "id"
    split_field: str = "split"
    rationale_field: str = "rationale"
    test_fraction: float = 0.2
    dev_fraction: float = 0.0
    limits: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("data.path: missing; name the data file, e.g. path = \"data/train.jsonl\"")
        for key in ("test_fraction", "dev_fraction"):
            v = getattr(self, key)
            if not isinstance(v, int | float) or not 0 <= v < 1:
                raise ConfigError(f"data.{key}: must be a number in [0, 1), got {v!r}")
        for split, n in self.limits.items():
            if split not in ("pool", "dev", "test") or not isinstance(n, int) or n < 1:
                raise ConfigError(f"data.limits: expected pool/dev/test = positive integer, got {split} = {n!r}")


@dataclass
class BudgetSection:
    max_usd: float | None = None
    max_tokens_in: int | None = None
    max_tokens_out: int | None = None
    round_max_usd: float | None = None
    round_max_tokens_in: int | None = None
    round_max_tokens_out: int | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v) or v < 0:
                raise ConfigError(f"budget.{f.name}: must be a number >= 0, got {v!r}; remove the key for no cap")
        if all(getattr(self, k) is None for k in ("max_usd", "max_tokens_in", "max_tokens_out")):
            raise ConfigError("budget: no campaign cap set; set at least one of max_usd, max_tokens_in, "
                              "max_tokens_out (a campaign without a hard budget is not allowed)")

    def caps(self) -> tuple[Caps, Caps]:
        return (Caps(self.max_tokens_in, self.max_tokens_out, self.max_usd),
                Caps(self.round_max_tokens_in, self.round_max_tokens_out, self.round_max_usd))


@dataclass
class RoundsSection:
    max_rounds: int = 5
    batch_size: int = 50
    initial_size: int = 0
    initial_strategy: str = "random"
    target: float | None = None
    concurrency: int = 8
    growth: float = 1.0

    def size(self, round_no: int) -> int:
        """How many items round ``round_no`` selects: ``initial_size`` first (when set), then ``batch_size``
        multiplied by ``growth`` each round (a geometric schedule gives a learning curve even on a log scale)."""
        if round_no == 1 and self.initial_size > 0:
            return self.initial_size
        k = round_no - (2 if self.initial_size > 0 else 1)
        return max(1, int(round(self.batch_size * self.growth ** k)))

    def __post_init__(self) -> None:
        for key in ("max_rounds", "batch_size", "concurrency"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"rounds.{key}: must be a positive integer, got {v!r}")
        if isinstance(self.initial_size, bool) or not isinstance(self.initial_size, int) or self.initial_size < 0:
            raise ConfigError(f"rounds.initial_size: must be an integer >= 0, got {self.initial_size!r}")
        if isinstance(self.growth, bool) or not isinstance(self.growth, int | float) or not 1 <= self.growth <= 10:
            raise ConfigError(f"rounds.growth: must be a number in [1, 10], got {self.growth!r}")
        if self.target is not None and not (isinstance(self.target, int | float) and 0 < self.target <= 1):
            raise ConfigError(f"rounds.target: must be a metric value in (0, 1], got {self.target!r}")


@dataclass
class RoutingSection:
    """``cascade`` (optional) lists teacher names cheapest first, one name or a list of names per tier: a tier
    is asked only when the previous one is unsure (confidence below ``cascade_min_confidence``) or the tiers
    asked so far disagree. Without it every teacher is asked."""

    min_agreement: float = 0.5
    max_review_per_round: int | None = None
    cascade: list[Any] = field(default_factory=list)
    cascade_min_confidence: float = 0.8

    def __post_init__(self) -> None:
        if not isinstance(self.min_agreement, int | float) or not 0 <= self.min_agreement <= 1:
            raise ConfigError(f"routing.min_agreement: must be in [0, 1], got {self.min_agreement!r}")
        m = self.max_review_per_round
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 0):
            raise ConfigError(f"routing.max_review_per_round: must be an integer >= 0, got {m!r}; remove it for no cap")
        c = self.cascade_min_confidence
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 <= c <= 1:
            raise ConfigError(f"routing.cascade_min_confidence: must be in [0, 1], got {c!r}")
        for tier in self.cascade:
            names = [tier] if isinstance(tier, str) else tier
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                raise ConfigError(f"routing.cascade: each tier must be a teacher name or a list of names, got "
                                  f"{tier!r}; e.g. cascade = [\"qwen-0.5b\", \"qwen-1.5b\"]")

    def tiers(self) -> list[list[str]]:
        return [[t] if isinstance(t, str) else list(t) for t in self.cascade]


@dataclass
class EvaluationSection:
    split: str = "test"
    metric: str = "accuracy"
    promote_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.split not in ("test", "dev"):
            raise ConfigError(f"evaluation.split: must be 'test' or 'dev', got {self.split!r}")
        if self.metric not in ("accuracy", "macro_f1"):
            raise ConfigError(f"evaluation.metric: must be 'accuracy' or 'macro_f1', got {self.metric!r}"
                              f"{did_you_mean(str(self.metric), ['accuracy', 'macro_f1'])}")


@dataclass
class StoppingSection:
    """Stopping rules beside ``max_rounds``, ``[rounds] target``, the pool and the budget (each off by default).

    ``stabilizing``: stabilizing predictions (Bloodgood & Vijay-Shanker, CoNLL 2009): a fixed, seeded sample of
    ``stop_set_size`` pool items is predicted by every round's student; stop when Cohen's kappa between
    successive rounds' predictions reaches ``kappa``, as the mean (``window_rule = "mean"``, the paper's) or
    the lowest (``"all"``) of the last ``window`` comparisons. ``dev_target``: stop when the student's
    ``[evaluation] metric`` on the dev split (gold labels needed) reaches it for ``dev_patience`` rounds in a row.
    """

    stabilizing: bool = False
    stop_set_size: int = 2000
    kappa: float = 0.99
    window: int = 3
    window_rule: str = "mean"
    dev_target: float | None = None
    dev_patience: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.stabilizing, bool):
            raise ConfigError(f"stopping.stabilizing: must be true or false, got {self.stabilizing!r}")
        for key in ("stop_set_size", "window", "dev_patience"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"stopping.{key}: must be a positive integer, got {v!r}")
        k = self.kappa
        if isinstance(k, bool) or not isinstance(k, int | float) or math.isnan(k) or not -1 <= k <= 1:
            raise ConfigError(f"stopping.kappa: must be a kappa in [-1, 1] (the paper uses 0.99), got {k!r}")
        if self.window_rule not in ("mean", "all"):
            raise ConfigError(f"stopping.window_rule: must be 'mean' (the paper's) or 'all', got "
                              f"{self.window_rule!r}{did_you_mean(str(self.window_rule), ['mean', 'all'])}")
        t = self.dev_target
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 1):
            raise ConfigError(f"stopping.dev_target: must be a metric value in (0, 1], got {t!r}; "
                              "remove the key for no dev target")


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

    def data_spec(self) -> DataSpec:
        return DataSpec(tuple(self.data.input_fields), self.data.label_field, self.data.id_field,
                        self.data.split_field, self.data.rationale_field, self.data.test_fraction,
                        self.data.dev_fraction, self.campaign.seed, dict(self.data.limits))

    def fingerprint(self) -> str:
        """A hash of what must not change under a running campaign (labels, data, teachers)."""
        key = {k: self.raw.get(k) for k in ("campaign", "data", "teachers")}
        key["campaign"] = {k: v for k, v in (key["campaign"] or {}).items() if k in ("labels", "task", "answer")}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


SECTIONS: dict[str, type] = {
    "campaign": CampaignSection, "data": DataSection, "budget": BudgetSection, "rounds": RoundsSection,
    "routing": RoutingSection, "evaluation": EvaluationSection, "stopping": StoppingSection,
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
    text = str(annotation)
    ok = True
    if text.startswith("list"):
        ok = isinstance(value, list)
    elif text.startswith("dict"):
        ok = isinstance(value, dict)
    elif text == "str":
        ok = isinstance(value, str)
    elif text in ("int",):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif text in ("float",):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
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
    return CampaignConfig(teachers=teachers, path=path, raw=raw, **sections, **comps)  # type: ignore[arg-type]


def load_config(path: str | Path) -> CampaignConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"campaign file not found: {path}; create one with `distilloop init <data file>`")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    return parse_config(raw, path.resolve())
