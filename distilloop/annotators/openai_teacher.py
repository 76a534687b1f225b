"""A teacher on the official ``openai`` SDK: OpenAI itself, or any OpenAI-compatible server via ``base_url``
(vLLM, llama.cpp's server, Ollama).

Structured output: chat completions with ``response_format`` json_schema (strict), or the Responses API
(``api = "responses"``). Servers without json_schema (llama.cpp's answers HTTP 500) are handled by
``structured = "auto"``: the first call tries json_schema, then ``json_object`` with the schema, then plain
prompt-and-parse; the first that works is remembered for the teacher's server and model (in this process).
Confidence: the probability of the label's first token among ``top_logprobs``, normalised over the label
set (:mod:`distilloop.annotators.logprobs`), where the server returns logprobs. Usage includes cached
prompt tokens (``prompt_tokens_details.cached_tokens``), billed at the cached-input rate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from distilloop._extras import require
from distilloop.annotators.logprobs import label_distribution
from distilloop.annotators.prompts import Prompt
from distilloop.annotators.remote import BatchState, RemoteTeacher
from distilloop.annotators.servers import ServerPool
from distilloop.core.types import TeacherAnswer, Usage
from distilloop.errors import ConfigError, TeacherError

log = logging.getLogger(__name__)

STRUCTURED = ("auto", "json_schema", "json_object", "prompt")
#: (base_url, model) -> the structured-output mode that worked there
_DETECTED: dict[tuple[str | None, str], str] = {}
#: statuses a server answers to a response_format it does not support
_UNSUPPORTED = {400, 404, 415, 422, 500, 501}


@dataclass
class OpenAITeacher(RemoteTeacher):
    """``kind = "openai"`` (or ``"openai_compatible"`` with a ``base_url``)."""

    api: str = "chat"
    structured: str = "auto"
    logprobs: bool = True
    top_logprobs: int = 5
    max_tokens_param: str | None = None

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
        self._probe_lock: asyncio.Lock | None = None

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
        return body

    async def _request(self, client: Any, body: dict[str, Any]) -> dict[str, Any]:
        """One request through ``client`` (SDK exceptions pass through)."""
        if self.api == "responses":
            resp = await client.responses.create(**body)
        else:
            resp = await client.chat.completions.create(**body)
        return resp.model_dump() if hasattr(resp, "model_dump") else dict(resp)

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
        if self._probe_lock is None:
            self._probe_lock = asyncio.Lock()
        async with self._probe_lock:  # the first call finds the mode; the others wait and reuse it
            mode = self.detected_mode
            if mode is not None:
                return await self._call(prompt, mode, temperature)
            return await self._probe(prompt, temperature)

    async def _probe(self, prompt: Prompt, temperature: float) -> TeacherAnswer:
        modes = self._modes()
        for i, mode in enumerate(modes):
            last = i == len(modes) - 1
            for attempt in range(2):
                try:
                    ans = await self._call(prompt, mode, temperature)
                except TeacherError as exc:
                    if last or exc.status not in _UNSUPPORTED:
                        raise
                    if exc.status and exc.status >= 500 and attempt == 0:
                        continue  # a 5xx may be transient: the same mode once more before giving it up
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
                msg = choice.get("message") or {}
                text = msg.get("content") or ""
                if not text and msg.get("refusal"):
                    text = f"[refusal] {msg['refusal']}"
                tokens = ((choice.get("logprobs") or {}).get("content")) or None
                u = data.get("usage") or {}
                usage = Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0),
                              int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0))
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise TeacherError(f"teacher {self.name}: unexpected response shape from {self.provider}: {exc!r}",
                               retryable=True) from None
        dist = label_distribution(tokens, text, prompt.labels) if self.logprobs and not prompt.numeric else None
        return self.finish(text, None, usage, latency, prompt, dist, batch=batch)

    # -- batch mode: /v1/files + /v1/batches ----------------------------------------------------------
    async def submit_batch(self, calls: dict[int, Prompt]) -> str:
        mode = self.detected_mode or self._modes()[0]
        endpoint = "/v1/responses" if self.api == "responses" else "/v1/chat/completions"
        temperature = self.sample_temperature if self.samples > 1 else self.temperature
        lines = []
        for call_id, prompt in calls.items():
            body = self.request_body(prompt, mode, temperature)
            for cid in self.custom_ids(call_id):
                lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": endpoint, "body": body}))
        client = self.client()
        try:
            f = await client.files.create(file=("distilloop-batch.jsonl", ("\n".join(lines) + "\n").encode()),
                                          purpose="batch")
            batch = await client.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h")
        except Exception as exc:
            raise self._error(exc, self._sdk) from None
        return batch.id

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

    async def _fetch_batch_results(self, batch_id: str, calls: dict[int, Prompt]) -> dict[str, Any]:
        by_cid = {cid: prompt for call_id, prompt in calls.items() for cid in self.custom_ids(call_id)}
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


@dataclass
class OpenAICompatibleTeacher(OpenAITeacher):
    """``kind = "openai_compatible"``: an OpenAI-compatible server of your own (vLLM, llama.cpp, Ollama).

    ``base_url`` is required (ending in ``/v1``); no key is needed unless ``api_key_env`` names one; the price
    is zero unless given (a local server costs no dollars; its tokens still count against the budget).

    ``base_urls`` instead lists several servers of the same model (one per GPU node): calls are spread over
    them (:class:`~distilloop.annotators.servers.ServerPool`) under the teacher's one rate limiter and the
    campaign's one budget. A call whose server cannot be reached goes to the next server within the same
    recorded call (no answer came back, so nothing was paid); the dead server is tried again after
    ``server_retry_s`` seconds (doubling while it stays dead). When none can be reached the call fails as
    retryable and the ensemble retries it after the first server's wait.
    """

    api_key_env: str = ""
    base_urls: list[str] = field(default_factory=list)
    server_retry_s: float = 30.0

    kind = "openai_compatible"
    provider = "the OpenAI-compatible server"
    default_key_env = ""

    def __post_init__(self) -> None:
        where = f"teacher {self.name}"
        urls = self.base_urls
        if urls:
            if not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith("http") for u in urls):
                raise ConfigError(f"{where}: base_urls must be a list of server URLs, e.g. base_urls = "
                                  f"[\"http://10.0.0.1:8080/v1\", \"http://10.0.0.2:8080/v1\"], got {urls!r}")
            if len(set(urls)) != len(urls):
                raise ConfigError(f"{where}: base_urls names a server twice ({urls}); list each once")
            if self.base_url:
                raise ConfigError(f"{where}: give base_url (one server) or base_urls (several), not both")
            if self.mode == "batch":
                raise ConfigError(f"{where}: base_urls spreads live calls over servers; batch mode is for "
                                  "a provider's batch API: set mode = \"live\"")
            self.base_url = urls[0]
        if not self.base_url:
            raise ConfigError(f"{where}: an openai_compatible teacher needs base_url, e.g. "
                              "base_url = \"http://127.0.0.1:8080/v1\" (or base_urls for several servers)")
        r = self.server_retry_s
        if isinstance(r, bool) or not isinstance(r, int | float) or r <= 0:
            raise ConfigError(f"{where}: server_retry_s must be a number > 0 (seconds), got {r!r}")
        if self.price is None:
            self.price = {"input": 0.0, "output": 0.0}
        super().__post_init__()
        self.pool = ServerPool(urls or [self.base_url], retry_s=float(r))
        self._clients: dict[str, Any] = {}

    def hash_extra(self) -> Any:
        extra = super().hash_extra()
        if self.base_urls:  # replicas: the answer does not depend on which server gave it
            extra["base_url"] = sorted(self.base_urls)
        return extra

    def _client_for(self, url: str) -> Any:
        if url == self.base_url:
            return self.client()
        if url not in self._clients:
            openai = require("openai", "openai", purpose=f"teacher {self.name}")
            self._clients[url] = openai.AsyncOpenAI(api_key=self._api_key(), base_url=url, max_retries=0,
                                                    timeout=self.timeout_s, http_client=self.http_client)
        return self._clients[url]

    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.base_urls:
            return await super()._send(body)
        sdk = self._sdk
        for url in self.pool.candidates():
            self.pool.begin(url)
            try:
                data = await self._request(self._client_for(url), body)
            except sdk.APIConnectionError as exc:  # refused, dropped or timed out: no answer, nothing billed
                self.pool.end(url, ok=False, error=f"{type(exc).__name__}: {exc.__cause__ or exc}")
                continue
            except TeacherError:
                self.pool.end(url, ok=True)
                raise
            except Exception as exc:  # the server answered (an HTTP error, a bad body): it is up
                self.pool.end(url, ok=True)
                raise self._error(exc, sdk) from None
            self.pool.end(url, ok=True)
            return data
        err = TeacherError(f"teacher {self.name}: none of its {len(self.base_urls)} servers can be reached "
                           f"({self.pool.describe()}); the call is retried when the first is due again",
                           retryable=True)
        err.retry_after = max(0.5, self.pool.retry_in())  # type: ignore[attr-defined]
        raise err

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        if self.http_client is None:
            for c in clients.values():
                await c.close()
        await super().aclose()
