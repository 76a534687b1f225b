"""A teacher on the official ``anthropic`` SDK (Claude).

Structured output through a forced tool call (``structured = "tool"``: the answer is the tool's input,
validated against the prompt's JSON schema) or the JSON output format (``structured = "json_schema"``:
``output_config={"format": {"type": "json_schema", ...}}``), or prompt-and-parse (``"prompt"``).

Prompt caching: the shared instruction prefix (tools + system message, which holds the task's instructions
and any few-shot examples) is marked ``cache_control: ephemeral``; the usage's cache-creation and cache-read
tokens are recorded on the call and billed at their own rates (``Price.cache_write`` / ``cached_input``).
Anthropic only caches prefixes above a model-specific minimum length (1-4k tokens), so short prompts show
no cache tokens.

The Messages API of the current SDK takes no ``temperature``: the teacher's ``temperature`` and
``sample_temperature`` are not sent (self-consistency samples at the API's default sampling).

Anthropic returns no logprobs: the confidence is verbalized (a prompt style that asks for one, e.g.
``confidence_priming``) or self-consistency over ``samples`` answers; ``confidence_source`` says which.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from distilloop._extras import require
from distilloop.annotators.prompts import Prompt
from distilloop.annotators.remote import BatchState, RemoteTeacher
from distilloop.annotators.sdk_errors import response_dict, shape_error
from distilloop.core.types import TeacherAnswer, Usage
from distilloop.errors import ConfigError, TeacherError

TOOL_NAME = "record_label"
#: the system prompt Anthropic adds for tool use plus the tool's framing, in tokens (generous)
TOOL_OVERHEAD_TOKENS = 600


@dataclass
class AnthropicTeacher(RemoteTeacher):
    """``kind = "anthropic"``."""

    structured: str = "tool"
    cache_prompt: bool = True

    kind = "anthropic"
    provider = "Anthropic"
    default_key_env = "ANTHROPIC_API_KEY"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.structured not in ("tool", "json_schema", "prompt"):
            raise ConfigError(f"teacher {self.name}: structured must be \"tool\", \"json_schema\" or \"prompt\", "
                              f"got {self.structured!r}")
        if self.confidence == "logprobs":
            raise ConfigError(f"teacher {self.name}: Anthropic returns no logprobs; use confidence = "
                              "\"verbalized\" (with prompt = \"confidence_priming\") or \"self_consistency\" "
                              "(with samples >= 2)")

    def _make_client(self, key: str) -> Any:
        anthropic = require("anthropic", "anthropic", purpose=f"teacher {self.name}")
        return anthropic.AsyncAnthropic(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s,
                                        http_client=self.http_client)

    @property
    def _sdk(self) -> Any:
        return require("anthropic", "anthropic")

    def input_overhead_tokens(self, prompt: Prompt) -> int:
        extra = TOOL_OVERHEAD_TOKENS if self.structured == "tool" else 0
        return super().input_overhead_tokens(prompt) + extra

    def hash_extra(self) -> Any:
        return {**super().hash_extra(), "structured": self.structured}

    # -- requests ------------------------------------------------------------------------------------
    def request_params(self, prompt: Prompt, temperature: float) -> dict[str, Any]:
        system: Any = prompt.system
        if self.cache_prompt:
            system = [{"type": "text", "text": prompt.system, "cache_control": {"type": "ephemeral"}}]
        # the current Messages API takes no temperature (the SDK has none): samples differ at its default
        params: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, "system": system, "messages": [{"role": "user", "content": prompt.user}]}
        if self.structured == "tool":
            params["tools"] = [{"name": TOOL_NAME, "description": "Record the label chosen for the example and "
                                "the reasoning behind it.", "input_schema": prompt.schema}]
            params["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        elif self.structured == "json_schema":
            params["output_config"] = {"format": {"type": "json_schema", "schema": prompt.schema}}
        return params

    async def _answer_once(self, prompt: Prompt, temperature: float) -> TeacherAnswer:
        started = time.perf_counter()
        try:
            msg = await self.client().messages.create(**self.request_params(prompt, temperature))
            data = response_dict(msg)
        except TeacherError:
            raise
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return self.parse_message(data, prompt, time.perf_counter() - started)

    def parse_message(self, data: dict[str, Any], prompt: Prompt, latency: float, *,
                      batch: bool = False) -> TeacherAnswer:
        try:
            obj, text = None, ""
            for block in data.get("content") or []:
                if block.get("type") == "tool_use" and block.get("name") == TOOL_NAME:
                    obj = block.get("input")
                elif block.get("type") == "text":
                    text += block.get("text") or ""
            u = data["usage"]
            written = int(u.get("cache_creation_input_tokens") or 0)
            read = int(u.get("cache_read_input_tokens") or 0)
            usage = Usage(int(u.get("input_tokens") or 0) + written + read, int(u.get("output_tokens") or 0),
                          cached_tokens=read, cache_write_tokens=written)
        except (KeyError, TypeError, AttributeError) as exc:
            raise shape_error(self.name, "Anthropic", data, exc) from None
        raw = json.dumps(obj, ensure_ascii=False) if isinstance(obj, dict) else text
        if data.get("stop_reason") == "refusal" and not isinstance(obj, dict):  # as OpenAI's message.refusal reads
            raw = f"[refusal] {text}".strip()
        return self.finish(raw, obj if isinstance(obj, dict) else None, usage, latency, prompt, None, batch=batch,
                           cut=data.get("stop_reason") == "max_tokens")

    # -- batch mode: Message Batches --------------------------------------------------------------------
    async def submit_batch(self, calls: dict[str, Prompt], tag: str) -> str:
        temperature = self.sample_temperature if self.samples > 1 else self.temperature
        requests = [{"custom_id": cid, "params": self.request_params(prompt, temperature)}
                    for key, prompt in calls.items() for cid in self.custom_ids(key)]
        try:
            batch = await self.client().messages.batches.create(requests=requests)
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return batch.id

    async def poll_batch(self, batch_id: str) -> BatchState:
        try:
            b = await self.client().messages.batches.retrieve(batch_id)
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return BatchState("ended" if b.processing_status == "ended" else "running", b.processing_status)

    async def find_batch(self, tag: str, keys: list[str], since: str) -> str | None:
        """Message batches keep no tag: a batch created since ``since`` is ours when its results carry our custom
        ids, which shows only once it has ended (``"unknown"`` until then)."""
        wanted = {cid for key in keys for cid in self.custom_ids(key)}
        earliest = datetime.fromisoformat(since) - timedelta(minutes=10)  # the provider's clock is not ours
        running = False
        try:
            page = await self.client().messages.batches.list(limit=100)
            async for b in page:  # newest first
                created = b.created_at if isinstance(b.created_at, datetime) else datetime.fromisoformat(b.created_at)
                if created.tzinfo is None:
                    created = created.replace(tzinfo=UTC)
                if created < earliest:
                    break
                if b.processing_status != "ended":
                    b = await self.client().messages.batches.retrieve(b.id)  # its state now
                if b.processing_status != "ended":
                    running = True
                    continue
                async for entry in await self.client().messages.batches.results(b.id):
                    if entry.custom_id in wanted:
                        return str(b.id)
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return "unknown" if running else None

    async def _fetch_batch_results(self, batch_id: str, calls: dict[str, Prompt]) -> dict[str, Any]:
        by_cid = {cid: prompt for key, prompt in calls.items() for cid in self.custom_ids(key)}
        out: dict[str, Any] = {}
        try:
            async for entry in await self.client().messages.batches.results(batch_id):
                row = entry.model_dump()
                cid, result = row.get("custom_id"), row.get("result") or {}
                if cid not in by_cid:
                    continue
                if result.get("type") == "succeeded":
                    try:
                        out[cid] = self.parse_message(result["message"], by_cid[cid], 0.0, batch=True)
                    except TeacherError as exc:
                        out[cid] = exc
                else:
                    out[cid] = TeacherError(f"teacher {self.name}: batch {batch_id} request {cid} "
                                            f"{result.get('type')}: {json.dumps(result.get('error'))[:300]}",
                                            retryable=True)
        except TeacherError:
            raise
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return out
