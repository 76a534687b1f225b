"""Label Studio reviewer pieces that need no server (the server tests are in tests/integration)."""

import json
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from distilloop.annotators.label_studio import (
    SECRET_HEADER,
    LabelStudioReviewer,
    _WebhookListener,
    labeling_config,
    parse_annotation,
    task_payload,
)
from distilloop.errors import ConfigError, ReviewError
from tests.contracts.reviewer import review_item


def test_labeling_config_is_xml_with_every_label_even_odd_ones():
    labels = ["neg", 'say "yes"', "a<b"]
    root = ET.fromstring(labeling_config(labels))
    assert [c.get("value") for c in root.iter("Choice")] == labels
    assert {e.tag for e in root} >= {"Text", "HyperText", "Choices", "TextArea"}


def test_task_payload_escapes_rationales_and_prefills_the_vote():
    item = review_item(1)
    item.verdict.votes[1]["rationale"] = '<img src=x onerror="alert(1)">'
    task = task_payload(item)
    assert "<img" not in task["data"]["teachers_html"] and "&lt;img" in task["data"]["teachers_html"]
    assert task["data"]["teachers"][1]["rationale"] == '<img src=x onerror="alert(1)">'  # raw in the data
    assert task["predictions"][0]["result"][0]["value"] == {"choices": ["positive"]}


def test_parse_annotation():
    ann = {"result": [{"from_name": "label", "value": {"choices": ["negative"]}},
                      {"from_name": "rationale", "value": {"text": ["  too long  "]}}]}
    assert parse_annotation(ann) == ("negative", "too long")
    assert parse_annotation({"result": []}) == (None, None)
    # a project whose labeling config people rewrote: its one choice control, whatever its name, is the answer
    # (before: no label read, and the item waited for ever with its annotation in Label Studio)
    mine = {"result": [{"from_name": "sentiment", "value": {"choices": ["positive"]}},
                       {"from_name": "comment", "value": {"text": ["spoilers"]}}]}
    assert parse_annotation(mine) == ("positive", None)
    two = {"result": [{"from_name": "sentiment", "value": {"choices": ["positive"]}},
                      {"from_name": "topic", "value": {"choices": ["plot"]}}]}
    assert parse_annotation(two) == (None, None)  # which one answers is not for distilloop to guess
    assert parse_annotation({"result": two["result"] + ann["result"]}) == ("negative", "too long")


def post(port, body, secret=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps(body).encode(), method="POST",
                                 headers={SECRET_HEADER: secret} if secret else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_webhook_listener_needs_the_shared_secret():
    got = []
    listener = _WebhookListener("127.0.0.1", 0, "right", lambda task, ann: got.append((task, ann["id"])))
    try:
        body = {"action": "ANNOTATION_CREATED", "task": {"id": 7}, "annotation": {"id": 3, "result": []}}
        assert post(listener.port, body) == 403
        assert post(listener.port, body, "wrong") == 403
        assert got == []
        assert post(listener.port, body, "right") == 200
        assert got == [(7, 3)]
    finally:
        listener.close()
    with pytest.raises(ConfigError, match="loopback"):
        _WebhookListener("0.0.0.0", 0, "s", lambda t, a: None)


def test_key_comes_from_the_environment_and_is_never_shown(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    r = LabelStudioReviewer(api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(ReviewError, match="NO_SUCH_KEY_VAR"):
        r.client()
    monkeypatch.setenv("NO_SUCH_KEY_VAR", "super-secret-token")
    assert "super-secret-token" not in repr(LabelStudioReviewer(api_key_env="NO_SUCH_KEY_VAR"))
    with pytest.raises(ConfigError, match="50 characters"):
        LabelStudioReviewer(project_title="x" * 51)
