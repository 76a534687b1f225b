"""A teacher on the official ``openai`` SDK: OpenAI itself, or any OpenAI-compatible server via ``base_url``
(vLLM, llama.cpp's server, Ollama).

Structured output: chat completions with ``response_format`` json_schema (strict), or the Responses API
(``api = "responses"``). Servers without json_schema (llama.cpp's answers HTTP 500) are handled by
``structured = "auto"``: the first call tries json_schema, then ``json_object`` with the schema, then plain
prompt-and-parse; the first that works is remembered for the teacher's server and model (in this process).
Confidence: the probability of the label's first token among ``top_logprobs``, normalised over the label
set (labels that begin alike told apart further on: :mod:`distilloop.annotators.logprobs`), where the server
returns logprobs. Usage includes cached
prompt tokens (``prompt_tokens_details.cached_tokens``), billed at the cached-input rate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from distilloop._extras import require
from distilloop.annotators.base import CALL_KEY
from distilloop.annotators.logprobs import label_distribution
from distilloop.annotators.prompts import Prompt
from distilloop.annotators.remote import BatchState, RemoteTeacher
from distilloop.annotators.sdk_errors import response_dict, shape_error
from distilloop.core.types import TeacherAnswer, Usage
from distilloop.errors import ConfigError, TeacherError

log = logging.getLogger(__name__)

STRUCTURED = ("auto", "json_schema", "json_object", "prompt")
#: (base_url, model) -> the structured-output mode that worked there
_DETECTED: dict[tuple[str | None, str], str] = {}
#: statuses a server answers to a response_format it does not support (a 5xx only when it says so)
_UNSUPPORTED = {400, 404, 415, 422, 500, 501}
_SAYS_UNSUPPORTED = re.compile(r"response_format|json_schema|json_object|schema|not supported|unsupported", re.I)
#: the metadata key a batch is tagged with, to find it again after a stop between submitting and recording it
SUBMISSION_TAG = "distilloop_submission"
#: the metadata key a stored chat completion carries its call's key under
CALL_METADATA = "distilloop_call"


def unsupported(exc: TeacherError) -> bool:
    """Whether a failed probe says the server does not support the structured-output mode it was sent: a 4xx
    does; a 5xx only when its message names the format (llama.cpp's server answers 500 to json_schema), since a
    5xx is otherwise transient and must not downgrade the mode for good."""
    if exc.status not in _UNSUPPORTED:
        return False
    return exc.status is not None and (exc.status < 500 or _SAYS_UNSUPPORTED.search(str(exc)) is not None)


@dataclass
class OpenAITeacher(RemoteTeacher):
    """``kind = "openai"`` (or ``"openai_compatible"`` with a ``base_url``)."""

    api: str = "chat"
    structured: str = "auto"
    logprobs: bool = True
    top_logprobs: int = 5
    max_tokens_param: str | None = None
    store: bool = False

    kind = "openai"
    provider = "OpenAI"
    default_key_env = "OPENAI_API_KEY"

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"teacher {self.name}"
        if self.api not in ("chat", "responses"):
            raise ConfigError(f"{where}: api must be \"chat\" or \"responses\", got {self.api!r}")
        if self.structured not in STRUCTURED:
            raise ConfigError(f"{where}: structured must be one of {STRUCTURED}, got {self.structured!r}")
        if not isinstance(self.top_logprobs, int) or not 0 <= self.top_logprobs <= 20:
            raise ConfigError(f"{where}: top_logprobs must be an integer in [0, 20], got {self.top_logprobs!r}")
        if self.max_tokens_param not in (None, "max_tokens", "max_completion_tokens"):
            raise ConfigError(f"{where}: max_tokens_param must be \"max_tokens\" or \"max_completion_tokens\"")
        if self.api == "responses" and self.structured in ("json_object",):
            raise ConfigError(f"{where}: structured = \"json_object\" is for chat completions; the Responses API "
                              "uses json_schema")
        self._probe_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    # -- the client --------------------------------------------------------------------------------------
    def _make_client(self, key: str) -> Any:
        openai = require("openai", "openai", purpose=f"teacher {self.name}")
        return openai.AsyncOpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s,
                                  http_client=self.http_client)

    @property
    def _sdk(self) -> Any:
        return require("openai", "openai")

    # -- structured-output mode ----------------------------------------------------------------------
    def _modes(self) -> list[str]:
        if self.structured != "auto":
            return [self.structured]
        if self.api == "responses":
            return ["json_schema", "prompt"]
        return ["json_schema", "json_object", "prompt"]

    @property
    def detected_mode(self) -> str | None:
        if self.structured != "auto":
            return self.structured
        return _DETECTED.get((self.base_url, self.model + ":" + self.api))

    def _remember(self, mode: str) -> None:
        if self.structured == "auto":
            _DETECTED[(self.base_url, self.model + ":" + self.api)] = mode

    # -- request bodies ------------------------------------------------------------------------------
    def request_body(self, prompt: Prompt, mode: str, temperature: float) -> dict[str, Any]:
        """The JSON body of one request (the same for live calls and batch lines)."""
        if self.api == "responses":
            body: dict[str, Any] = {"model": self.model, "instructions": prompt.system,
                                    "input": [{"role": "user", "content": prompt.user}],
                                    "max_output_tokens": self.max_tokens, "temperature": temperature}
            if mode == "json_schema":
                body["text"] = {"format": {"type": "json_schema", "name": "answer", "schema": prompt.schema,
                                           "strict": True}}
            if self.logprobs and self.top_logprobs:
                body["include"] = ["message.output_text.logprobs"]
                body["top_logprobs"] = self.top_logprobs
            return body
        param = self.max_tokens_param or ("max_completion_tokens" if self.base_url is None else "max_tokens")
        body = {"model": self.model, "messages": prompt.messages, param: self.max_tokens, "temperature": temperature}
        if mode == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": prompt.schema, "strict": True}}
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": prompt.schema}
        if self.logprobs:
            body["logprobs"] = True
            if self.top_logprobs:
                body["top_logprobs"] = self.top_logprobs
        key = CALL_KEY.get()
        if self.store and key:  # kept by OpenAI under the call's key: a lost answer is found, not bought again
            body["store"] = True
            body["metadata"] = {CALL_METADATA: key}
        return body

    # -- finding a call again --------------------------------------------------------------------------
    @property
    def can_recover(self) -> bool:  # type: ignore[override]
        return self.store and self.api == "chat" and self.samples == 1 and not self.batch_mode

    async def recover(self, recovery_key: str, prompt: Prompt) -> TeacherAnswer | None:
        """The stored chat completion sent under ``recovery_key`` (``store = true``), if OpenAI has it."""
        try:
            page = await self.client().chat.completions.list(metadata={CALL_METADATA: recovery_key}, limit=1)
            async for completion in page:
                return self.parse_response(completion.model_dump(), prompt, 0.0)
        except TeacherError:
            raise
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return None
    async def _request(self, client: Any, body: dict[str, Any]) -> dict[str, Any]:
        """One request through ``client`` (SDK exceptions pass through)."""
        if self.api == "responses":
            resp = await client.responses.create(**body)
        else:
            resp = await client.chat.completions.create(**body)
        return response_dict(resp)

    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._request(self.client(), body)
        except TeacherError:
            raise
        except Exception as exc:  # every SDK or transport failure becomes a recorded TeacherError
            raise self._error(exc, self._sdk) from None

    # -- answering -----------------------------------------------------------------------------------
    async def _answer_once(self, prompt: Prompt, temperature: float) -> TeacherAnswer:
        mode = self.detected_mode
        if mode is not None:
            return await self._call(prompt, mode, temperature)
        loop = asyncio.get_running_loop()
        if self._probe_lock is None or self._probe_lock[0] is not loop:  # a lock belongs to one event loop (round)
            self._probe_lock = (loop, asyncio.Lock())
        async with self._probe_lock[1]:  # the first call finds the mode; the others wait and reuse it
            mode = self.detected_mode
            if mode is not None:
                return await self._call(prompt, mode, temperature)
            return await self._probe(prompt, temperature)

    async def _probe(self, prompt: Prompt, temperature: float) -> TeacherAnswer:
        modes = self._modes()
        for i, mode in enumerate(modes):
            last = i == len(modes) - 1
            for _ in range(1):
                try:
                    ans = await self._call(prompt, mode, temperature)
                except TeacherError as exc:
                    if last or not unsupported(exc):
                        raise  # a transient failure says nothing about the mode: it stays unknown, probed again
                    log.info("teacher %s: %s structured output not supported by the server (%s); trying %s",
                             self.name, mode, exc.status, modes[i + 1])
                    break
                self._remember(mode)
                if mode != modes[0]:
                    log.warning("teacher %s: the server does not support %s; using %s from now on",
                                self.name, modes[0], mode)
                return ans
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, prompt: Prompt, mode: str, temperature: float) -> TeacherAnswer:
        started = time.perf_counter()
        data = await self._send(self.request_body(prompt, mode, temperature))
        return self.parse_response(data, prompt, time.perf_counter() - started)

    def parse_response(self, data: dict[str, Any], prompt: Prompt, latency: float, *,
                       batch: bool = False) -> TeacherAnswer:
        """A chat completion or a Responses object (as JSON) into a TeacherAnswer."""
        try:
            if data.get("object") == "response" or "output" in data:
                text, tokens = "", None
                cut = (data.get("incomplete_details") or {}).get("reason") == "max_output_tokens"
                for out in data.get("output") or []:
                    for part in out.get("content") or []:
                        if part.get("type") == "output_text":
                            text += part.get("text") or ""
                            tokens = part.get("logprobs") or tokens
                u = data.get("usage") or {}
                usage = Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0),
                              int((u.get("input_tokens_details") or {}).get("cached_tokens") or 0))
            else:
                choice = data["choices"][0]
                cut = choice.get("finish_reason") == "length"
                msg = choice.get("message") or {}
                text = msg.get("content") or ""
                if not text and msg.get("refusal"):
                    text = f"[refusal] {msg['refusal']}"
                tokens = ((choice.get("logprobs") or {}).get("content")) or None
                u = data.get("usage") or {}
                usage = Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0),
                              int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0))
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise shape_error(self.name, self.provider, data, exc) from None
        dist = label_distribution(tokens, text, prompt.labels) if self.logprobs and not prompt.numeric else None
        return self.finish(text, None, usage, latency, prompt, dist, batch=batch, cut=cut)

    # -- batch mode: /v1/files + /v1/batches ----------------------------------------------------------
    async def submit_batch(self, calls: dict[str, Prompt], tag: str) -> str:
        mode = self.detected_mode or self._modes()[0]
        endpoint = "/v1/responses" if self.api == "responses" else "/v1/chat/completions"
        temperature = self.sample_temperature if self.samples > 1 else self.temperature
        lines = []
        for key, prompt in calls.items():
            body = self.request_body(prompt, mode, temperature)
            for cid in self.custom_ids(key):
                lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": endpoint, "body": body}))
        client = self.client()
        try:
            f = await client.files.create(file=("distilloop-batch.jsonl", ("\n".join(lines) + "\n").encode()),
                                          purpose="batch")
            batch = await client.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h",
                                                metadata={SUBMISSION_TAG: tag})
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return batch.id

    async def find_batch(self, tag: str, keys: list[str], since: str) -> str | None:
        """The batch tagged ``tag`` in its metadata, among the newest batches of the account (newest first)."""
        try:
            page = await self.client().batches.list(limit=100)
            async for b in page:
                if (getattr(b, "metadata", None) or {}).get(SUBMISSION_TAG) == tag:
                    return str(b.id)
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return None

    async def poll_batch(self, batch_id: str) -> BatchState:
        try:
            b = await self.client().batches.retrieve(batch_id)
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        if b.status == "completed":
            return BatchState("ended")
        if b.status in ("failed", "expired", "cancelled"):  # an expired batch keeps what it finished
            return BatchState("ended" if b.output_file_id else "failed", b.status)
        return BatchState("running", b.status)

    async def _file_lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        content = await self.client().files.content(file_id)
        text = content.text if hasattr(content, "text") else content.read().decode()
        return [json.loads(x) for x in text.splitlines() if x.strip()]

    async def _fetch_batch_results(self, batch_id: str, calls: dict[str, Prompt]) -> dict[str, Any]:
        by_cid = {cid: prompt for key, prompt in calls.items() for cid in self.custom_ids(key)}
        try:
            b = await self.client().batches.retrieve(batch_id)
            lines = await self._file_lines(b.output_file_id) + await self._file_lines(b.error_file_id)
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        out: dict[str, Any] = {}
        for line in lines:
            cid = line.get("custom_id")
            if cid not in by_cid:
                continue
            resp = line.get("response") or {}
            if resp.get("status_code") == 200 and resp.get("body"):
                try:
                    out[cid] = self.parse_response(resp["body"], by_cid[cid], 0.0, batch=True)
                except TeacherError as exc:
                    out[cid] = exc
            else:
                detail = line.get("error") or (resp.get("body") or {}).get("error") or resp
                out[cid] = TeacherError(f"teacher {self.name}: batch {batch_id} request {cid} failed: "
                                        f"{json.dumps(detail)[:300]}", retryable=True, status=resp.get("status_code"))
        return out
