"""Batch mode through the real SDKs and the fake's batch endpoints: submit, record, resume, ingest at half price."""

import asyncio

import pytest

from distilloop.annotators.ensemble import Retry, TeacherEnsemble
from distilloop.core.ledger import Budget, Caps
from distilloop.storage.store import Store
from distilloop.testing.fake_api import FakeLLMAPI
from tests.unit.annotators.remote_helpers import (
    KEY,
    anthropic_teacher,
    generation_requests,
    items,
    openai_teacher,
)


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return FakeLLMAPI(api_key=KEY, hold_batches=True)


def make(kind, api, **kw):
    kw.setdefault("batch_poll_s", 0.01)
    return (openai_teacher if kind == "openai" else anthropic_teacher)(api, mode="batch", **kw)


def run(teachers, store, its, budget=None):
    ens = TeacherEnsemble(teachers, store, budget or Budget(Caps(usd=1.0), spent=store.spent()), backoff_s=0)
    return ens, asyncio.run(ens.annotate(its, 1))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_submit_then_resume_in_a_new_process_and_ingest_at_batch_prices(api, kind):
    store, its = Store.memory(), items(4)
    _, first = run([make(kind, api)], store, its)
    name = "gpt" if kind == "openai" else "claude"
    assert list(first.pending_batches) == [name] and first.paid_calls == 0
    rows = list(store.db.query("select status, batch_id, mode from teacher_calls"))
    assert {(r["status"], r["mode"]) for r in rows} == {("submitted", "batch")}
    batch_id = first.pending_batches[name][0]
    assert {r["batch_id"] for r in rows} == {batch_id} and store.spent().usd == 0  # nothing billed yet
    assert generation_requests(api) == []  # nothing went to the live endpoint
    if kind == "openai":
        uploads = [r for r in api.requests if r["path"] == "/v1/files"]
        assert len(uploads) == 1 and api.batches[batch_id]["obj"]["endpoint"] == "/v1/chat/completions"

    api.release_batches()
    teacher = make(kind, api)  # a fresh teacher and ensemble, as after a restart
    ens, second = run([teacher], store, its)
    assert second.pending_batches == {} and second.paid_calls == 4
    assert [v[0].label for v in second.votes.values()] == ["negative", "positive"] * 2
    calls = list(store.db.query("select * from teacher_calls order by id"))
    assert [c["status"] for c in calls] == ["ok"] * 4
    for c in calls:  # charged at the batch price: half of the live price for the same usage
        live = teacher._price.cost(c["tokens_in"], c["tokens_out"], cached=c["cached_tokens"],
                                   cache_write=c["cache_write_tokens"])
        assert c["cost_usd"] == pytest.approx(live / 2) and c["cost_usd"] > 0
    assert store.spent().usd == pytest.approx(sum(c["cost_usd"] for c in calls))
    assert ens.budget.reserved.usd == 0 and ens._held == {}
    # asked again: reused for free, nothing submitted
    n = len(api.requests)
    _, third = run([make(kind, api)], store, its)
    assert third.reused_calls == 4 and third.paid_calls == 0 and len(api.requests) == n


def test_pending_reservations_count_against_the_budget_after_a_restart(api):
    store, its = Store.memory(), items(4)
    run([make("openai", api)], store, its)
    reserved = sum(r["reserved_usd"] for r in store.db.query("select reserved_usd from teacher_calls"))
    budget = Budget(Caps(usd=1.0), spent=store.spent())
    ens, res = run([make("openai", api)], store, its, budget)
    assert res.pending_batches and budget.reserved.usd == pytest.approx(reserved)
    assert len(ens._held) == 4


def test_polls_until_the_batch_ends_within_batch_wait_s(api):
    api.hold_batches, api.batch_ready_after_polls = False, 3
    store = Store.memory()
    _, res = run([make("anthropic", api, batch_wait_s=30)], store, items(3))
    assert res.pending_batches == {} and res.paid_calls == 3
    assert api.batches and all(b["polls"] >= 3 for b in api.batches.values())


def test_failed_requests_in_a_batch_are_recorded_and_the_rest_ingested(api):
    api.hold_batches = False
    api.faults = [None, "500", "bad_label", None]
    store = Store.memory()
    _, res = run([make("anthropic", api, batch_wait_s=5)], store, items(4))
    statuses = [c.status for c in store.calls()]
    assert statuses == ["ok", "error", "ok", "ok"] and res.failed_attempts == 1
    assert "errored" in store.calls()[1].error
    assert [c.valid for c in store.calls()] == [True, False, False, True]  # a label outside the set is invalid
    assert store.spent().usd == pytest.approx(sum(c.cost_usd for c in store.calls()))


def test_self_consistency_in_a_batch_combines_the_samples(api):
    api.hold_batches = False
    store = Store.memory()
    _, res = run([make("openai", api, samples=3, confidence="self_consistency", logprobs=False, batch_wait_s=5)],
                 store, items(2))
    lines = api.files[api.batches[next(iter(api.batches))]["obj"]["input_file_id"]].decode().splitlines()
    assert len(lines) == 6  # 2 questions x 3 samples
    assert [v[0].confidence for v in res.votes.values()] == [1.0, 1.0]
    assert all(c.status == "ok" for c in store.calls())


