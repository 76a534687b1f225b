"""Every registered teacher passes the Teacher contract: the HTTP teachers through their real SDKs against the
wire-compatible fake on an in-process transport, the replay teacher on a recording, the llama.cpp teacher on the
packaged model (slow tier)."""

from __future__ import annotations

import json

import pytest

from distilloop.annotators import openai_teacher as openai_module
from distilloop.annotators.openai_compatible import OpenAICompatibleTeacher
from distilloop.annotators.replay import ReplayTeacher
from distilloop.core.types import LabelingItem
from distilloop.registry import TEACHERS
from distilloop.testing.fake_api import FakeLLMAPI
from tests.conftest import FIXTURES
from tests.contracts.teacher import TeacherContract
from tests.unit.annotators.remote_helpers import KEY, LABELS, anthropic_teacher, items, openai_teacher


def _llama(request):
    pytest.importorskip("llama_cpp", reason="the `local` extra is not installed (make setup)")
    from distilloop.annotators.local import LlamaCppTeacher
    from distilloop.annotators.models import status

    if status("qwen2.5-coder-0.5b").startswith("not installed"):
        pytest.skip("the packaged Qwen2.5-Coder-0.5B weights are not installed (make setup)")
    return LlamaCppTeacher(name="q", model="qwen2.5-coder-0.5b", max_tokens=48)


def _replay(request):
    return ReplayTeacher(name="a", model="gpt-4o-mini", path=str(FIXTURES / "rt_tiny_replay.jsonl.gz"), source="a")


def _fake(request) -> FakeLLMAPI:
    mp = request.getfixturevalue("monkeypatch")
    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        mp.setenv(env, KEY)
    mp.setattr(openai_module, "_DETECTED", {})
    return FakeLLMAPI(api_key=KEY)


#: how each registered teacher is built for the contract (a registered teacher missing here fails the first test)
FACTORIES = {
    "openai": lambda request: openai_teacher(_fake(request)),
    "openai_compatible": lambda request: OpenAICompatibleTeacher(
        name="local", model="qwen", base_url="http://fake.test/v1", api_key_env="OPENAI_API_KEY",
        http_client=_fake(request).async_client()),
    "anthropic": lambda request: anthropic_teacher(_fake(request)),
    "replay": _replay,
    "llama_cpp": _llama,
}
SLOW = {"llama_cpp"}


def test_every_registered_teacher_has_a_contract_entry():
    assert set(FACTORIES) == set(TEACHERS)


def _items_for(kind: str) -> list[LabelingItem]:
    if kind != "replay":
        return items(3)
    rows = [json.loads(x) for x in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()[:3]]
    return [LabelingItem(r["id"], {"text": r["text"]}, LABELS, "Sentiment?") for r in rows]


class TestEveryRegisteredTeacher(TeacherContract):
    @pytest.fixture(params=[pytest.param(k, marks=[pytest.mark.slow, pytest.mark.llm]) if k in SLOW else k
                            for k in sorted(TEACHERS)])
    def kind(self, request):
        return request.param

    @pytest.fixture
    def teacher(self, kind, request):
        t = FACTORIES[kind](request)
        assert t.kind == kind
        return t

    @pytest.fixture
    def items(self, kind):
        return _items_for(kind)
