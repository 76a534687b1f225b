"""A wire-compatible fake of the OpenAI and Anthropic HTTP APIs, for tests and benchmarks without network.

It answers what distilloop's teachers send through the real ``openai`` and ``anthropic`` SDKs:

* OpenAI: ``POST /v1/chat/completions`` (``response_format`` json_schema / json_object, ``logprobs`` and
  ``top_logprobs``, cached-token usage, ``store`` and ``metadata``), ``GET /v1/chat/completions``,
  ``POST /v1/responses``, ``POST /v1/files``, ``GET /v1/files/{id}/content``, ``POST /v1/batches`` (with
  ``metadata``), ``GET /v1/batches``, ``GET /v1/batches/{id}``.
* Anthropic: ``POST /v1/messages`` (tool use, ``output_config`` JSON schema, ``cache_control`` with
  cache-creation and cache-read usage), ``POST /v1/messages/batches``, ``GET /v1/messages/batches``,
  ``GET /v1/messages/batches/{id}`` and its ``results_url`` (absolute, as the real API gives it).

Faults can be injected on the generation endpoints: ``429`` (with ``retry-after`` and ``retry-after-ms``),
``429_bare`` (without), ``500``, ``529`` (Anthropic overloaded; 503 on the OpenAI paths), ``timeout`` (the
answer is generated and billed but held ``timeout_hold_s``, past the client's timeout), ``malformed_json``
(a 200 whose body is cut in half), ``empty_content`` (a 200 with no text), ``bad_content`` (the model's text
is not JSON), ``keyed_lines`` (the answer as ``**Label:** ...`` lines, not JSON), ``bad_label`` (a label outside the set), ``disconnect`` (the answer is generated and billed,
then the connection drops), ``html_page`` (a 200 of HTML: a proxy's login page), ``error_200`` (a 200 whose
JSON is an error, as some gateways send) and ``cut`` (no text, every max_tokens spent: a reasoning model that
thought until the cap; finish_reason "length", stop_reason "max_tokens", status "incomplete"). ``latency_s``
delays every generation answer. :attr:`FakeLLMAPI.bills` records every generation the fake billed (its
usage, model, example text and fault), what a provider's invoice would list. Chat completions sent with
``store: true`` are kept and listed by metadata (``GET /v1/chat/completions?metadata[k]=v``), and both batch
APIs list their batches, as the real ones do.

Use it in-process as an ``httpx2.MockTransport`` (:meth:`FakeLLMAPI.async_transport`) passed through a
teacher's ``http_client=``, or served on 127.0.0.1 by :func:`distilloop.testing.fake_http.serve`.
The model's "decision" is :attr:`FakeLLMAPI.labeler` (by default: the first label whose name occurs in the
example text, else a stable hash of the text), so tests know the right answer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distilloop.testing.fake_api.anthropic import AnthropicRoutes
from distilloop.testing.fake_api.base import (
    _ALLOWED,
    _EXAMPLE,
    FAULT_KINDS,
    GENERATION_PATHS,
    FakeResponse,
    Generation,
    approx_tokens,
    default_labeler,
    default_solver,
)
from distilloop.testing.fake_api.openai import OpenAIRoutes


class FakeLLMAPI(OpenAIRoutes, AnthropicRoutes):
    """The fake's state and behaviour; thread-safe, so the threaded server can share one instance."""

    def __init__(self, *, api_key: str = "sk-fake-test-key-0123456789", latency_s: float = 0.0,
                 labeler: Callable[[str, Sequence[str]], str] | None = None,
                 faults: Sequence[str | None] | None = None, fault_rate: float = 0.0,
                 fault_kinds: Sequence[str] = ("429", "500", "malformed_json", "bad_label"), seed: int = 0,
                 retry_after_s: float = 0.01, supports_json_schema: bool = True, supports_responses: bool = True,
                 supports_batches: bool = True, hold_batches: bool = False, batch_ready_after_polls: int = 1,
                 confidence: float = 0.8, solver: Callable[[str], float] | None = None,
                 base_url: str | None = None, timeout_hold_s: float = 5.0, prompt_cache: bool = True,
                 overbill_tokens: int = 0, disagree: float = 0.0) -> None:
        bad = [k for k in (*fault_kinds, *(f for f in faults or () if f)) if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kind(s) {bad}; choose from {FAULT_KINDS}")
        self.api_key = api_key
        self.latency_s = latency_s
        self.labeler = labeler or default_labeler
        #: the share of (model, example) pairs answered with another label than the labeler's, the same each time it
        #: is asked: two "models" then disagree on some items, as real teachers do (and those go to review)
        self.disagree = disagree
        self.solver = solver or default_solver  # answers numeric questions (schemas with a number "answer")
        self.faults = list(faults or [])  # consumed first, one per generation request (None: no fault)
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.rng = np.random.default_rng(seed)
        self.retry_after_s = retry_after_s
        self.supports_json_schema = supports_json_schema
        self.supports_responses = supports_responses
        self.supports_batches = supports_batches
        self.hold_batches = hold_batches
        self.batch_ready_after_polls = batch_ready_after_polls  # a batch ends on its n-th status poll
        self.confidence = confidence
        self.base_url = base_url
        self.requests: list[dict[str, Any]] = []  # every request: method, path, json body (or None), auth
        self.injected: list[str] = []  # every fault injected, in order
        self.generations = 0  # generation requests answered with a 200 and a usage
        self.billed: list[dict[str, int]] = []  # the usage of every billed generation (what a provider would bill)
        self.bills: list[dict[str, Any]] = []  # the same with the model, the example text, the fault, the path
        self.timeout_hold_s = timeout_hold_s
        self.prompt_cache = prompt_cache  # off: every prompt is billed in full (no cached or cache-write tokens)
        self.overbill_tokens = overbill_tokens  # a server that bills this many output tokens past max_tokens
        self.stored: dict[str, dict[str, Any]] = {}  # chat completions sent with store: true, by id
        self.in_flight = 0  # generation requests being answered now (served over HTTP), and the most at once
        self.max_in_flight = 0
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._seen_prefixes: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------------------------
    def _next_fault(self) -> str | None:
        with self._lock:
            fault = None
            if self.faults:
                fault = self.faults.pop(0)
            elif self.fault_rate and self.rng.random() < self.fault_rate:
                fault = str(self.rng.choice(self.fault_kinds))
            if fault:
                self.injected.append(fault)
            return fault

    def _authorized(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        return auth == f"Bearer {self.api_key}" or headers.get("x-api-key") == self.api_key

    def _unauthorized(self, path: str, headers: dict[str, str]) -> FakeResponse:
        given = headers.get("authorization", "").removeprefix("Bearer ") or headers.get("x-api-key", "")
        masked = given[:3] + "*" * max(0, len(given) - 7) + given[-4:]
        if path.startswith("/v1/messages"):
            return self._json(401, {"type": "error", "error": {"type": "authentication_error",
                                                               "message": f"invalid x-api-key {masked}"}})
        return self._json(401, {"error": {"message": f"Incorrect API key provided: {masked}.",
                                          "type": "invalid_request_error", "code": "invalid_api_key"}})

    # -- dispatch ----------------------------------------------------------------------------------------
    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes,
                base_url: str | None = None) -> FakeResponse:
        """Answer one HTTP request (``headers`` with lower-case names)."""
        headers = {k.lower(): v for k, v in headers.items()}
        path, _, query = path.partition("?")
        is_json = headers.get("content-type", "").startswith("application/json")
        try:
            payload = json.loads(body) if (body and is_json) else None
        except ValueError:  # a body cut short (a client killed while sending): refused, never billed
            payload = None
        with self._lock:
            self.requests.append({"method": method, "path": path, "json": payload, "t": time.monotonic(),
                                  "authorization": headers.get("authorization") or headers.get("x-api-key")})
        if not self._authorized(headers):
            return self._unauthorized(path, headers)
        base = (self.base_url or base_url or "http://127.0.0.1").rstrip("/")
        if method == "POST" and path in GENERATION_PATHS:
            if not isinstance(payload, dict) or "model" not in payload:
                return self._json(400, {"error": {"message": "could not parse the JSON body of the request",
                                                  "type": "invalid_request_error"}})
            fault = self._next_fault()
            resp = self._generation(path, payload or {}, fault)
            resp.delay_s = self.timeout_hold_s if fault == "timeout" else self.latency_s
            return resp
        if method == "GET" and path == "/v1/chat/completions":
            return self._chat_list(query)
        if method == "GET" and path == "/v1/batches":
            return self._batch_list("openai")
        if method == "GET" and path == "/v1/messages/batches":
            return self._batch_list("anthropic")
        if not self.supports_batches and ("batches" in path or path.startswith("/v1/files")):
            return self._json(404, {"error": {"message": f"{path} not found"}})
        if method == "POST" and path == "/v1/files":
            return self._file_upload(headers, body)
        m = re.fullmatch(r"/v1/files/([\w-]+)/content", path)
        if method == "GET" and m:
            if m.group(1) not in self.files:
                return self._json(404, {"error": {"message": "no such file"}})
            return FakeResponse(200, self.files[m.group(1)], {"content-type": "application/octet-stream"})
        if method == "POST" and path == "/v1/batches":
            return self._openai_batch_create(payload or {})
        m = re.fullmatch(r"/v1/batches/([\w-]+)", path)
        if method == "GET" and m:
            return self._openai_batch_get(m.group(1))
        if method == "POST" and path == "/v1/messages/batches":
            return self._anthropic_batch_create(payload or {})
        m = re.fullmatch(r"/v1/messages/batches/([\w-]+)(/results)?", path)
        if method == "GET" and m:
            return self._anthropic_batch_get(m.group(1), bool(m.group(2)), base)
        return self._json(404, {"error": {"message": f"{method} {path} is not served by the fake"}})

    # -- generation --------------------------------------------------------------------------------------
    def _generation(self, path: str, body: dict[str, Any], fault: str | None, batch: bool = False) -> FakeResponse:
        anthropic = path == "/v1/messages"
        if fault == "429":
            err = ({"type": "error", "error": {"type": "rate_limit_error", "message": "rate limited"}} if anthropic
                   else {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
            return self._json(429, err, **{"retry-after-ms": str(int(self.retry_after_s * 1000)),
                                           "retry-after": str(max(0, math.ceil(self.retry_after_s)))})
        if fault == "429_bare":
            return self._json(429, {"error": {"message": "Rate limit reached", "type": "requests"}})
        if fault == "html_page":  # a proxy's login page (or a web server) where the API should be: a 200 of HTML
            return FakeResponse(200, b"<html><body><h1>Sign in</h1> to continue to the gateway</body></html>",
                                {"content-type": "text/html; charset=utf-8"})
        if fault == "error_200":  # a gateway that wraps an upstream failure in a 200
            return self._json(200, {"error": {"message": "upstream quota exhausted", "type": "gateway_error"}})
        if fault == "500":
            return self._json(500, {"error": {"message": "The server had an error", "type": "server_error"}})
        if fault == "529":
            if anthropic:
                return self._json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            return self._json(503, {"error": {"message": "The engine is overloaded", "type": "server_error"}})
        if path == "/v1/responses" and not self.supports_responses:
            return self._json(404, {"error": {"message": "Not Found"}})
        if path == "/v1/chat/completions":
            fmt = body.get("response_format") or {}
            if fmt.get("type") == "json_schema" and not self.supports_json_schema:
                # what llama.cpp's server answers to a json_schema response_format
                return self._json(500, {"error": {"code": 500, "message": "Unsupported response_format",
                                                  "type": "server_error"}})
        gen = self._generate(path, body, fault)
        with self._lock:
            self.generations += 1
        if anthropic:
            resp = self._anthropic_message(body, gen)
        elif path == "/v1/responses":
            resp = self._responses(body, gen)
        else:
            resp = self._chat(body, gen)
        data = json.loads(resp.body)
        if path == "/v1/chat/completions" and body.get("store"):
            with self._lock:
                self.stored[data["id"]] = {**data, "metadata": body.get("metadata") or {}}
        usage = data.get("usage", {})
        with self._lock:
            self.billed.append(usage)
            self.bills.append({"usage": usage, "path": path, "model": body.get("model"), "example": gen.example,
                               "fault": fault, "batch": batch, "metadata": body.get("metadata") or {}})
        if fault == "malformed_json":
            resp.body = resp.body[: len(resp.body) // 2]
        if fault == "disconnect":
            return FakeResponse(0, b"", disconnect=True)
        return resp

    def _generate(self, path: str, body: dict[str, Any], fault: str | None) -> Generation:
        if path == "/v1/messages":
            system = self._flatten(body.get("system", ""))
            msgs = body.get("messages", [])
            schema = ((body.get("tools") or [{}])[0].get("input_schema")
                      or ((body.get("output_config") or {}).get("format") or {}).get("schema"))
        elif path == "/v1/responses":
            system = body.get("instructions") or ""
            inp = body.get("input", [])
            msgs = [{"role": "user", "content": inp}] if isinstance(inp, str) else inp
            fmt = (body.get("text") or {}).get("format") or {}
            schema = fmt.get("schema")
        else:
            msgs = body.get("messages", [])
            system = "\n".join(self._flatten(m.get("content")) for m in msgs if m.get("role") in ("system", "developer"))
            fmt = body.get("response_format") or {}
            schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
        user = "\n".join(self._flatten(m.get("content")) for m in msgs if m.get("role") == "user")
        labels: tuple[str, ...] = ()
        if schema:
            labels = tuple(((schema.get("properties") or {}).get("label") or {}).get("enum") or ())
        if not labels:
            m = _ALLOWED.search(user)
            labels = tuple(json.loads(f"[{m.group(1)}]")) if m else ("yes", "no")
        found = _EXAMPLE.findall(user)
        text = found[-1] if found else user
        props = (schema or {}).get("properties") or {}
        numeric = (props.get("answer") or {}).get("type") == "number" or (not schema and "The answer is a number." in user)
        answer: dict[str, Any]
        if numeric:
            value = self.solver(text)
            label = str(value)
            answer = {"rationale": f"Adding the numbers gives {value:g}.", "answer": value}
            labels = ()
        else:
            label = self.labeler(text, labels)
            h = int(hashlib.sha256(f"{body.get('model')}|{text}".encode()).hexdigest(), 16)
            if self.disagree and len(labels) > 1 and label in labels and h % 10_000 < self.disagree * 10_000:
                label = labels[(labels.index(label) + 1 + (h // 10_000) % (len(labels) - 1)) % len(labels)]
            answer = {"rationale": f"The wording of the text points to {label}.", "label": label}
        wants_conf = bool(schema and "confidence" in (schema.get("properties") or {})) or '"confidence"' in user
        if wants_conf:
            answer["confidence"] = self.confidence
        out = json.dumps(answer)
        if fault == "bad_label" and numeric:
            out = json.dumps({"rationale": "Hard to say.", "answer": "several"})
        elif fault == "bad_label":
            out = json.dumps({"rationale": "Hard to say.", "label": "maybe-" + label})
        elif fault == "bad_content":
            out = f"I think the answer is {label}, because of the wording"
        elif fault == "keyed_lines":  # what an instruct model not held to the JSON format often answers
            out = "".join(f"**{k.capitalize()}:** {v}\n" for k, v in answer.items())
        elif fault in ("empty_content", "cut"):
            out = ""
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
                         or 4096)
        tokens_out = max_tokens if fault == "cut" else min(max_tokens, approx_tokens(out)) if out else 1
        if self.overbill_tokens:
            tokens_out = max_tokens + self.overbill_tokens
        tokens_in = approx_tokens(system) + approx_tokens(user) + 4
        return Generation(out, labels, label, tokens_in, approx_tokens(system) if system else 0, tokens_out, text,
                          cut=fault == "cut")

    def _ready(self, batch: dict[str, Any]) -> bool:
        return not self.hold_batches and batch.get("polls", 0) >= self.batch_ready_after_polls

    def release_batches(self) -> None:
        """Let held batches finish on their next poll."""
        self.hold_batches = False

    # -- transports ----------------------------------------------------------------------------------
    def async_transport(self) -> Any:
        """An ``httpx2.MockTransport`` answering through this fake (latency with ``asyncio.sleep``)."""
        import asyncio

        import httpx2

        async def handler(request: httpx2.Request) -> httpx2.Response:
            resp = self.respond(request.method, request.url.raw_path.decode(), dict(request.headers),
                                request.content, base_url=f"{request.url.scheme}://{request.url.netloc.decode()}")
            if resp.delay_s:
                await asyncio.sleep(resp.delay_s)
            if resp.disconnect:
                raise httpx2.RemoteProtocolError("Server disconnected without sending a response.", request=request)
            return httpx2.Response(resp.status, headers=resp.headers, content=resp.body)

        return httpx2.MockTransport(handler)

    def async_client(self) -> Any:
        """An ``httpx2.AsyncClient`` on :meth:`async_transport`, for a teacher's ``http_client=``."""
        import httpx2

        return httpx2.AsyncClient(transport=self.async_transport())
