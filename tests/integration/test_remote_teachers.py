"""OpenAITeacher and AnthropicTeacher through the real SDKs and real HTTP (the fake API on 127.0.0.1): live
calls, and batch mode across a process restart (the campaign is killed after it submitted its batches, the
batches end while it is down, the next `distilloop run` ingests them at batch prices)."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from distilloop.annotators.anthropic_teacher import AnthropicTeacher
from distilloop.annotators.openai_teacher import OpenAITeacher
from distilloop.annotators.pricing import Price
from distilloop.core.types import LabelingItem
from distilloop.testing.fake_api import FakeLLMAPI, serve
from tests.conftest import ROOT, campaign_toml, sqlite_count

KEY = "sk-integration-secret-0123456789"
LABELS = ("negative", "positive")


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with serve(FakeLLMAPI(api_key=KEY, latency_s=0.01)) as s:
        yield s


def test_live_answers_over_http(server):
    teachers = [OpenAITeacher(name="gpt", model="gpt-4o-mini", base_url=server.openai_url),
                OpenAITeacher(name="gpt-r", model="gpt-4o-mini", base_url=server.openai_url, api="responses"),
                AnthropicTeacher(name="claude", model="claude-haiku-4-5", base_url=server.anthropic_url)]
    its = [LabelingItem(f"e{i}", {"text": f"a {LABELS[i % 2]} film"}, LABELS, "Sentiment?") for i in range(4)]

    async def main():
        out = []
        for t in teachers:
            out.append(await asyncio.gather(*(t.answer(t.render(it), it) for it in its)))
            await t.aclose()
        return out

    for answers in asyncio.run(main()):
        assert [a.label for a in answers] == ["negative", "positive"] * 2
        assert all(a.valid and a.usage.tokens_in > 0 for a in answers)
    paths = {r["path"] for r in server.api.requests}
    assert paths == {"/v1/chat/completions", "/v1/responses", "/v1/messages"}
    assert all(r["authorization"] == f"Bearer {KEY}" for r in server.api.requests)


def test_batch_interrupted_by_a_restart_is_ingested_at_batch_prices(server, tmp_path):
    server.api.hold_batches = True
    cfg = tmp_path / "campaign.toml"
    n = 6
    cfg.write_text(campaign_toml(name="batch", rounds=f"max_rounds = 1\ninitial_size = {n}", extra=f"""\
[[teachers]]
name = "gpt"
kind = "openai"
model = "gpt-4o-mini"
base_url = "{server.openai_url}"
mode = "batch"
batch_poll_s = 0.05
batch_wait_s = 120
[[teachers]]
name = "claude"
kind = "anthropic"
model = "claude-haiku-4-5"
base_url = "{server.anthropic_url}"
mode = "batch"
batch_poll_s = 0.05
batch_wait_s = 120
"""))
    db = tmp_path / "batch.distilloop.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "distilloop.cli", "run", "-q", str(cfg)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 90
    while sqlite_count(db, "select count(*) from teacher_calls where status = 'submitted'") < 2 * n:
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError("the batches were never submitted: " + proc.stderr.read().decode())
        time.sleep(0.05)
    time.sleep(0.2)  # it is polling the held batches now
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(server.api.batches) == 2 and sqlite_count(db, "select count(*) from ledger") == 0
    assert sqlite_count(db, "select count(distinct batch_id) from teacher_calls") == 2

    server.api.release_batches()  # the provider finishes the batches while distilloop is down
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert len(server.api.batches) == 2  # picked up again, not submitted twice
    live = [r for r in server.api.requests if r["path"] in ("/v1/chat/completions", "/v1/messages")]
    assert live == []
    con = sqlite3.connect(db)
    rows = con.execute("select teacher, model, status, mode, tokens_in, tokens_out, cached_tokens, "
                       "cache_write_tokens, cost_usd from teacher_calls").fetchall()
    assert len(rows) == 2 * n and {r[2:4] for r in rows} == {("ok", "batch")}
    for teacher, model, _, _, t_in, t_out, cached, written, usd in rows:
        kind = "openai" if teacher == "gpt" else "anthropic"
        price = Price.resolve(model, None, kind=kind)
        assert usd == pytest.approx(price.cost(t_in, t_out, cached=cached, cache_write=written, batch=True))
        assert usd == pytest.approx(price.cost(t_in, t_out, cached=cached, cache_write=written) / 2)
    ledger = con.execute("select round(sum(usd), 12), count(*) from ledger").fetchone()
    assert ledger == (round(sum(r[-1] for r in rows), 12), 2 * n)
    assert con.execute("select status from rounds").fetchall() == [("done",)]
    assert con.execute("select count(*) from labels").fetchone()[0] == n
