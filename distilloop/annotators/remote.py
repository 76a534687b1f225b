"""What the HTTP teachers (OpenAI, Anthropic, OpenAI-compatible servers) share.

* Keys come from the environment (``api_key_env``), are handed to the SDK client only, and are scrubbed
  from every error message (:func:`redact`); they are never a dataclass field, so never in a repr.
* The SDKs' own retries are off (``max_retries=0``): the ensemble retries, so every failed attempt is
  recorded on its call. SDK exceptions become :class:`~distilloop.errors.TeacherError` with ``retryable``
  set for 408/409/429/5xx/529, timeouts and connection errors, and ``retry_after`` read from the
  ``retry-after-ms`` / ``retry-after`` headers (the ensemble pauses the teacher's :class:`RateLimiter` for it,
  capped by its retry policy).
* Self-consistency (Wang et al. 2022, arXiv 2203.11171): with ``samples = n > 1`` each question is sampled
  n times at ``sample_temperature``; the label is the majority, its confidence the share of samples that
  gave it (``confidence_source = "self_consistency"``). This is the confidence of choice where a provider
  has no logprobs (Anthropic); the estimate and the bill are n times a single answer.
* Batch mode (``mode = "batch"``): the ensemble submits a round's questions as one provider batch at the
  batch price; see :mod:`distilloop.annotators.ensemble`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from distilloop.annotators.base import Teacher, upper_bound_tokens
from distilloop.annotators.parsing import parse_answer
from distilloop.annotators.prompts import Prompt
from distilloop.annotators.ratelimit import RateLimiter
from distilloop.annotators.sdk_errors import map_sdk_error
from distilloop.core.secrets import looks_like_key, redact
from distilloop.core.types import LabelingItem, Spend, TeacherAnswer, Usage
from distilloop.errors import ConfigError, InvalidAnswer, TeacherError

log = logging.getLogger(__name__)

#: what an environment variable's name looks like (``api_key_env`` names one; it never holds the key itself)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MODES = ("live", "batch")
CONFIDENCE = ("auto", "logprobs", "verbalized", "self_consistency", "none")


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def check_base_url(where: str, url: str, *, sends_key: bool) -> None:
    """``base_url`` is an http(s) URL, and a provider's key (``openai``, ``anthropic``) is never sent in clear text
    to another machine: a campaign file decides where the key goes, so plain ``http://`` is allowed to this
    machine only."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{where}: base_url must be an http(s) URL such as https://api.example.com/v1, got {url!r}")
    local = parsed.hostname in LOOPBACK or parsed.hostname.endswith((".localhost", ".test"))  # RFC 6761 names
    if parsed.scheme == "http" and sends_key and not local:
        raise ConfigError(f"{where}: base_url {url!r} would send the API key in clear text to {parsed.hostname}; "
                          "use https://, or a server on this machine (127.0.0.1)")


@dataclass
class BatchState:
    """A provider batch's state: ``running``, ``ended`` (results ready) or ``failed`` (none will come)."""

    status: str
    detail: str = ""


