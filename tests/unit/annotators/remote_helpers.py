"""Shared set-up for the HTTP teachers' tests: the fake API in-process, real SDK clients on top of it."""

from __future__ import annotations

import asyncio
from typing import Any

from distilloop.annotators.anthropic_teacher import AnthropicTeacher
from distilloop.annotators.openai_teacher import OpenAITeacher
from distilloop.core.types import LabelingItem
from distilloop.testing.fake_api import FakeLLMAPI

LABELS = ("negative", "positive")
KEY = "sk-unit-test-secret-key-4242424242"


def items(n: int = 4) -> list[LabelingItem]:
    return [LabelingItem(f"e{i}", {"text": f"a {LABELS[i % 2]} film, number {i}"}, LABELS, "Classify the sentiment.")
            for i in range(n)]


def openai_teacher(fake: FakeLLMAPI, **kw: Any) -> OpenAITeacher:
    kw.setdefault("name", "gpt")
    kw.setdefault("model", "gpt-4o-mini")
    return OpenAITeacher(base_url="http://fake.test/v1", http_client=fake.async_client(), **kw)


def anthropic_teacher(fake: FakeLLMAPI, **kw: Any) -> AnthropicTeacher:
    kw.setdefault("name", "claude")
    kw.setdefault("model", "claude-haiku-4-5")
    return AnthropicTeacher(base_url="http://fake.test", http_client=fake.async_client(), **kw)


def ask(teacher: Any, item: LabelingItem) -> Any:
    return asyncio.run(teacher.answer(teacher.render(item), item))


def generation_requests(api: FakeLLMAPI) -> list[dict[str, Any]]:
    return [r for r in api.requests if r["path"] in ("/v1/chat/completions", "/v1/responses", "/v1/messages")]
