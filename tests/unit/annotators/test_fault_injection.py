"""Fault injection: 30% of calls fail in every way the fake can fail them; the round completes, every failure is
recorded, the ledger is exactly what the server billed (failures it billed without an answer included: charged
at an estimate, then re-based on the answer to the same question), and a rerun pays for nothing again."""

import asyncio

import pytest

from distilloop.annotators.ensemble import Retry, TeacherEnsemble
from distilloop.core.types import Usage
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.testing.fake_api import FakeLLMAPI
from tests.conftest import campaign_toml
from tests.unit.annotators.remote_helpers import KEY, anthropic_teacher, openai_teacher

NOT_BILLED = ("429", "429_bare", "500", "529")  # refused before any answer was generated
BILLED_LOST = ("malformed_json", "disconnect")  # generated and billed, but the answer never arrived
HTTP_FAULTS = NOT_BILLED + BILLED_LOST
ANSWER_FAULTS = ("bad_label", "bad_content", "empty_content")  # a 200 with a usage: billed, an invalid vote


def remote_config(tmp_path, n=20):
    path = tmp_path / "campaign.toml"
    path.write_text(campaign_toml(name="faults", rounds=f"max_rounds = 1\ninitial_size = {n}\nconcurrency = 8",
                                  extra="""\
[[teachers]]
name = "gpt"
kind = "openai"
model = "gpt-4o-mini"
base_url = "http://fake.test/v1"
[[teachers]]
name = "claude"
kind = "anthropic"
model = "claude-haiku-4-5"
base_url = "http://fake.test"
"""))
    return load_config(path)


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return FakeLLMAPI(api_key=KEY, fault_rate=0.3, fault_kinds=HTTP_FAULTS + ANSWER_FAULTS, seed=7,
                      retry_after_s=0.001, prompt_cache=False)


def open_campaign(config, api):
    teachers = [openai_teacher(api, structured="json_schema"), anthropic_teacher(api)]
    c = Campaign.open(config, teachers=teachers)
    c.env.retry = Retry(backoff_s=0.001, max_attempts=8, max_consecutive_failures=20)  # no real waiting in a test
    return c


def test_a_round_with_30_percent_mixed_failures(tmp_path, api):
    config = remote_config(tmp_path)
    campaign = open_campaign(config, api)
    assert campaign.run().startswith("max rounds")
    store = campaign.store
    assert [r["status"] for r in store.rounds()] == ["done"]
    n_items = len(store.selection(1))

    calls = store.calls()
    ok = [c for c in calls if c.status == "ok"]
    errors = [c for c in calls if c.status == "error"]
    # the round completed: every item has an answer from both teachers
    assert len(ok) == 2 * n_items and {(c.example_id, c.teacher) for c in ok} == {
        (i, t) for i in store.selection(1) for t in ("gpt", "claude")}
    # every HTTP-level failure the fake injected is one recorded error row, with what went wrong
    injected = [f for f in api.injected if f in HTTP_FAULTS]
    assert 0.1 * len(calls) < len(injected) == len(errors)
    assert any("429" in c.error for c in errors) and any("malformed" in c.error for c in errors)
    assert any("cannot reach" in c.error for c in errors)
    # a failure the server never billed costs nothing; one it billed without an answer is charged, flagged
    rows = {r["id"]: r for r in store.db.query("select * from teacher_calls")}
    lost = [c for c in errors if rows[c.id]["charged"] == "estimate"]
    assert len(lost) == sum(f in BILLED_LOST for f in api.injected) > 0
    assert all(c.tokens_in > 0 and c.cost_usd > 0 for c in lost)
    assert all(c.cost_usd == 0 and c.tokens_in == 0 for c in errors if rows[c.id]["charged"] == "usage")
    assert store.call_accounting()["estimated"] == len(lost)
    # answers outside the label set are invalid votes, not failures; they were billed
    invalid = [c for c in ok if not c.valid]
    assert len(invalid) == sum(f in ANSWER_FAULTS for f in api.injected) > 0
    # the ledger is what the server billed, to the token and the cent (each lost answer re-based on the answer
    # the same question got: the same prompt, the same usage)
    assert len(api.billed) == len(ok) + len(lost)
    billed_in = sum(u.get("prompt_tokens", 0) + u.get("input_tokens", 0) + u.get("cache_read_input_tokens", 0)
                    + u.get("cache_creation_input_tokens", 0) for u in api.billed)
    billed_out = sum(u.get("completion_tokens", 0) + u.get("output_tokens", 0) for u in api.billed)
    spent = store.spent()
    assert (spent.tokens_in, spent.tokens_out) == (billed_in, billed_out)
    by_model = {t.model: t for t in campaign.teachers}
    billed_usd = sum(by_model[b["model"]].cost(Usage(
        b["usage"].get("prompt_tokens", 0) + b["usage"].get("input_tokens", 0),
        b["usage"].get("completion_tokens", 0) + b["usage"].get("output_tokens", 0))) for b in api.bills)
    assert spent.usd == pytest.approx(billed_usd)

    # rerun the same round's questions: everything is reused, nothing is sent or paid again
    sent = len(api.requests)
    env = campaign.env
    items = [env.item(env.examples[i]) for i in store.selection(1)]
    ensemble = TeacherEnsemble(campaign.teachers, store, env.budget)
    again = asyncio.run(ensemble.annotate(items, 1))
    assert again.paid_calls == 0 and again.reused_calls == 2 * n_items and len(api.requests) == sent
    assert store.spent() == spent
    campaign.close()