def test_only_what_the_budget_allows_is_submitted(api):
    store, its = Store.memory(), items(5)
    t = make("openai", api)
    one = t.estimate(t.render(its[0]))
    budget = Budget(Caps(usd=one.usd * 2.5))
    _, res = run([t], store, its, budget)
    assert res.budget_exhausted and store.count("teacher_calls") == 2


def test_live_and_batch_teachers_in_one_round(api):
    store = Store.memory()
    live = openai_teacher(api, name="live")
    _, res = run([live, make("anthropic", api)], store, items(2))
    assert res.pending_batches == {"claude": [next(iter(api.batches))]}
    assert [len(v) for v in res.votes.values()] == [1, 1]  # the live votes are in (and paid)
    assert {c.teacher for c in store.calls(status="ok")} == {"live"}


def test_a_campaign_whose_batch_is_running_ends_cleanly_and_resumes(tmp_path, api):
    from distilloop.loop.campaign import Campaign
    from tests.unit.annotators.test_fault_injection import remote_config

    config = remote_config(tmp_path, n=6)

    def campaign():
        c = Campaign.open(config, teachers=[make("openai", api), make("anthropic", api)])
        c.env.retry = Retry(backoff_s=0.001)
        return c

    c = campaign()
    reason = c.run()
    assert "pending; run again later" in reason and "batch_" in reason and "msgbatch_" in reason
    assert [r["status"] for r in c.store.rounds()] == ["annotating"]
    assert c.store.count("teacher_calls", "status = 'submitted'") == 12 and c.store.spent().usd == 0
    c.close()

    api.release_batches()
    c = campaign()
    assert c.run().startswith("max rounds")
    assert [r["status"] for r in c.store.rounds()] == ["done"]
    assert c.store.count("teacher_calls", "status = 'ok' and mode = 'batch'") == 12
    assert len(c.store.labeled()) == 6 and c.store.spent().usd > 0
    c.close()


def test_the_same_question_twice_in_a_round_is_submitted_once(api):
    api.hold_batches = False
    store = Store.memory()
    twins = items(2)
    from distilloop.core.types import LabelingItem

    twins.append(LabelingItem("copy", twins[0].fields, twins[0].labels, twins[0].task))
    _, res = run([make("openai", api, batch_wait_s=5)], store, twins)
    lines = api.files[api.batches[next(iter(api.batches))]["obj"]["input_file_id"]].decode().splitlines()
    assert len(lines) == 2 and store.count("teacher_calls") == 2
    assert res.votes["copy"][0].label == res.votes["e0"][0].label and res.reused_calls == 1


class Killed(BaseException):
    """A stand-in for kill -9 between the provider accepting a batch and the store recording its id."""


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_stop_after_the_provider_accepted_a_batch_never_pays_it_twice(api, kind, monkeypatch):
    api.hold_batches = False
    store, its = Store.memory(), items(3)

    def killed(*args, **kwargs):
        raise Killed()

    with monkeypatch.context() as m:
        m.setattr(store, "mark_submitted", killed)
        with pytest.raises(Killed):
            run([make(kind, api)], store, its)
    assert len(api.batches) == 1  # the provider has it; the store never learnt its id
    assert {c["status"] for c in store.db.query("select status from teacher_calls")} == {"submitting"}
    _, res = run([make(kind, api, batch_wait_s=5)], store, its)
    assert len(api.batches) == 1  # found at the provider and adopted, not submitted again
    assert res.paid_calls == 3 and [c.status for c in store.calls()] == ["ok"] * 3
    assert {c["batch_id"] for c in store.db.query("select batch_id from teacher_calls")} == set(api.batches)


def test_a_submission_the_provider_never_got_is_submitted_again(api, monkeypatch):
    api.hold_batches = False
    store, its = Store.memory(), items(2)
    t = make("openai", api)

    async def never_arrives(calls, tag):
        raise Killed()

    monkeypatch.setattr(t, "submit_batch", never_arrives)
    with pytest.raises(Killed):
        run([t], store, its)
    assert api.batches == {}
    _, res = run([make("openai", api, batch_wait_s=5)], store, its)
    assert len(api.batches) == 1 and res.paid_calls == 2
    assert sorted(c.status for c in store.calls()) == ["error", "error", "ok", "ok"]
    assert store.spent().usd == pytest.approx(sum(c.cost_usd for c in store.calls()))


def test_resumed_batch_reservations_count_before_any_live_call_reserves(api):
    """A round resumed with a batch pending and a live teacher: the batch's reservations are re-attached first, so
    the live calls see the room they take, and the ledger never passes the cap (it did by one token)."""
    store, its = Store.memory(), items(4)
    run([make("openai", api)], store, its)  # submitted, held at the provider
    held = sum(r["reserved_tokens_in"] for r in store.db.query("select reserved_tokens_in from teacher_calls"))
    live = openai_teacher(api, name="live")
    one = live.estimate(live.render(its[0]))
    cap = held + one.tokens_in * 2 - 1  # room for the batch and one live call at a time
    api.release_batches()
    budget = Budget(Caps(tokens_in=cap))
    ens = TeacherEnsemble([live, make("openai", api, batch_wait_s=5)], store, budget, backoff_s=0)
    res = asyncio.run(ens.annotate(its, 1))
    assert res.paid_calls == 8 and store.spent().tokens_in <= cap