@dataclass
class RemoteTeacher(Teacher):
    """Base of the HTTP teachers. Options common to OpenAI and Anthropic (all keyword, from the config)."""

    base_url: str | None = None
    api_key_env: str = ""
    timeout_s: float = 60.0
    max_concurrency: int | None = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    mode: str = "live"
    batch_poll_s: float = 30.0
    batch_wait_s: float = 0.0
    samples: int = 1
    sample_temperature: float = 0.7
    confidence: str = "auto"
    http_client: Any = field(default=None, repr=False, compare=False)

    provider = "remote"
    default_key_env = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"teacher {self.name}"
        if self.mode not in MODES:
            raise ConfigError(f"{where}: mode must be one of {MODES}, got {self.mode!r}")
        if self.confidence not in CONFIDENCE:
            raise ConfigError(f"{where}: confidence must be one of {CONFIDENCE}, got {self.confidence!r}")
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise ConfigError(f"{where}: samples must be an integer >= 1, got {self.samples!r}")
        if self.confidence == "self_consistency" and self.samples < 2:
            raise ConfigError(f"{where}: confidence = \"self_consistency\" needs samples >= 2 (e.g. samples = 5), "
                              f"got samples = {self.samples}")
        if self.confidence == "verbalized" and not getattr(self.style, "asks_confidence", False):
            raise ConfigError(f"{where}: confidence = \"verbalized\" needs a prompt style that asks for a "
                              f"confidence (e.g. prompt = \"confidence_priming\"), got prompt = {self.prompt!r}")
        for key in ("timeout_s", "batch_poll_s"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise ConfigError(f"{where}: {key} must be a number > 0 (seconds), got {v!r}")
        if isinstance(self.batch_wait_s, bool) or not isinstance(self.batch_wait_s, int | float) or self.batch_wait_s < 0:
            raise ConfigError(f"{where}: batch_wait_s must be a number >= 0 (seconds), got {self.batch_wait_s!r}")
        if not self.api_key_env:
            self.api_key_env = self.default_key_env
        if self.base_url is not None:
            check_base_url(where, self.base_url, sends_key=self.kind in ("openai", "anthropic"))
        if not isinstance(self.api_key_env, str) or (self.api_key_env and not ENV_NAME.match(self.api_key_env)):
            shown = "a value that looks like an API key" if looks_like_key(str(self.api_key_env)) else \
                repr(redact(str(self.api_key_env)))
            self.api_key_env = self.default_key_env
            raise ConfigError(f"{where}: api_key_env must be the NAME of the environment variable that holds the "
                              f"key (e.g. api_key_env = \"{self.default_key_env or 'MY_SERVER_KEY'}\"), got {shown}; "
                              "never put the key itself in the campaign file")
        try:
            self.limiter = RateLimiter(max_concurrency=self.max_concurrency,
                                       requests_per_minute=self.requests_per_minute,
                                       tokens_per_minute=self.tokens_per_minute)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        self._sdk_client: Any = None

    # -- identity and accounting ---------------------------------------------------------------------
    @property
    def batch_mode(self) -> bool:
        return self.mode == "batch"

    def hash_extra(self) -> Any:
        # the answer depends on the server and the sampling, not on the transport, key or mode
        extra: dict[str, Any] = {"base_url": self.base_url}
        if self.samples > 1:
            extra.update(samples=self.samples, sample_temperature=self.sample_temperature)
        return extra

    def input_overhead_tokens(self, prompt: Prompt) -> int:
        """Tokens the provider adds to the prompt (a JSON schema, a tool definition); an upper bound."""
        return upper_bound_tokens(json.dumps(prompt.schema))

    def estimate(self, prompt: Prompt, example_id: str | None = None) -> Spend:
        """Upper bound: one token per byte of the prompt and its schema, ``max_tokens`` out, every input
        token at the dearest input rate (a cache write can cost more than plain input), times ``samples``;
        at the batch price in batch mode."""
        n = self.samples
        tokens_in = (upper_bound_tokens(prompt.text) + self.input_overhead_tokens(prompt)) * n
        tokens_out = self.max_tokens * n
        p = self._price
        rate_in = max(p.input, p.cache_write if p.cache_write is not None else p.input)
        usd = (tokens_in * rate_in + tokens_out * p.output) / 1e6
        if self.batch_mode:  # billed at the batch price, always
            usd *= p.batch_discount
        return Spend(tokens_in, tokens_out, usd)

    def expected(self, prompt: Prompt, example_id: str | None = None) -> Spend:
        one = super().expected(prompt, example_id)
        n = self.samples
        return Spend(one.tokens_in * n, one.tokens_out * n,
                     one.usd * n * (self._price.batch_discount if self.batch_mode else 1.0))

    @property
    def requests_per_call(self) -> int:
        return self.samples

    def slot(self, estimate: Spend) -> Any:
        return self.limiter.slot(estimate.tokens_in + estimate.tokens_out, requests=self.samples)

    # -- the client ----------------------------------------------------------------------------------
    def _api_key(self) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if not key:
            if self.base_url:
                return "no-key"  # a local OpenAI-compatible server takes any key; a real API answers 401
            raise TeacherError(f"teacher {self.name}: the environment variable {self.api_key_env} is not set; "
                               f"export the {self.provider} API key there (keys are read from the environment, "
                               "never from the campaign file), or set api_key_env", retryable=False)
        return key

    def client(self) -> Any:
        if self._sdk_client is None:
            self._sdk_client = self._make_client(self._api_key())
        return self._sdk_client

    def _make_client(self, key: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _error(self, exc: BaseException, sdk: Any) -> TeacherError:
        # the key is looked up again to scrub it, never kept on the teacher
        secret = os.environ.get(self.api_key_env) if self.api_key_env else None
        provider = f"{self.provider} at {self.base_url}" if self.base_url else self.provider  # one's own server
        return map_sdk_error(exc, sdk, teacher=self.name, provider=provider, secrets=(secret,),
                             timeout_s=self.timeout_s, key_env=self.api_key_env, key_set=bool(secret))

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def aclose(self) -> None:
        client, self._sdk_client = self._sdk_client, None
        if client is not None and self.http_client is None:  # a caller-provided http client is the caller's
            await client.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key_env={self.api_key_env!r}, mode={self.mode!r})")

    # -- answering -----------------------------------------------------------------------------------
    async def _answer_once(self, prompt: Prompt, temperature: float) -> TeacherAnswer:  # pragma: no cover
        raise NotImplementedError

    async def answer(self, prompt: Prompt, item: LabelingItem) -> TeacherAnswer:
        if self.samples == 1:
            ans = await self._answer_once(prompt, self.temperature)
            self.limiter.refund(ans.usage.tokens_in + ans.usage.tokens_out)
            return ans
        # the call holds limiter.permits(samples) of max_concurrency: no more samples than that in flight
        gate = asyncio.Semaphore(self.limiter.permits(self.samples))

        async def sample() -> TeacherAnswer:
            async with gate:
                return await self._answer_once(prompt, self.sample_temperature)

        results = await asyncio.gather(*(sample() for _ in range(self.samples)), return_exceptions=True)
        answers = [r for r in results if isinstance(r, TeacherAnswer)]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            err = errors[0] if isinstance(errors[0], TeacherError) else TeacherError(str(errors[0]), retryable=True)
            usage = _sum_usage(a.usage for a in answers)
            spend = Spend(usage.tokens_in, usage.tokens_out, self.cost(usage))
            lost = sum(1 for e in errors if getattr(e, "maybe_billed", False))
            if lost:  # samples the provider may have billed without an answer: at one sample's expected cost each
                err.maybe_billed = True
                one = Teacher.expected(self, prompt)
                spend = spend + Spend(one.tokens_in * lost, one.tokens_out * lost, one.usd * lost)
            err.spend = spend
            raise err
        combined = self.combine_samples(answers, prompt)
        self.limiter.refund(combined.usage.tokens_in + combined.usage.tokens_out)
        return combined

    def combine_samples(self, answers: list[TeacherAnswer], prompt: Prompt) -> TeacherAnswer:
        """Self-consistency: majority label over the valid samples, its share as the confidence."""
        usage = _sum_usage(a.usage for a in answers)
        raw = json.dumps([a.raw for a in answers], ensure_ascii=False)
        latency = max((a.latency_s for a in answers), default=0.0)
        valid = [a for a in answers if a.valid and a.label is not None]
        batch = any(a.batch for a in answers)
        if not valid:
            return TeacherAnswer(raw, None, None, None, usage, latency, valid=False, batch=batch,
                                 error=f"none of {len(answers)} samples gave a label from the set: "
                                       f"{answers[0].error if answers else ''}")
        counts = Counter(a.label for a in valid)
        order = {lab: i for i, lab in enumerate(prompt.labels)}
        label = max(counts, key=lambda lab: (counts[lab], -order.get(lab, 0)))  # type: ignore[arg-type]
        # numeric answers have no label set: the distribution is over the answers the samples gave
        support = prompt.labels or tuple(sorted(counts, key=lambda lab: -counts[lab]))  # type: ignore[arg-type]
        dist = {lab: counts.get(lab, 0) / len(answers) for lab in support}
        rationale = next(a.rationale for a in valid if a.label == label)
        return TeacherAnswer(raw, label, rationale, dist[str(label)], usage, latency, confidence_source="self_consistency",
                             distribution=dist, batch=batch)

    def finish(self, raw: str, parsed_obj: Any, usage: Usage, latency: float, prompt: Prompt,
               distribution: dict[str, float] | None, *, batch: bool = False, cut: bool = False) -> TeacherAnswer:
        """A parsed answer, or an invalid one (label outside the set, not JSON): still billed. ``cut``: the server
        stopped at ``max_tokens`` (a reasoning model spends them thinking before it answers)."""
        usage = self.bounded_usage(usage, prompt, raw)
        try:
            parsed = parse_answer(parsed_obj if isinstance(parsed_obj, dict) else raw, prompt.labels, prompt.answer,
                                  prompt.extra.get("student_steps"))
        except InvalidAnswer as exc:
            why = (f"{exc}; the answer was cut at max_tokens = {self.max_tokens}: raise this teacher's max_tokens (a "
                   "reasoning model spends tokens thinking before it answers)" if cut else str(exc))
            return TeacherAnswer(raw, None, None, None, usage, latency, valid=False, error=why, batch=batch)
        confidence, source = None, None
        use_logprobs = self.confidence in ("auto", "logprobs")
        if use_logprobs and distribution and parsed.label in distribution:
            confidence, source = distribution[parsed.label], "logprobs"
        elif self.confidence in ("auto", "verbalized") and parsed.confidence is not None:
            confidence, source = parsed.confidence, "verbalized"
        return TeacherAnswer(raw, parsed.label, parsed.rationale, confidence, usage, latency,
                             confidence_source=source, distribution=distribution if source == "logprobs" else None,
                             batch=batch)

    # -- batch mode (implemented per provider) ----------------------------------------------------------
    def custom_ids(self, key: str) -> list[str]:
        """The custom ids of one call in a batch (one per self-consistency sample), from its key."""
        return [key] if self.samples == 1 else [f"{key}s{k}" for k in range(self.samples)]

    async def submit_batch(self, calls: dict[str, Prompt], tag: str) -> str:  # pragma: no cover - per provider
        """Submit ``calls`` (by key) as one batch, tagged ``tag`` where the provider keeps a tag; its id."""
        raise NotImplementedError

    async def find_batch(self, tag: str, keys: list[str], since: str) -> str | None:  # pragma: no cover
        """The id of a batch submitted with ``tag`` (holding ``keys``) since ``since`` (ISO time), if the provider
        accepted one; None if it has none; ``"unknown"`` while a candidate is still running and cannot be told."""
        raise NotImplementedError

    async def poll_batch(self, batch_id: str) -> BatchState:  # pragma: no cover - per provider
        raise NotImplementedError

    async def fetch_batch(self, batch_id: str, calls: dict[str, Prompt]) -> dict[str, TeacherAnswer | TeacherError]:
        """Results of an ended batch per call key (self-consistency samples combined)."""
        by_custom = await self._fetch_batch_results(batch_id, calls)
        out: dict[str, TeacherAnswer | TeacherError] = {}
        for key, prompt in calls.items():
            got = [by_custom.get(cid) for cid in self.custom_ids(key)]
            answers = [g for g in got if isinstance(g, TeacherAnswer)]
            if len(answers) == len(got):
                out[key] = answers[0] if len(answers) == 1 else self.combine_samples(answers, prompt)
            else:
                err = next((g for g in got if isinstance(g, TeacherError)), None) or TeacherError(
                    f"teacher {self.name}: batch {batch_id} has no result for call {key}")
                usage = _sum_usage(a.usage for a in answers)
                err.spend = Spend(usage.tokens_in, usage.tokens_out, self.cost(usage, batch=True))
                out[key] = err
        return out

    async def _fetch_batch_results(self, batch_id: str,
                                   calls: dict[str, Prompt]) -> dict[str, TeacherAnswer | TeacherError]:
        raise NotImplementedError  # pragma: no cover


def _sum_usage(usages: Any) -> Usage:
    t_in = t_out = cached = written = 0
    for u in usages:
        t_in += u.tokens_in
        t_out += u.tokens_out
        cached += u.cached_tokens
        written += u.cache_write_tokens
    return Usage(t_in, t_out, cached, written)
