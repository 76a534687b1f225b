"""A teacher's label distribution from an API's token logprobs, where labels begin alike: the first token alone
cannot tell ``card arrival`` from ``card payment`` (nor ``intent_1`` from ``intent_17``), and such a teacher had no
distribution at all: no confidence (a cascade asked its next teacher about every item) and no calibration."""

import math

import pytest

from distilloop.annotators.logprobs import label_distribution
from distilloop.core.types import LabelingItem
from distilloop.testing.fake_api import FakeLLMAPI
from tests.unit.annotators.remote_helpers import KEY, ask, openai_teacher


def token(text, alternatives):
    probs = dict(alternatives)
    return {"token": text, "logprob": math.log(probs.get(text, 0.5)),
            "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in alternatives]}


OPEN = token('{"label": "', [('{"label": "', 1.0)])
CLOSE = token('"}', [('"}', 1.0)])


def test_labels_that_begin_alike_are_told_apart_where_the_answer_parts_from_them():
    labels = ["card arrival", "card payment", "balance"]
    tokens = [OPEN, token("card", [("card", 0.9), ("bal", 0.1)]), token(" payment", [(" payment", 0.6), (" arrival", 0.4)]),
              CLOSE]
    assert label_distribution(tokens, '{"label": "card payment"}', labels) == pytest.approx(
        {"card arrival": 0.36, "card payment": 0.54, "balance": 0.1})


def test_a_label_that_begins_another_is_the_answer_only_where_its_value_closes():
    labels = [f"intent_{i}" for i in range(20)]
    tokens = [OPEN, token("intent_17", [("intent_17", 0.7), ("intent_3", 0.1), ("intent_1", 0.2)]), CLOSE]
    d = label_distribution(tokens, '{"label": "intent_17"}', labels)
    # "intent_1" could go on to intent_10..19: its 0.2 is shared by the 11 labels it begins, intent_17 among them
    assert d["intent_17"] == pytest.approx(0.7 + 0.2 / 11) and d["intent_3"] == pytest.approx(0.1)
    closed = [OPEN, token("intent_1", [("intent_1", 0.8), ("intent_2", 0.2)]), token('"}', [('"}', 0.9), ("7", 0.1)])]
    d = label_distribution(closed, '{"label": "intent_1"}', labels)
    assert d["intent_1"] == pytest.approx(0.72) and d["intent_17"] == pytest.approx(0.08)
    assert d["intent_2"] == pytest.approx(0.2)


def test_two_labels_read_as_before():
    tokens = [OPEN, token("pos", [("pos", 0.8), ("neg", 0.2)]), token('itive"}', [('itive"}', 1.0)])]
    assert label_distribution(tokens, '{"label": "positive"}', ["negative", "positive"]) == pytest.approx(
        {"negative": 0.2, "positive": 0.8})


def test_an_openai_teacher_on_labels_that_begin_alike_has_its_confidence(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    api = FakeLLMAPI(api_key=KEY)
    labels = ("card arrival", "card payment", "balance", "transfer")
    item = LabelingItem("e1", {"text": "my card payment was declined"}, labels, "Classify the bank message.")
    answer = ask(openai_teacher(api), item)
    assert answer.label == "card payment" and answer.confidence_source == "logprobs"
    assert answer.confidence == pytest.approx(0.8) and answer.distribution["card arrival"] == pytest.approx(0.2 / 3)
