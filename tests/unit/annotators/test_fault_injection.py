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


def tokens_in(u: dict) -> int:
    return (u.get("prompt_tokens", 0) + u.get("input_tokens", 0) + u.get("cache_read_input_tokens", 0)
            + u.get("cache_creation_input_tokens", 0))


def tokens_out(u: dict) -> int:
    return u.get("completion_tokens", 0) + u.get("output_tokens", 0)


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
    # the server named by its address (one's own, a proxy), not as if it were the provider's
    assert all(("OpenAI at http://fake.test/v1" if c.teacher == "gpt" else "Anthropic at http://fake.test") in c.error
               for c in errors if "cannot reach" in c.error or "HTTP" in c.error)
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
    # the ledger is what the server billed (each lost answer re-based on the answer the same question got: the
    # same prompt, so the same input tokens; its output tokens are the answer's, which differ from the lost one's
    # only where the answer that came was itself a broken one, e.g. a label outside the set)
    assert len(api.billed) == len(ok) + len(lost)
    spent = store.spent()
    assert spent.tokens_in == sum(tokens_in(u) for u in api.billed)
    questions: dict[tuple[str, str], list[dict]] = {}
    for b in api.bills:  # a question's bills in the order the server sent them: the last is the answer received
        questions.setdefault((b["example"], b["model"]), []).append(b)
    assert len(questions) == 2 * n_items
    by_model = {t.model: t for t in campaign.teachers}
    rebased = [(len(bs), bs[-1]) for bs in questions.values()]
    assert spent.tokens_out == sum(n * tokens_out(last["usage"]) for n, last in rebased)
    if all(last["fault"] not in ANSWER_FAULTS for n, last in rebased if n > 1):  # re-based on sound answers:
        assert spent.tokens_out == sum(tokens_out(u) for u in api.billed)  # exactly the bill
    assert spent.usd == pytest.approx(sum(n * by_model[last["model"]].cost(
        Usage(tokens_in(last["usage"]), tokens_out(last["usage"]))) for n, last in rebased))

    # rerun the same round's questions: everything is reused, nothing is sent or paid again
    sent = len(api.requests)
    env = campaign.env
    items = [env.item(env.examples[i]) for i in store.selection(1)]
    ensemble = TeacherEnsemble(campaign.teachers, store, env.budget)
    again = asyncio.run(ensemble.annotate(items, 1))
    assert again.paid_calls == 0 and again.reused_calls == 2 * n_items and len(api.requests) == sent
    assert store.spent() == spent
    campaign.close()


def test_a_lost_answer_is_rebased_on_the_answer_its_question_got_even_a_broken_one(tmp_path, monkeypatch):
    """Both teachers' first answers are lost on the way (billed), and the answers that then come are labels
    outside the set (billed, invalid votes): each lost call is charged what the answer received cost, so the
    ledger's input tokens are the bill's and its output tokens are twice the broken answers' (the estimate the
    re-basing promises; the server billed the lost answers' own, longer output)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api = FakeLLMAPI(api_key=KEY, faults=["disconnect", "disconnect", "bad_label", "bad_label"],
                     retry_after_s=0.001, prompt_cache=False)
    campaign = open_campaign(remote_config(tmp_path, n=1), api)
    campaign.run()
    store = campaign.store
    assert [b["fault"] for b in api.bills] == ["disconnect", "disconnect", "bad_label", "bad_label"]
    rows = list(store.db.query("select status, charged from teacher_calls order by id"))
    assert sorted((r["status"], r["charged"]) for r in rows) == [("error", "estimate")] * 2 + [("ok", "usage")] * 2
    spent = store.spent()
    assert spent.tokens_in == sum(tokens_in(u) for u in api.billed)
    answered = [b["usage"] for b in api.bills if b["fault"] == "bad_label"]
    assert spent.tokens_out == 2 * sum(tokens_out(u) for u in answered)
    assert spent.tokens_out != sum(tokens_out(u) for u in api.billed)  # the lost answers were not broken ones
    campaign.close()
