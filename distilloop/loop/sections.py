"""The sections of a campaign file, each a dataclass validated in ``__post_init__``.

Every message names the bad key and the fix, e.g. ``budget.max_usd: must be a number >= 0, got -1``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from distilloop.core.ledger import Caps
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
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name) or len(self.name) > 100:
            raise ConfigError(f"campaign.name: use letters, digits, '-', '_' or '.' (at most 100), got {self.name!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"campaign.seed: must be an integer >= 0, got {self.seed!r}")


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
    #: an input too long for a teacher's context window: "truncate" (cut, with a marker) or "skip" (left out, counted)
    too_long: str = "truncate"

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("data.path: missing; name the data file, e.g. path = \"data/train.jsonl\"")
        for key in ("test_fraction", "dev_fraction"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
                raise ConfigError(f"data.{key}: must be a number in [0, 1), got {v!r}")
        if self.too_long not in ("truncate", "skip"):
            raise ConfigError(f"data.too_long: must be \"truncate\" or \"skip\", got {self.too_long!r}")
        if self.test_fraction + self.dev_fraction >= 1:
            raise ConfigError(f"data.test_fraction + data.dev_fraction: must be below 1 (what is left is the pool to "
                              f"label), got {self.test_fraction} + {self.dev_fraction}")
        if not self.input_fields or not all(isinstance(f, str) and f for f in self.input_fields):
            raise ConfigError(f"data.input_fields: must be a list of column names, got {self.input_fields!r}")
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
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
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


#: what a reviewer's answer is to a soft-label student: see RoutingSection
REVIEW_TRUST = ("auto", "label", "vote")


@dataclass
class RoutingSection:
    """``cascade`` (optional) lists teacher names cheapest first, one name or a list of names per tier: a tier
    is asked only when the previous one is unsure (confidence below ``cascade_min_confidence``) or the tiers
    asked so far disagree. Without it every teacher is asked. ``review_trust`` says what a reviewer's answer
    is to a student that learns from soft labels: ``label`` (it replaces the teachers' distribution), ``vote``
    (one more, certain vote beside the teachers'), or ``auto`` (whichever trains the better student on the
    decision reference, each round; see :mod:`distilloop.loop.steps.train`)."""

    min_agreement: float = 0.5
    max_review_per_round: int | None = None
    cascade: list[Any] = field(default_factory=list)
    cascade_min_confidence: float = 0.8
    review_trust: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.min_agreement, int | float) or not 0 <= self.min_agreement <= 1:
            raise ConfigError(f"routing.min_agreement: must be in [0, 1], got {self.min_agreement!r}")
        m = self.max_review_per_round
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 0):
            raise ConfigError(f"routing.max_review_per_round: must be an integer >= 0, got {m!r}; remove it for no cap")
        c = self.cascade_min_confidence
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 <= c <= 1:
            raise ConfigError(f"routing.cascade_min_confidence: must be in [0, 1], got {c!r}")
        if self.review_trust not in REVIEW_TRUST:
            raise ConfigError(f"routing.review_trust: must be one of {', '.join(REVIEW_TRUST)}, got "
                              f"{self.review_trust!r}{did_you_mean(str(self.review_trust), REVIEW_TRUST)}")
        for tier in self.cascade:
            names = [tier] if isinstance(tier, str) else tier
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                raise ConfigError(f"routing.cascade: each tier must be a teacher name or a list of names, got "
                                  f"{tier!r}; e.g. cascade = [\"qwen-0.5b\", \"qwen-1.5b\"]")

    def tiers(self) -> list[list[str]]:
        return [[t] if isinstance(t, str) else list(t) for t in self.cascade]


@dataclass
class EvaluationSection:
    """How students are scored and promoted. ``split``'s gold labels give the reported score; decisions
    (promotion, ``target``, ``dev_target``) use the best ``reference`` available: gold dev labels, a human audit
    set, a held-out set labeled by the teacher ensemble, and the test split's gold only when nothing else exists
    (see :mod:`distilloop.loop.references`)."""

    split: str = "test"
    metric: str = "accuracy"
    promote_margin: float = 0.0
    reference: str = "auto"
    heldout_size: int = 100
    audit_size: int = 0

    def __post_init__(self) -> None:
        if self.promote_margin < 0:
            raise ConfigError(f"evaluation.promote_margin: must be >= 0, got {self.promote_margin!r}")
        if self.split not in ("test", "dev"):
            raise ConfigError(f"evaluation.split: must be 'test' or 'dev', got {self.split!r}")
        if self.metric not in ("accuracy", "macro_f1"):
            raise ConfigError(f"evaluation.metric: must be 'accuracy' or 'macro_f1', got {self.metric!r}"
                              f"{did_you_mean(str(self.metric), ['accuracy', 'macro_f1'])}")
        refs = ("auto", "gold", "audit", "teachers")
        if self.reference not in refs:
            raise ConfigError(f"evaluation.reference: must be one of {', '.join(refs)}, got {self.reference!r}"
                              f"{did_you_mean(str(self.reference), refs)}")
        for key in ("heldout_size", "audit_size"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"evaluation.{key}: must be an integer >= 0 (0: none), got {v!r}")
        m = self.promote_margin
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0 <= m <= 1:
            raise ConfigError(f"evaluation.promote_margin: must be a number in [0, 1], got {m!r}")


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
class RationalesSection:
    """Which items a teacher is asked to explain (a rationale is about a third of an answer's output tokens):
    ``all``; ``review`` (the label alone, and a rationale only for the items sent to a person, so a reviewer sees
    each teacher's reasoning); ``fraction`` (a seeded ``fraction`` of the items, and the review items; partial
    rationales lose little for distillation, arXiv 2403.15886); ``auto`` (``all`` when the student learns from
    rationales, else ``review``). Prompt styles that cannot drop the rationale always give one."""

    policy: str = "auto"
    fraction: float = 0.3

    def __post_init__(self) -> None:
        policies = ("auto", "all", "review", "fraction")
        if self.policy not in policies:
            raise ConfigError(f"rationales.policy: must be one of {', '.join(policies)}, got {self.policy!r}"
                              f"{did_you_mean(str(self.policy), policies)}")
        f = self.fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 <= f <= 1:
            raise ConfigError(f"rationales.fraction: must be a number in [0, 1], got {f!r}")


@dataclass
class ComputeSection:
    """Where the pool is embedded and scored. ``engine = "local"`` (the default): in the campaign's process, and
    nothing of Ray is imported. ``engine = "ray"``: as Ray Data ``map_batches`` over shards of ``batch_rows`` pool
    items on the cluster at ``address`` (the ``ray`` extra), ``workers`` at a time (0: one per CPU of the cluster),
    each with ``gpus_per_worker`` GPUs for embedding. Vectors written at least ``min_shard_vectors`` at a time go
    to columnar shards in ``vectors_dir`` (default: ``<name>.vectors`` beside the store), smaller writes to the
    store."""

    engine: str = "local"
    address: str = ""
    batch_rows: int = 50_000
    workers: int = 0
    gpus_per_worker: float = 0.0
    vectors_dir: str = ""
    min_shard_vectors: int = 1000

    def __post_init__(self) -> None:
        if self.engine not in ("local", "ray"):
            raise ConfigError(f"compute.engine: must be \"local\" or \"ray\", got {self.engine!r}"
                              f"{did_you_mean(str(self.engine), ['local', 'ray'])}")
        if self.engine == "ray" and not self.address:
            raise ConfigError("compute.address: engine = \"ray\" needs the cluster's address, e.g. "
                              "address = \"10.0.0.5:6379\" (what `ray start --head` printed) or \"auto\"")
        for key, low in (("batch_rows", 1), ("workers", 0), ("min_shard_vectors", 1)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"compute.{key}: must be an integer >= {low}, got {v!r}")
        g = self.gpus_per_worker
        if isinstance(g, bool) or not isinstance(g, int | float) or not 0 <= g <= 64:
            raise ConfigError(f"compute.gpus_per_worker: must be a number in [0, 64], got {g!r}")
