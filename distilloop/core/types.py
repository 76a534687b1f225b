"""The data types that cross the parts of a campaign: examples, what a teacher sees and answers, votes and
verdicts, review items and decisions, selections, and amounts of spend.

Pure data: no I/O, no behaviour beyond small derived properties. Every part of distilloop speaks in these types,
so a part can be replaced without touching the others.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distilloop.core.answers import AnswerSpace


# -- inputs ---------------------------------------------------------------------------------------------
def render_input(fields: dict[str, Any]) -> str:
    """Flatten input fields into one string: ``text`` as is; multiple choice as question plus options; two or
    more text fields each on its line after its name (``premise: ...`` / ``hypothesis: ...``: which is which is
    the task's meaning, for teachers and reviewers alike)."""
    if "text" in fields and len(fields) == 1:
        return str(fields["text"])
    named = sum(1 for key in fields if key != "choices") >= 2
    parts = []
    for key, value in fields.items():
        if value == "":  # an empty field of several (a ticket without a subject)
            continue
        if key == "choices" and isinstance(value, dict):
            line = " ".join(f"({k}) {v}" for k, v in value.items())
        else:
            line = str(value)
        parts.append(f"{key}: {line}" if named else line)
    return "\n".join(parts)


#: an example's split: the pool to label, the dev split (decisions), the test split (the report)
SPLITS = ("pool", "dev", "test")
#: the hub's and scikit-learn's split names: a train split is the pool to label, a validation split the dev split
SPLIT_NAMES = {"train": "pool", "training": "pool", "validation": "dev", "valid": "dev", "val": "dev",
               "testing": "test", "unsupervised": "pool", "unlabeled": "pool", "unlabelled": "pool",
               **{s: s for s in SPLITS}}


@dataclass(frozen=True)
class Example:
    """One item of a campaign. ``fields`` holds only what a teacher may see."""

    id: str
    fields: dict[str, Any]
    split: str = "pool"
    gold: str | None = None
    gold_rationale: str | None = None

    @property
    def text(self) -> str:
        """The input as one string, the way students and strategies see it."""
        return render_input(self.fields)


@dataclass(frozen=True)
class LabelingItem:
    """What a teacher may see of one example."""

    example_id: str
    fields: dict[str, Any]
    labels: tuple[str, ...]
    task: str
    gold: str | None = None  # only filled for ground-truth priming, never otherwise
    student_explanation: str | None = None  # for explanation revision (ELAD)
    student_label: str | None = None
    answer: str = "label"  # "number": an open numeric answer (math word problems), ``labels`` is empty
    #: whether the campaign wants a rationale for this item (``[rationales] policy``); without, a teacher whose
    #: prompt style allows it asks for the label alone
    rationale: bool = True

    @property
    def space(self) -> AnswerSpace:
        from distilloop.core.answers import answer_space

        return answer_space(self.answer, self.labels)


# -- spend ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spend:
    """An amount of the three budgeted resources."""

    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.tokens_in + other.tokens_in, self.tokens_out + other.tokens_out, self.usd + other.usd)

    def scaled(self, factor: float) -> Spend:
        return Spend(int(round(self.tokens_in * factor)), int(round(self.tokens_out * factor)), self.usd * factor)

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass(frozen=True)
class Usage:
    """What a provider reports a call used (cached and cache-write tokens are parts of ``tokens_in``)."""

    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0


# -- teacher answers and votes ----------------------------------------------------------------------------
@dataclass
class TeacherAnswer:
    """A parsed answer. ``valid`` is False when the label is missing or outside the label set."""

    raw: str
    label: str | None
    rationale: str | None
    confidence: float | None
    usage: Usage
    latency_s: float = 0.0
    valid: bool = True
    error: str | None = None
    confidence_source: str | None = None  # "logprobs", "verbalized", "self_consistency", "recorded"
    distribution: dict[str, float] | None = None  # the teacher's label distribution, where known
    batch: bool = False


@dataclass(frozen=True)
class CallRecord:
    """A settled teacher call as the store keeps it."""

    id: int
    request_hash: str
    round: int
    example_id: str
    teacher: str
    model: str
    status: str
    label: str | None
    rationale: str | None
    confidence: float | None
    valid: bool
    tokens_in: int
    tokens_out: int
    cost_usd: float
    raw_response: str | None
    error: str | None
    distribution: dict[str, float] | None = None


@dataclass(frozen=True)
class Vote:
    """One teacher's answer on one item, as the aggregation sees it. A teacher that was asked and gave no
    usable answer (an error, the budget, an answer outside the set) votes with ``valid = False``."""

    teacher: str
    label: str | None
    rationale: str | None = None
    confidence: float | None = None
    valid: bool = True
    distribution: dict[str, float] | None = None
    #: set by calibration when it changed the teacher's label: the label the teacher answered (its rationale
    #: argues for that one)
    answered: str | None = None
    #: the teacher's own distribution, when ``distribution`` is a calibrated one
    raw_distribution: dict[str, float] | None = None


@dataclass
class Verdict:
    """The ensemble's answer for one item. ``label`` is ``None`` when no teacher gave a valid answer."""

    label: str | None
    soft_label: dict[str, float]
    agreement: float  # the winner's share under the method's soft label (vote share for majority)
    entropy: float  # entropy (nats) of the soft label
    n_votes: int
    rationale: str | None
    method: str
    votes: list[dict] = field(default_factory=list)
    vote_share: float | None = None  # share of valid votes (one per teacher) for the winner
    rationales_agree: bool | None = None  # whether the rationales argue for one label; None when none takes a side
    n_asked: int | None = None  # teachers asked about the item (missing or invalid votes count as dissent)


# -- review ---------------------------------------------------------------------------------------------
@dataclass
class ReviewItem:
    example_id: str
    fields: dict[str, Any]
    verdict: Verdict
    round_no: int
    labels: tuple[str, ...] = ()
    answer: str = "label"  # "number": the reviewer enters a number (the campaign has no label set)
    guideline: str = ""  # the campaign's task text when the item was sent: what reviewers are told to do

    @property
    def space(self) -> AnswerSpace:
        from distilloop.core.answers import answer_space

        return answer_space(self.answer, self.labels)


@dataclass
class ReviewDecision:
    example_id: str
    label: str
    rationale: str | None
    reviewer: str
    source: str  # "human", "auto", "simulated"
    seconds_spent: float | None = None
    external_id: str | None = None
    #: the review's own id at its reviewer (a Label Studio annotation's) and when it was last changed there: a
    #: review changed after the campaign took it comes back from :meth:`Reviewer.revised` with a newer version
    ref: str | None = None
    version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- selection ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """A strategy's picks, best first, with a score each; ``explanations`` carries what an explanation-guided
    strategy (ELAD) learnt about the picks (the student's own explanation steps), on to the teachers' prompts."""

    ids: list[str]
    scores: list[float]
    explanations: dict[str, list[str]] = field(default_factory=dict)


#: texts up to this long have their hash remembered (a process keeps at most 32,768 of them: 32 MB at most)
SHORT_TEXT = 1000


def text_hash(text: str) -> str:
    """The key of a text in the embedding cache. A short text's is remembered: a student scored every round on the
    same few thousand reference texts would otherwise hash each again for every prediction (hashing a long text
    costs about what looking it up would)."""
    return _short_text_hash(text) if len(text) <= SHORT_TEXT else _sha256(text)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_short_text_hash = functools.lru_cache(maxsize=1 << 15)(_sha256)
