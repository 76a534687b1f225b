"""What both providers' sides of the fake share: the fake's tokenizer and "model", the response and generation
records, and the state every route reads."""


from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "429_bare", "500", "529", "timeout", "malformed_json", "empty_content", "bad_content",
               "keyed_lines", "bad_label", "disconnect", "html_page", "error_200", "cut")
#: faults in the model's text itself: a batch answers them in its results, as a live call does
CONTENT_FAULTS = ("bad_label", "bad_content", "keyed_lines", "empty_content")
#: faults after which the server has generated (and billed) the answer although the client gets none
BILLED_FAULTS = ("timeout", "malformed_json", "disconnect")
GENERATION_PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")
_EXAMPLE = re.compile(r"<example>\n(.*?)\n</example>", re.DOTALL)
_ALLOWED = re.compile(r"Allowed labels: (.*?)\.\n")
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """The fake's tokenizer: about four characters a token (it only has to stay under the teachers' bounds)."""
    return max(1, math.ceil(len(text) / 4))


def default_labeler(text: str, labels: Sequence[str]) -> str:
    low = text.lower()
    for label in labels:
        if re.search(rf"\b{re.escape(label.lower())}\b", low):
            return label
    return labels[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(labels)]


def default_solver(text: str) -> float:
    """The fake's arithmetic for numeric questions: the sum of the numbers in the text (0 when none)."""
    return float(sum(float(x) for x in re.findall(r"\d+(?:\.\d+)?", text)))


@dataclass
class FakeResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    disconnect: bool = False


@dataclass
class Generation:
    """What the fake model "says" for one request, before it is dressed as one provider's response."""

    text: str
    labels: tuple[str, ...]
    label: str
    tokens_in: int
    system_tokens: int
    tokens_out: int
    example: str = ""
    cut: bool = False  # stopped at max_tokens (a reasoning model that spent them thinking): finish_reason "length"



class Routes:
    """The state and helpers the provider routes (:mod:`.openai`, :mod:`.anthropic`) use; the fake itself
    (:class:`~distilloop.testing.fake_api.server.FakeLLMAPI`) fills them in."""

    confidence: float
    files: dict[str, bytes]
    batches: dict[str, dict[str, Any]]
    stored: dict[str, dict[str, Any]]
    prompt_cache: bool
    _lock: threading.Lock
    _seen_prefixes: set[str]
    _ids: Any

    def _id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids):06d}"

    @staticmethod
    def _json(status: int, obj: Any, **headers: str) -> FakeResponse:
        return FakeResponse(status, json.dumps(obj).encode(), {"content-type": "application/json", **headers})

    @staticmethod
    def _flatten(content: Any) -> str:
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
        return ""

    def _batch_list(self, kind: str) -> FakeResponse:
        """``GET /v1/batches`` or ``GET /v1/messages/batches``: every batch of the account, newest first."""
        with self._lock:
            objs = [b["obj"] for b in reversed(list(self.batches.values())) if b["kind"] == kind]
        first, last = (objs[0]["id"], objs[-1]["id"]) if objs else (None, None)
        if kind == "openai":
            return self._json(200, {"object": "list", "data": objs, "first_id": first, "last_id": last,
                                    "has_more": False})
        return self._json(200, {"data": objs, "has_more": False, "first_id": first, "last_id": last})

    def _cache_hit(self, key: str) -> bool:
        with self._lock:
            hit = key in self._seen_prefixes
            self._seen_prefixes.add(key)
        return hit

    def _next_fault(self) -> str | None:  # pragma: no cover - the fake's own
        raise NotImplementedError

    def _generation(self, path: str, body: dict[str, Any], fault: str | None,
                    batch: bool = False) -> FakeResponse:  # pragma: no cover
        raise NotImplementedError

    def _ready(self, batch: dict[str, Any]) -> bool:  # pragma: no cover - the fake's own
        raise NotImplementedError
