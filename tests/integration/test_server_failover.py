"""An ``openai_compatible`` teacher over two servers (two fake OpenAI-compatible APIs on 127.0.0.1, real HTTP),
one of which dies in the middle of a round: the round completes on the other, no call is paid twice, and the
ledger is exactly what the servers billed. A dead server is tried again later and used when it is back."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from distilloop.annotators.openai_compatible import OpenAICompatibleTeacher
from distilloop.annotators.servers import ServerPool
from distilloop.core.types import LabelingItem
from distilloop.errors import ConfigError, TeacherError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.testing.fake_api import FakeLLMAPI, FakeServer, serve
from tests.conftest import campaign_toml

KEY = "sk-fake-failover-key-0123456789"
PRICE = {"input": 100.0, "output": 300.0}  # dollars per million tokens: the ledger's dollars are checked too


def _die(server: FakeServer) -> None:
    """The server goes away: open connections drop every request, new ones are refused."""
    server.api.fault_kinds, server.api.fault_rate = ("disconnect",), 1.0
    server.close()


def test_a_server_dying_mid_round_loses_no_call_and_pays_none_twice(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", KEY)
    a, b = serve(FakeLLMAPI(api_key=KEY, latency_s=0.02)), serve(FakeLLMAPI(api_key=KEY, latency_s=0.02))
    n = 40
    cfg = tmp_path / "campaign.toml"
    cfg.write_text(campaign_toml(name="fo", budget="max_usd = 50.0", rounds=f"max_rounds = 1\ninitial_size = {n}\n"
                                 "concurrency = 6", extra=f"""
