"""A campaign whose teachers all fail (a wrong key, an outage) stops at once with the reason and a non-zero exit,
instead of marking round after round done with no label; it resumes once the cause is fixed."""

import json
import os
import subprocess
import sys

import pytest

from distilloop.testing.fake_api import FakeLLMAPI
from distilloop.testing.fake_api.http import serve
from tests.conftest import campaign_toml

KEY = "sk-the-right-key-0123456789"
CLI = [sys.executable, "-m", "distilloop.cli"]


def cli(*args, key=KEY):
    env = {**os.environ, "OPENAI_API_KEY": key}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def server():
    with serve(FakeLLMAPI(api_key=KEY)) as s:
        yield s


def config(tmp_path, server):
    path = tmp_path / "campaign.toml"
    path.write_text(campaign_toml(name="fail", rounds="max_rounds = 3\ninitial_size = 8\nbatch_size = 8",
                                  extra=f'[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\n'
                                        f'base_url = "{server.openai_url}"\nstructured = "json_schema"\n'))
    return path


def test_a_wrong_key_stops_the_campaign_with_the_reason(tmp_path, server):
    cfg = config(tmp_path, server)
    r = cli("run", "-q", str(cfg), key="sk-a-wrong-key-9876543210")
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "every teacher failed" in errors[0] and "HTTP 401" in errors[0]
    assert "check the API key" in errors[0] and "9876543210" not in r.stderr and "Traceback" not in r.stderr
    status = json.loads(cli("status", "--json", str(cfg)).stdout)
    assert status["rounds"] == 1 and status["rounds_table"][0]["status"] == "annotating"
    assert "every teacher failed" in status["stop_reason"]
    fixed = cli("run", "-q", str(cfg))  # the right key: the round resumes, the campaign goes on
    assert fixed.returncode == 0, fixed.stderr
    assert [r["status"] for r in json.loads(cli("status", "--json", str(cfg)).stdout)["rounds_table"]] == ["done"] * 3


def test_an_outage_stops_the_campaign_instead_of_burning_its_rounds(tmp_path, server):
    server.api.faults = ["500"] * 10_000
    cfg = config(tmp_path, server)
    r = cli("run", "-q", str(cfg))
    assert r.returncode == 1 and "every teacher failed" in r.stderr and "HTTP 500" in r.stderr
    status = json.loads(cli("status", "--json", str(cfg)).stdout)
    assert status["rounds"] == 1 and status["labeled"] == 0


def test_a_wrong_key_is_the_reason_given_even_when_the_cascades_next_teacher_no_longer_fits_the_cap(tmp_path, server):
    """A cascade whose first teacher answers 401 on every item escalates to the second, whose calls reserve more
    than the cap has left: the stop said "budget spent ... raise the cap", which would not have helped."""
    cfg = tmp_path / "campaign.toml"
    teachers = "".join(f'[[teachers]]\nname = "{n}"\nkind = "{k}"\nmodel = "{m}"\nbase_url = "{u}"\n'
                       for n, k, m, u in [("gpt", "openai", "gpt-4o-mini", server.openai_url),
                                          ("claude", "anthropic", "claude-haiku-4-5", server.anthropic_url)])
    cfg.write_text(campaign_toml(name="cut", budget="max_usd = 0.0006", rounds="max_rounds = 1\ninitial_size = 8",
                                 extra=teachers + '[routing]\ncascade = ["gpt", "claude"]\n'))
    env = {**os.environ, "OPENAI_API_KEY": "sk-a-wrong-key-9876543210", "ANTHROPIC_API_KEY": KEY}
    r = subprocess.run([*CLI, "run", "-q", str(cfg)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "round 1: no item was answered: the teachers asked failed, and what is left of the " \
        "budget does not cover a call of the others (gpt: " in errors[0], r.stderr
    assert "HTTP 401" in errors[0] and "raise the cap" not in errors[0] and "fix the cause (the key" in errors[0]
