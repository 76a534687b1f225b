"""The ``Teacher`` contract: a labeler that answers a prompt with a label from the label set and a rationale.

Cloud teachers (OpenAI, Anthropic), an OpenAI-compatible local server, an in-process local LLM and the
replay teacher all implement it. The ensemble (:mod:`distilloop.annotators.ensemble`) owns caching by
request hash, the budget and the store; a teacher only renders, estimates, prices and answers.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from distilloop.annotators.pricing import Price
from distilloop.annotators.prompts import Prompt, get_style
from distilloop.core.types import LabelingItem, Spend, TeacherAnswer, Usage

#: tokens added by chat templates around the messages (role markers, special tokens); generous on purpose
TEMPLATE_OVERHEAD_TOKENS = 64


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

    def __post_init__(self) -> None:
        self.style = get_style(self.prompt)
        self._price = Price.resolve(self.model, self.price, kind=self.kind)

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

    def expected(self, prompt: Prompt) -> Spend:
        """A realistic (not worst-case) estimate for pre-flight reports: ~4 bytes a token, half the output."""
        tokens_in = len(prompt.text.encode("utf-8")) // 4 + 16
        tokens_out = max(1, self.max_tokens // 2)
        return Spend(tokens_in, tokens_out, self._price.cost(tokens_in, tokens_out))

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
