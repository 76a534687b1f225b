"""No API key ever appears in the store, the logs, an exception message, a repr or an export."""

import logging
import subprocess
import sys

import pytest

from distilloop.errors import TeacherError
from distilloop.storage.export import export_jsonl
from distilloop.testing.fake_api import FakeLLMAPI
from tests.unit.annotators.remote_helpers import anthropic_teacher, ask, items, openai_teacher
from tests.unit.annotators.test_fault_injection import open_campaign, remote_config

SECRET = "sk-proj-VERYSECRETkey0123456789abcdefXYZ"
FRAGMENTS = (SECRET, SECRET[3:], SECRET[-8:], SECRET[-4:], "VERYSECRET")


def assert_clean(text: str, where: str) -> None:
    for frag in FRAGMENTS:
        assert frag not in text, f"a fragment of the API key appears in {where}"


def test_the_key_is_nowhere_after_a_campaign_with_failures(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)  # the SDKs' and httpx2's debug logs included
    api = FakeLLMAPI(api_key=SECRET, fault_rate=0.3, seed=3, retry_after_s=0.001,
                     fault_kinds=("429", "500", "malformed_json", "bad_label"))
    config = remote_config(tmp_path, n=8)
    campaign = open_campaign(config, api)
    campaign.run()
    assert campaign.store.count("teacher_calls", "status = 'ok'") == 16
    assert campaign.store.count("teacher_calls", "status = 'error'") > 0
    export = tmp_path / "out.jsonl"
    export_jsonl(campaign.store, export)
    reprs = " ".join(repr(t) + str(t.__dict__.get("name")) for t in campaign.teachers)
    campaign.close()
    assert_clean(caplog.text, "the logs")
    assert_clean(reprs, "a teacher's repr")
    assert_clean(export.read_text(), "the export")
    for f in tmp_path.iterdir():  # the store, its WAL, the students, the config
        if f.is_file():
            assert_clean(f.read_bytes().decode("latin-1"), f.name)
    status = subprocess.run([sys.executable, "-m", "distilloop.cli", "status", "--json", str(config.path)],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert_clean(status.stdout + status.stderr, "`distilloop status`")


@pytest.mark.parametrize("make", [openai_teacher, anthropic_teacher])
def test_rejected_keys_are_redacted_from_exceptions(make, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    api = FakeLLMAPI(api_key="sk-the-server-expects-another-key")  # answers 401 quoting the key it got, masked
    t = make(api)
    with pytest.raises(TeacherError) as exc:
        ask(t, items()[0])
    assert exc.value.status == 401
    assert "[redacted]" in str(exc.value)
    assert_clean(str(exc.value) + repr(exc.value) + str(exc.value.args) + repr(t), "the exception")
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # the SDK's own error is not chained
    assert_clean(caplog.text, "the logs")
