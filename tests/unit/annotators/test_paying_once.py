"""What is true about paying twice, through the real SDKs and the fake served on 127.0.0.1.

- A call that timed out, lost its connection after sending, or got a broken 200 may have been billed: it is
  charged at its expected cost, flagged, never at $0; then re-based (found again at the provider where it keeps
  calls, else on the usage of the answer the same question got).
- Where OpenAI keeps completions (``store = true``), a lost answer is found again instead of bought again.
"""

import asyncio

import pytest

from distilloop.annotators.anthropic_teacher import AnthropicTeacher
from distilloop.annotators.ensemble import Retry, TeacherEnsemble
from distilloop.annotators.openai_teacher import OpenAITeacher
from distilloop.core.ledger import Budget, Caps
from distilloop.core.types import LabelingItem, Usage
from distilloop.storage.store import Store
from distilloop.testing.fake_api import FakeLLMAPI
from distilloop.testing.fake_api.http import serve
from tests.unit.annotators.remote_helpers import KEY, generation_requests

LABELS = ("negative", "positive")


def items(n):
    return [LabelingItem(f"e{i}", {"text": f"a {LABELS[i % 2]} film {i}"}, LABELS, "Classify.") for i in range(n)]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with serve(FakeLLMAPI(api_key=KEY, prompt_cache=False, timeout_hold_s=1.0)) as s:
        yield s


def gpt(server, **kw):
    return OpenAITeacher(name="gpt", model="gpt-4o-mini", base_url=server.openai_url, structured="json_schema",
                         timeout_s=0.4, **kw)


def claude(server):
    return AnthropicTeacher(name="claude", model="claude-haiku-4-5", base_url=server.anthropic_url, timeout_s=0.4)


def run(teachers, store, its, budget=None):
    ens = TeacherEnsemble(teachers, store, budget or Budget(Caps(usd=1.0)), concurrency=4,
                          retry=Retry(backoff_s=0.01, max_attempts=6))
    return ens, asyncio.run(ens.annotate(its, 1))


def billed(api):
    ins = sum(b["usage"].get("prompt_tokens", 0) + b["usage"].get("input_tokens", 0) for b in api.bills)
    outs = sum(b["usage"].get("completion_tokens", 0) + b["usage"].get("output_tokens", 0) for b in api.bills)
    return ins, outs


@pytest.mark.parametrize("fault", ["timeout", "disconnect", "malformed_json"])
@pytest.mark.parametrize("make", [gpt, claude])
def test_a_lost_answer_is_charged_not_free(server, fault, make):
    server.api.faults = [fault]
    t = make(server)
    store = Store.memory()
    ens, res = run([t], store, items(1))
    assert res.paid_calls == 1
    lost, ok = store.calls()
    row = store.call_row(lost.id)
    assert lost.status == "error" and row["charged"] == "estimate" and lost.cost_usd > 0
    # re-based on the answer the same question got: the same prompt, billed the same
    assert (lost.tokens_in, lost.tokens_out) == (ok.tokens_in, ok.tokens_out)
    spent = store.spent()
    assert (spent.tokens_in, spent.tokens_out) == billed(server.api)  # the ledger is the server's bill
    assert ens.budget.spent.tokens_in == spent.tokens_in and ens.budget.spent.usd == pytest.approx(spent.usd)
    assert store.call_accounting()["estimated"] == 1


def test_where_openai_keeps_completions_a_lost_answer_is_found_not_bought_again(server):
    server.api.faults = ["timeout"]
    t = gpt(server, store=True)
    store = Store.memory()
    ens, res = run([t], store, items(1))
    lost, ok = store.calls()
    row = store.call_row(lost.id)
    assert row["charged"] == "usage"  # found at the provider: charged exactly what it billed
    assert store.spent().tokens_in == billed(server.api)[0]
    body = generation_requests(server.api)[0]["json"]
    assert body["store"] is True and body["metadata"]["distilloop_call"] == store.recovery_key(lost.id)


def test_many_timeouts_under_a_tight_cap_never_let_the_real_bill_pass_it(server):
    """Half the calls time out after the server generated (and billed) them: the ledger charges them, so the
    server's real bill stays under the cap (it was 174% of it when they were settled at $0)."""
    server.api.fault_rate, server.api.fault_kinds = 0.5, ("timeout",)
    server.api.timeout_hold_s = 0.6
    t = claude(server)
    one = t.expected(t.render(items(1)[0]))
    cap = one.usd * 12
    store = Store.memory()
    ens, res = run([t], store, items(20), budget=Budget(Caps(usd=cap)))
    assert res.budget_exhausted
    real = sum(t.cost(Usage(b["usage"]["input_tokens"], b["usage"]["output_tokens"])) for b in server.api.bills)
    assert store.spent().usd <= cap and real <= cap * 1.0001
    assert store.call_accounting()["estimated"] == sum(1 for b in server.api.bills if b["fault"] == "timeout") > 0
