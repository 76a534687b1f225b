"""Bursts, pauses and flow control through the real SDKs and the fake served over HTTP on 127.0.0.1: a burst of
429s never takes a teacher out, retry-after is obeyed but capped, a paused teacher starves nobody, a Ctrl-C while
waiting charges nothing, and requests_per_minute / max_concurrency count requests (self-consistency's samples)."""

import asyncio
import time

import pytest

from distilloop.annotators.anthropic_teacher import AnthropicTeacher
from distilloop.annotators.ensemble import Retry, TeacherEnsemble
from distilloop.annotators.openai_teacher import OpenAITeacher
from distilloop.annotators.sdk_errors import MAX_RETRY_AFTER_S, retry_after_seconds
from distilloop.core.ledger import Budget, Caps
from distilloop.core.types import LabelingItem
from distilloop.storage.store import Store
from distilloop.testing.fake_api import FakeLLMAPI
from distilloop.testing.fake_api.http import serve
from tests.unit.annotators.remote_helpers import KEY, generation_requests

LABELS = ("negative", "positive")


def items(n, tag=""):
    return [LabelingItem(f"e{tag}{i}", {"text": f"a {LABELS[i % 2]} film {tag}{i}"}, LABELS, "Classify.")
            for i in range(n)]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api = FakeLLMAPI(api_key=KEY, prompt_cache=False)
    with serve(api) as s:
        yield s


def gpt(server, **kw):
    kw.setdefault("name", "gpt")
    return OpenAITeacher(model="gpt-4o-mini", base_url=server.openai_url, structured="json_schema", **kw)


def run(teachers, store, its, *, concurrency=8, budget=None, **retry):
    ens = TeacherEnsemble(teachers, store, budget or Budget(Caps(usd=10.0)), concurrency=concurrency,
                          retry=Retry(**retry))
    return asyncio.run(ens.annotate(its, 1))


def test_a_burst_of_429s_does_not_take_the_teacher_out(server):
    """Eight calls at once all get a 429 with retry-after; the provider answers normally after that."""
    server.api.faults = ["429"] * 8
    server.api.retry_after_s = 0.3
    store = Store.memory()
    res = run([gpt(server)], store, items(40), concurrency=8)
    assert res.disabled == {}
    assert all(len(v) == 1 for v in res.votes.values()) and res.paid_calls == 40
    assert store.count("teacher_calls", "status = 'error'") == 8


def test_a_server_that_keeps_refusing_is_taken_out_after_questions_fail_for_good(server):
    server.api.faults = ["500"] * 1000
    store = Store.memory()
    res = run([gpt(server)], store, items(20), backoff_s=0.001, max_attempts=2, max_consecutive_failures=3)
    assert "3 questions in a row failed" in res.disabled["gpt"] and res.paid_calls == 0
    assert store.count("teacher_calls") < 20 * 2  # not every question was asked to its last attempt


def test_retry_after_is_obeyed_up_to_a_cap(server):
    assert retry_after_seconds({"retry-after": "3600"}) == MAX_RETRY_AFTER_S
    assert Retry(max_backoff_s=0.5).delay(0, 3600.0) == 0.5 and Retry().delay(3, 0.0) == 0.0
    server.api.faults = ["429"]
    server.api.retry_after_s = 3600  # "come back in an hour"
    t = gpt(server)
    t.client()
    started = time.monotonic()
    res = run([t], Store.memory(), items(1), max_backoff_s=0.5)
    assert res.paid_calls == 1 and time.monotonic() - started < 5
    assert t.limiter.paused_until - time.monotonic() <= MAX_RETRY_AFTER_S


def test_a_paused_teacher_does_not_starve_the_others(server):
    """gpt gets a 429 with a 2 s retry-after, which pauses it; claude's calls go on meanwhile, though the campaign
    lets only one call be in flight at a time."""
    server.api.faults = ["429"]
    server.api.retry_after_s = 2.0
    a = gpt(server)
    b = AnthropicTeacher(name="claude", model="claude-haiku-4-5", base_url=server.anthropic_url)
    a.client(), b.client()  # the SDKs are imported before the clock starts
    store = Store.memory()
    started = time.monotonic()
    res = run([a, b], store, items(6), concurrency=1)
    assert res.paid_calls == 12 and res.disabled == {}
    claude_ts = [r["t"] - started for r in server.api.requests if r["path"] == "/v1/messages"]
    gpt_ts = [r["t"] - started for r in server.api.requests if r["path"] == "/v1/chat/completions"]
    assert max(claude_ts) < 1.5 < 1.9 <= max(gpt_ts)  # every claude call while gpt was paused


def test_a_stop_while_waiting_for_a_slot_charges_nothing(server):
    """Calls waiting out a pause were never sent: stopping then leaves no call in flight to charge on resume."""
    t = gpt(server)
    store = Store.memory()
    ens = TeacherEnsemble([t], store, Budget(Caps(usd=10.0)))

    async def stopped():
        t.limiter.pause(30)
        task = asyncio.ensure_future(ens.annotate(items(5), 1))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(stopped())
    assert store.count("teacher_calls") == 0 and store.recover_interrupted_calls() == 0
    assert store.spent().usd == 0 and ens.budget.reserved.usd == 0


def test_self_consistency_counts_every_sample_against_the_rate_and_the_concurrency(server):
    server.api.latency_s = 0.2
    t = gpt(server, samples=5, confidence="self_consistency", logprobs=False, requests_per_minute=600,
            max_concurrency=2)
    t.client()
    store = Store.memory()
    started = time.monotonic()
    res = run([t], store, items(3), concurrency=8)
    assert res.paid_calls == 3
    sent = sorted(r["t"] - started for r in generation_requests(server.api))
    assert len(sent) == 15
    # 600 a minute is 10 a second, with a burst of one second's worth: never 15 at once
    assert sum(1 for x in sent if x < 0.3) <= 11
    assert server.api.max_in_flight <= 2  # max_concurrency counts requests, not questions


def test_the_campaign_concurrency_counts_requests(server):
    server.api.latency_s = 0.2
    t = gpt(server, samples=4, confidence="self_consistency", logprobs=False, max_concurrency=None)
    run([t], Store.memory(), items(4), concurrency=4)
    assert server.api.max_in_flight <= 4
