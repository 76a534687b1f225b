"""A call cut off by a kill -9 after the provider billed it (the answer lost with the process): the resumed run
finds it again where the provider keeps it (OpenAI, ``store = true``) and buys nothing twice; elsewhere it asks
again, charges the lost call at its expected cost (not its upper bound), and counts it as re-sent."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from distilloop.testing.fake_api import FakeLLMAPI
from distilloop.testing.fake_api.http import serve
from tests.conftest import campaign_toml

KEY = "sk-cut-calls-test-key-0123456789"
CLI = [sys.executable, "-m", "distilloop.cli"]


def config(tmp_path, teacher):
    path = tmp_path / "campaign.toml"
    path.write_text(campaign_toml(name="cut", rounds="max_rounds = 1\ninitial_size = 6\nconcurrency = 1",
                                  extra=teacher + "\n[review]\nkind = \"auto\"\n"))
    return path


def run(cfg, failpoint=None, command=("run",)):
    env = {**os.environ, "OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY}
    env.pop("DISTILLOOP_FAILPOINT", None)
    if failpoint:
        env["DISTILLOOP_FAILPOINT"] = failpoint
    return subprocess.run([*CLI, *command, "-q", str(cfg)], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def server():
    with serve(FakeLLMAPI(api_key=KEY, prompt_cache=False)) as s:
        yield s


def calls(db):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    return [dict(r) for r in con.execute("select * from teacher_calls order by id")]


def test_openai_keeps_the_call_and_it_is_found_again(tmp_path, server):
    cfg = config(tmp_path, f'[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\n'
                           f'base_url = "{server.openai_url}"\nstructured = "json_schema"\nstore = true\n')
    killed = run(cfg, failpoint="answer_received:3")
    assert killed.returncode == -9, killed.stderr
    assert len(server.api.bills) == 3  # the third answer was billed, then lost
    resumed = run(cfg)
    assert resumed.returncode == 0, resumed.stderr
    rows = calls(tmp_path / "cut.distilloop.db")
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 6 and len({r["request_hash"] for r in ok}) == 6
    recovered = [r for r in rows if r["charged"] == "recovered"]
    assert len(recovered) == 1 and not any(r["resend_of"] for r in rows)
    assert len(server.api.bills) == 6  # nothing bought twice: six questions, six answers billed
    con = sqlite3.connect(tmp_path / "cut.distilloop.db")
    ledger = con.execute("select sum(tokens_in), sum(tokens_out) from ledger").fetchone()
    billed = (sum(b["usage"]["prompt_tokens"] for b in server.api.bills),
              sum(b["usage"]["completion_tokens"] for b in server.api.bills))
    assert ledger == billed


def test_elsewhere_it_is_asked_again_charged_at_its_expected_cost_and_counted(tmp_path, server):
    cfg = config(tmp_path, f'[[teachers]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\n'
                           f'base_url = "{server.anthropic_url}"\n')
    assert run(cfg, failpoint="answer_received:3").returncode == -9
    # the killed command's call is no longer being asked: status says what becomes of it
    killed = subprocess.run([*CLI, "status", str(cfg)], capture_output=True, text=True, timeout=120)
    assert ("in_flight: 1" in killed.stdout and "(in_flight: cut off when the command asking them stopped; the next "
            "`distilloop run` settles them)" in killed.stdout), killed.stdout
    resumed = run(cfg)
    assert resumed.returncode == 0, resumed.stderr
    # said as the commands say their warnings, not as a log record ("WARNING: ...")
    assert "warning: 1 call(s) were in flight when the last command stopped" in resumed.stderr
    assert "WARNING" not in resumed.stderr
    rows = calls(tmp_path / "cut.distilloop.db")
    cut = [r for r in rows if r["status"] == "interrupted"]
    assert len(cut) == 1 and cut[0]["charged"] == "estimate"
    # charged what it was expected to cost, not the upper bound it reserved (11-17x the real price)
    assert cut[0]["cost_usd"] == pytest.approx(cut[0]["expected_usd"]) and cut[0]["cost_usd"] < cut[0]["reserved_usd"]
    resent = [r for r in rows if r["resend_of"] == cut[0]["id"]]
    assert len(resent) == 1 and resent[0]["status"] == "ok"
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 6 and len({r["request_hash"] for r in ok}) == 6
    assert len(server.api.bills) == 7  # the cut call and its re-send: the one price of a kill there
    status = subprocess.run([*CLI, "status", "--json", str(cfg)], capture_output=True, text=True, timeout=120)
    charging = json.loads(status.stdout)["charging"]
    assert charging["resent"] == 1 and charging["estimated"] == 1


def test_a_killed_relabel_charges_its_cut_call_before_it_resumes(tmp_path, server):
    """`relabel` resumed its round without settling the calls the killed one left in flight: they stayed
    'in_flight', uncharged (the provider may have billed them: the budget undercounted), and their items were
    asked again as if never asked. Now the resumed relabel charges them at their expected cost and counts the
    re-sends, as a resumed run does."""
    cfg = config(tmp_path, f'[[teachers]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\n'
                           f'base_url = "{server.anthropic_url}"\n')
    assert run(cfg).returncode == 0
    cfg.write_text(cfg.read_text().replace('task = "Classify the sentiment."', 'task = "Classify the sentiment (v2)."'))
    relabel = ("relabel", "--stale")
    assert run(cfg, failpoint="answer_received:3", command=relabel).returncode == -9
    resumed = run(cfg, command=("relabel",))
    assert resumed.returncode == 0, resumed.stderr
    rows = [r for r in calls(tmp_path / "cut.distilloop.db") if r["round"] == 2]
    assert not [r for r in rows if r["status"] == "in_flight"]
    cut = [r for r in rows if r["status"] == "interrupted"]
    assert len(cut) == 1 and cut[0]["charged"] == "estimate" and cut[0]["cost_usd"] == pytest.approx(
        cut[0]["expected_usd"])
    resent = [r for r in rows if r["resend_of"] == cut[0]["id"]]
    assert len(resent) == 1 and resent[0]["status"] == "ok"
    assert len([r for r in rows if r["status"] == "ok"]) == 6


def test_a_killed_pilot_s_cut_call_is_charged_by_the_next_pilot(tmp_path, server):
    cfg = config(tmp_path, f'[[teachers]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\n'
                           f'base_url = "{server.anthropic_url}"\n')
    pilot = ("pilot", "-n", "6")
    assert run(cfg, failpoint="answer_received:3", command=pilot).returncode == -9
    again = run(cfg, command=pilot)
    assert again.returncode == 0, again.stderr
    rows = calls(tmp_path / "cut.distilloop.db")
    cut = [r for r in rows if r["status"] == "interrupted"]
    assert not [r for r in rows if r["status"] == "in_flight"] and len(cut) == 1 and cut[0]["charged"] == "estimate"
    assert [r["status"] for r in rows if r["resend_of"] == cut[0]["id"]] == ["ok"]
