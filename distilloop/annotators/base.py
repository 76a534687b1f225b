"""The ``Teacher`` contract: a labeler that answers a prompt with a label from the label set and a rationale.

Cloud teachers (OpenAI, Anthropic), an OpenAI-compatible local server, an in-process local LLM and the
replay teacher all implement it. The ensemble (:mod:`distilloop.annotators.ensemble`) owns caching by
request hash, the budget and the store; a teacher only renders, estimates, prices and answers.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from distilloop.annotators.pricing import Price
from distilloop.annotators.prompts import Prompt, get_style
from distilloop.core.types import LabelingItem, Spend, TeacherAnswer, Usage
from distilloop.errors import ConfigError

#: the key of the call being sent (its ``recovery_key`` in the store), set by the ensemble around
#: :meth:`Teacher.answer`: a teacher whose provider keeps calls sends it along, to find the call again later
CALL_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("distilloop_call_key", default=None)
#: tokens added by chat templates around the messages (role markers, special tokens); generous on purpose
TEMPLATE_OVERHEAD_TOKENS = 64
log = logging.getLogger(__name__)
_SAID_NO_USAGE: set[str] = set()  # the teachers whose server's missing usage was said (once a process)
_KINDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false", "dict": "a table",
          "list": "a list"}


def check_fields(obj: Any) -> None:
    """Every option of a teacher (a dataclass) has the type its declaration says, before anything uses it: a
    campaign file's ``max_tokens = "96"`` or ``latency_s = "fast"`` is a one-line config error, not a crash in
    the middle of a round. Numbers must be finite."""
    where = f"teacher {getattr(obj, 'name', '?')}"
    for f in dataclasses.fields(obj):
        if not f.init or f.name in ("http_client",):
            continue
        value = getattr(obj, f.name)
        types = [t.strip().split("[")[0] for t in str(f.type).split("|")]
        if value is None and "None" in types:
            continue
        ok = False
        for t in types:
            if t == "bool":
                ok = ok or isinstance(value, bool)
            elif t == "int":
                ok = ok or (isinstance(value, int) and not isinstance(value, bool))
            elif t == "float":
                ok = ok or (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))
            elif t == "str":
                ok = ok or isinstance(value, str)
            elif t == "dict":
                ok = ok or isinstance(value, dict)
            elif t == "list":
                ok = ok or isinstance(value, list)
            else:
                ok = True  # a type this check does not know: the teacher checks it itself
        if not ok:
            want = " or ".join(_KINDS.get(t, t) for t in types if t != "None")
            raise ConfigError(f"{where}: {f.name} must be {want}, got {value!r}")


def upper_bound_tokens(text: str) -> int:
    """An upper bound on the tokens of ``text`` for byte-level BPE tokenizers: at most one per byte."""
    return len(text.encode("utf-8")) + TEMPLATE_OVERHEAD_TOKENS


@dataclass
class Teacher(ABC):
    """Base of every teacher. Subclasses set ``kind`` and implement :meth:`answer`."""

    name: str
    model: str
    prompt: str = "zero_shot_rationale"
    max_tokens: int = 256
    temperature: float = 0.0
    price: dict[str, float] | None = None
    prompt_options: dict[str, Any] = field(default_factory=dict)
    #: the model's context window in tokens, where known (a local model's ``n_ctx``); an input whose prompt and
    #: ``max_tokens`` do not fit is truncated or skipped as ``[data] too_long`` says, never sent to fail
    context_tokens: int | None = None

    kind = "abstract"
    #: whether the teacher's estimate of input tokens is exact (replay) rather than an upper bound
    exact_estimate = False
    #: whether a call cut off by a stopped process may have been billed (a provider's API); a model run in the
    #: process stops with it and bills nothing, so its cut calls are charged nothing
    billed_when_cut = True

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.model.strip():
            raise ConfigError(f"teacher {self.name}: model is empty; name the model it asks (e.g. model = "
                              f"\"gpt-4o-mini\", or a packaged one from `distilloop models`)")
        if self.max_tokens < 1:
            raise ConfigError(f"teacher {self.name}: max_tokens must be an integer >= 1 (the answer's token cap, "
                              f"which the budget reserves for the output), got {self.max_tokens!r}")
        if self.temperature < 0:
            raise ConfigError(f"teacher {self.name}: temperature must be a number >= 0, got {self.temperature!r}")
        self.style = get_style(self.prompt)
        self._price = Price.resolve(self.model, self.price, kind=self.kind)

    @property
    def requests_per_call(self) -> int:
        """Requests one call sends (self-consistency's ``samples``); the campaign's concurrency counts them."""
        return 1

    # -- rendering and accounting ------------------------------------------------------------------
    def render(self, item: LabelingItem) -> Prompt:
        """The prompt for ``item``: the teacher's style, or the label-only question when the campaign wants no
        rationale for the item and the style allows it (:attr:`PromptStyle.label_only_ok`)."""
        if not item.rationale and self.style.label_only_ok:
            return get_style("label_only").render(item)
        return self.style.render(item, **self.prompt_options)

    def request_hash(self, prompt: Prompt) -> str:
        """Identity of a paid request: same hash, same answer; looked up before anything is paid."""
        key = {"kind": self.kind, "model": self.model, "style": prompt.style, "version": prompt.version,
               "messages": prompt.messages, "max_tokens": self.max_tokens, "temperature": self.temperature,
               "extra": self.hash_extra()}
        return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def hash_extra(self) -> Any:
        return None

    def estimate(self, prompt: Prompt, example_id: str | None = None) -> Spend:
        """Upper bound of what answering ``prompt`` can cost; reserved before the call is sent."""
        tokens_in = upper_bound_tokens(prompt.text)
        return Spend(tokens_in, self.max_tokens, self._price.cost(tokens_in, self.max_tokens))

    def prompt_tokens(self, prompt: Prompt) -> int:
        """The prompt's tokens: an upper bound (one per byte) unless the teacher counts them exactly."""
        return upper_bound_tokens(prompt.text)

    def overflow(self, prompt: Prompt) -> int:
        """How many tokens the prompt and the answer's ``max_tokens`` run over the context window (0: it fits)."""
        if self.context_tokens is None:
            return 0
        if upper_bound_tokens(prompt.text) + self.max_tokens <= self.context_tokens:
            return 0  # surely fits: no token counting needed
        return max(0, self.prompt_tokens(prompt) + self.max_tokens - self.context_tokens)

    def expected(self, prompt: Prompt, example_id: str | None = None) -> Spend:
        """What a call is expected to cost (not its worst case): ~4 bytes a token in, a typical answer's length
        out (:meth:`typical_output_tokens`). Rounds are sized on it, and a call whose outcome is never known is
        charged it; :mod:`distilloop.loop.plan` corrects it with what the campaign's calls really used."""
        tokens_in = len(prompt.text.encode("utf-8")) // 4 + 16
        tokens_out = self.typical_output_tokens(prompt)
        return Spend(tokens_in, tokens_out, self._price.cost(tokens_in, tokens_out))

    def typical_output_tokens(self, prompt: Prompt) -> int:
        """A typical answer's tokens, at most ``max_tokens``: a label alone is a few, a label with a rationale
        about 60 (a sentence or two and the JSON around it), a worked numeric answer about 150."""
        typical = 12 if not self.style.gives_rationale or prompt.style == "label_only" else 150 if prompt.numeric else 60
        return max(1, min(self.max_tokens, typical))

    def bounded_usage(self, usage: Usage, prompt: Prompt, raw: str) -> Usage:
        """``usage`` as the server reported it; where it reported none (no usage in the response: a proxy, a
        server of one's own), an upper bound of what the call used, one token per byte of the prompt (with what
        the provider adds) and of the reply, so that the budget's caps still hold. Such calls were charged 0
        tokens and $0: a token cap never stopped the campaign."""
        if usage.tokens_in or usage.tokens_out:
            return usage
        if self.name not in _SAID_NO_USAGE:
            _SAID_NO_USAGE.add(self.name)
            log.warning("teacher %s: its server reports no token usage; each of its calls is charged at an upper bound "
                        "(one token per byte of the prompt and of the reply) so that the budget holds", self.name)
        tokens_in = self.estimate(prompt).tokens_in // max(1, self.requests_per_call)
        return Usage(tokens_in, max(1, min(self.max_tokens, len(raw.encode("utf-8")))))

    def cost(self, usage: Usage, *, batch: bool = False) -> float:
        return self._price.cost(usage.tokens_in, usage.tokens_out, cached=usage.cached_tokens,
                                cache_write=usage.cache_write_tokens, batch=batch)

    # -- answering ---------------------------------------------------------------------------------
    @abstractmethod
    async def answer(self, prompt: Prompt, item: LabelingItem) -> TeacherAnswer:
        """Send ``prompt`` and parse the reply; raise :class:`~distilloop.errors.TeacherError` on failure."""

    def slot(self, estimate: Spend) -> Any:
        """An async context manager held around each call: per-teacher concurrency and rate limits."""
        return no_limit()

    def pause(self, seconds: float) -> None:  # noqa: B027 - optional hook
        """Hold this teacher's new calls for ``seconds`` (a server's retry-after, capped by the retry policy)."""

    #: whether :meth:`recover` can find a call again at the provider (its answer lost to a timeout or a crash)
    can_recover = False

    async def recover(self, recovery_key: str, prompt: Prompt) -> TeacherAnswer | None:
        """The answer of the call sent under ``recovery_key``, if the provider kept it; None if it has none."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or models."""

    def describe(self) -> str:
        return f"{self.name} ({self.kind}: {self.model}, prompt {self.style.name} v{self.style.version})"


class _NoLimit:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def no_limit() -> _NoLimit:
    return _NoLimit()