[[teachers]]
name = "qwen"
kind = "openai_compatible"
model = "qwen-local"
base_urls = ["{a.openai_url}", "{b.openai_url}"]
api_key_env = "FAKE_KEY"
server_retry_s = 60
price = {{ input = {PRICE["input"]}, output = {PRICE["output"]} }}
[routing]
min_agreement = 0.0
"""))

    def killer() -> None:
        deadline = time.monotonic() + 30
        while b.api.generations < 8 and time.monotonic() < deadline:
            time.sleep(0.002)
        _die(b)

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    campaign = Campaign.open(load_config(cfg))
    try:
        assert campaign.run() == "max rounds reached (1)"
        store = campaign.store
        rounds = store.rounds()
        calls = store.calls()
        spent = store.spent()
        labeled = store.labeled()
        teacher = campaign.teachers[0]
        assert isinstance(teacher, OpenAICompatibleTeacher)
        pool_state = teacher.pool.servers[b.openai_url]
    finally:
        campaign.close()
        watcher.join(timeout=5)
        a.close()
    # the round completed: every selected item was answered and labeled
    assert [r["status"] for r in rounds] == ["done"]
    assert len(labeled) == n
    ok = [c for c in calls if c.status == "ok"]
    assert len(ok) == n and len({c.request_hash for c in ok}) == n  # every item answered once: no loss
    # both servers answered, the dead one until it died; it was taken out
    assert b.api.generations >= 8 and a.api.generations > 0
    # every answer a server generated is a recorded call: the answers lost when b died (generated, never sent
    # back) are recorded failed attempts, charged, and their questions answered by a
    lost = [c for c in calls if c.status != "ok"]
    assert all(c.status == "error" for c in lost)
    assert a.api.generations + b.api.generations == n + len(lost)
    assert pool_state.failures >= 1 and pool_state.down_until > 0
    # the ledger is what the servers billed, to the token and the dollar
    billed = a.api.billed + b.api.billed
    t_in = sum(u["prompt_tokens"] for u in billed)
    t_out = sum(u["completion_tokens"] for u in billed)
    assert (spent.tokens_in, spent.tokens_out) == (t_in, t_out)
    assert spent.usd == pytest.approx((t_in * PRICE["input"] + t_out * PRICE["output"]) / 1e6, rel=1e-9)
    assert sum(c.tokens_in for c in calls) == t_in


def test_a_dead_server_is_tried_again_later_and_used_when_back(monkeypatch):
    monkeypatch.setenv("FAKE_KEY", KEY)
    a, b = serve(FakeLLMAPI(api_key=KEY)), serve(FakeLLMAPI(api_key=KEY))
    port = b.port
    teacher = OpenAICompatibleTeacher(name="q", model="m", base_urls=[a.openai_url, b.openai_url],
                                      api_key_env="FAKE_KEY", server_retry_s=0.3)
    items = [LabelingItem(f"e{i}", {"text": f"a positive film {i}"}, ("negative", "positive"), "Sentiment?")
             for i in range(8)]

    dropped: list[TeacherError] = []

    async def one(it: LabelingItem) -> str | None:
        for _ in range(3):  # as the ensemble does: a dropped call is recorded, charged, and asked again
            try:
                return (await teacher.answer(teacher.render(it), it)).label
            except TeacherError as exc:
                assert exc.retryable and exc.maybe_billed
                dropped.append(exc)
        raise AssertionError("not answered in 3 attempts")

    async def ask(k: int) -> list[str | None]:
        return [await one(it) for it in items[:k]]

    async def scenario() -> FakeServer:
        assert await ask(4) == ["positive"] * 4
        assert a.api.generations == 2 and b.api.generations == 2  # spread in turn
        _die(b)
        await ask(6)  # the first call to b is dropped (it may have been generated), b is out, the retry goes to a
        assert a.api.generations == 8 and len(dropped) <= 1
        revived = FakeServer(FakeLLMAPI(api_key=KEY), port=port)
        try:
            await ask(2)
            assert revived.api.generations == 0  # still out: not tried before its wait is over
            # tried again once its wait is over, and used (a stale connection to the dead server may fail one
            # more attempt first, which doubles the wait: keep asking until a wait has passed with it back)
            deadline = time.monotonic() + 10
            while revived.api.generations == 0 and time.monotonic() < deadline:
                await asyncio.sleep(teacher.pool.retry_in() + 0.05)
                await ask(4)
            assert revived.api.generations >= 1
            assert teacher.pool.servers[b.openai_url].failures == 0
        finally:
            await teacher.aclose()
        return revived

    try:
        asyncio.run(scenario()).close()
    finally:
        a.close()


def test_when_every_server_is_down_the_call_fails_as_retryable_with_the_wait(monkeypatch):
    from distilloop.errors import TeacherError

    a = serve(FakeLLMAPI(api_key=KEY))
    url = a.openai_url
    a.close()
    monkeypatch.setenv("FAKE_KEY", KEY)
    t = OpenAICompatibleTeacher(name="q", model="m", base_urls=[url, "http://127.0.0.1:9/v1"],
                                api_key_env="FAKE_KEY", server_retry_s=5)
    it = LabelingItem("e", {"text": "x"}, ("negative", "positive"), "?")
    with pytest.raises(TeacherError, match="none of its 2 servers can be reached") as exc:
        asyncio.run(t.answer(t.render(it), it))
    assert exc.value.retryable and 4 < exc.value.retry_after <= 5  # type: ignore[attr-defined]
    asyncio.run(t.aclose())


def test_the_pool_spreads_by_load_and_doubles_a_dead_servers_wait():
    now = [0.0]
    pool = ServerPool(["u1", "u2", "u3"], retry_s=10, clock=lambda: now[0])
    pool.begin("u1")
    assert pool.candidates()[-1] == "u1"  # the busiest last
    pool.end("u1", ok=True)
    pool.begin("u2")
    pool.begin("u2")
    pool.end("u2", ok=False, error="refused")
    assert "u2" not in pool.candidates() and pool.servers["u2"].down_until == 10
    assert pool.retry_in() == 0  # others are up
    now[0] = 10.0
    assert "u2" in pool.candidates()  # due again
    pool.begin("u2")
    pool.end("u2", ok=False, error="refused")
    assert pool.servers["u2"].down_until == 10 + 20  # failed again when tried: its wait doubled
    pool.end("u2", ok=False, error="refused")  # a call sent before it was taken out: the same failure
    assert pool.servers["u2"].down_until == 30 and pool.servers["u2"].failures == 2


@pytest.mark.parametrize("params,match", [
    ({"base_urls": ["http://a/v1", "http://a/v1"]}, "names a server twice"),
    ({"base_urls": ["http://a/v1"], "base_url": "http://b/v1"}, "not both"),
    ({"base_urls": ["ftp://a"]}, "must be a list of server URLs"),
    ({"base_urls": ["http://a/v1"], "mode": "batch"}, "batch mode"),
    ({"base_urls": ["http://a/v1"], "server_retry_s": 0}, "server_retry_s must be a number > 0"),
])
def test_bad_server_lists_name_the_fix(params, match):
    with pytest.raises(ConfigError, match=match):
        OpenAICompatibleTeacher(name="q", model="m", **params)
