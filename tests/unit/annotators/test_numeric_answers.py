"""Numeric answers (math word problems: GSM8K, SVAMP): prompts, schema, parsing, replay and self-consistency."""

import asyncio
import gzip
import json

import pytest

from distilloop.annotators import openai_teacher as openai_module
from distilloop.annotators.parsing import parse_answer
from distilloop.annotators.prompts import STYLES, get_style
from distilloop.annotators.replay import ReplayTeacher
from distilloop.core.answers import normalize_number
from distilloop.core.types import LabelingItem
from distilloop.errors import ConfigError, InvalidAnswer
from distilloop.testing.fake_api import FakeLLMAPI
from tests.unit.annotators.remote_helpers import (
    KEY,
    anthropic_teacher,
    ask,
    generation_requests,
    openai_teacher,
)

TASK = "Solve the math word problem."
QUESTION = {"question": "Natalia sold 48 clips in April and 24 in May. How many did she sell in all?"}


def item(**kw):
    return LabelingItem("q1", QUESTION, (), TASK, answer="number", **kw)


@pytest.mark.parametrize(("value", "canonical"), [
    (72, "72"), (72.0, "72"), ("72", "72"), (" 72. ", "72"), ("$1,800", "1800"), ("18 apples", "18"),
    (2.50, "2.5"), ("2.50", "2.5"), (-3, "-3"), ("-0.25", "-0.25"), (".5", "0.5"), (1e20, "100000000000000000000"),
    ("The answer is 42.", "42"), ("42 = 42", "42"), (17.000000000000004, "17"), (1 / 3, "0.333333"), (-0.0, "0"),
])
def test_numbers_are_normalised_to_one_canonical_string(value, canonical):
    assert normalize_number(value) == canonical


@pytest.mark.parametrize("value", [True, None, float("nan"), float("inf"), "three", "3 or 4", "", [3], {"a": 1}])
def test_non_numbers_and_ambiguous_strings_are_not_numbers(value):
    assert normalize_number(value) is None


def test_parse_reads_the_answer_field_as_a_number():
    p = parse_answer('{"rationale": "48/2 = 24; 48 + 24 = 72", "answer": 72}', (), "number")
    assert (p.label, p.rationale) == ("72", "48/2 = 24; 48 + 24 = 72")
    assert parse_answer({"rationale": "r", "answer": "72.0"}, (), "number").label == "72"
    # a reply that calls its answer "label" still counts, and so does a reply that is only the number
    assert parse_answer('{"rationale": "r", "label": 72}', (), "number").label == "72"
    assert (parse_answer("72", (), "number").label, parse_answer("72", (), "number").rationale) == ("72", None)


@pytest.mark.parametrize("raw", ['{"rationale": "r"}', '{"answer": "many"}', '{"answer": true}', "72 or 73",
                                 '{"answer": "3 or 4"}', "[72]"])
def test_a_reply_without_one_number_is_invalid(raw):
    with pytest.raises(InvalidAnswer):
        parse_answer(raw, (), "number")


@pytest.mark.parametrize("name", sorted(STYLES))
def test_every_style_asks_for_a_number_with_a_number_schema(name):
    opts = {"examples": [{"question": "2 + 2?", "label": "4", "rationale": "2 + 2 = 4"}]} if name == "few_shot_cot" else {}
    p = get_style(name).render(item(gold="72", student_explanation="48 + 24 = 72", student_label="72"), **opts)
    assert p.numeric and p.labels == ()
    props = p.schema["properties"]
    assert props["answer"] == {"type": "number", "description": "the final answer, a number"}
    if get_style(name).gives_rationale:
        # the working comes before the answer (a revision first names the step it corrects from)
        assert "label" not in props and list(props).index("rationale") < list(props).index("answer")
    else:
        assert list(props) == ["answer"]
    assert "The answer is a number." in p.text and "Allowed labels" not in p.text
    assert '"answer": <the final answer as a number>' in p.user


def test_ground_truth_priming_gives_the_gold_number_only_when_it_is_one():
    p = get_style("ground_truth_priming").render(item(gold="72.0"))
    assert p.extra == {"gold_given": True} and "The correct answer is 72." in p.user
    for gold in (None, "seventy-two"):
        q = get_style("ground_truth_priming").render(item(gold=gold))
        assert q.extra == {"gold_given": False} and "correct answer" not in q.user


def test_few_shot_examples_must_have_numeric_answers():
    style = get_style("few_shot_cot")
    p = style.render(item(), examples=[{"question": "2 + 2?", "label": "4", "rationale": "2 + 2 = 4"}])
    assert '"answer": 4' in p.system
    with pytest.raises(ConfigError, match="not a number"):
        style.render(item(), examples=[{"question": "2 + 2?", "label": "four", "rationale": "r"}])


def test_label_prompts_are_unchanged_by_the_numeric_mode():
    p = get_style("zero_shot_rationale").render(LabelingItem("1", {"text": "fine"}, ("negative", "positive"), "C."))
    assert not p.numeric and p.schema["properties"]["label"]["enum"] == ["negative", "positive"]
    assert p.user.endswith('"label": "<one of the allowed labels>"}')


def test_replay_answers_numeric_recordings(tmp_path):
    path = tmp_path / "rec.jsonl.gz"
    rows = [{"teacher": "t", "example_id": "q1", "raw": '{"rationale": "48 + 24 = 72", "answer": 72.0}',
             "tokens_in": 90, "tokens_out": 30},
            {"teacher": "t", "example_id": "q2", "raw": '{"rationale": "cut", "answer": ', "label": "18",
             "rationale": "cut", "tokens_in": 80, "tokens_out": 256},
            {"teacher": "t", "example_id": "q3", "raw": '{"rationale": "r", "answer": "lots"}', "label": None,
             "tokens_in": 80, "tokens_out": 12}]
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    t = ReplayTeacher(name="t", model="replay", path=str(path), source="t")
    answers = {}
    for ex in ("q1", "q2", "q3"):
        it = LabelingItem(ex, QUESTION, (), TASK, answer="number")
        answers[ex] = asyncio.run(t.answer(t.render(it), it))
    assert (answers["q1"].label, answers["q1"].rationale, answers["q1"].usage.tokens_in) == ("72", "48 + 24 = 72", 90)
    assert answers["q2"].label == "18"  # the recorded parsed answer where the raw reply was cut off
    assert not answers["q3"].valid and "not a number" in answers["q3"].error


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setattr(openai_module, "_DETECTED", {})
    return FakeLLMAPI(api_key=KEY)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_remote_teachers_send_the_number_schema_and_parse_the_number(api, provider):
    t = openai_teacher(api, logprobs=False) if provider == "openai" else anthropic_teacher(api)
    ans = ask(t, item())
    assert ans.valid and ans.label == "72" and "72" in ans.rationale  # 48 + 24 is what the fake's solver adds
    assert ans.distribution is None  # no label set to spread logprobs over
    body = json.dumps(generation_requests(api)[0]["json"])
    assert '"answer": {"type": "number"' in body


def test_a_teacher_answering_no_number_is_invalid_and_billed(api):
    api.faults = ["bad_label"]
    ans = ask(openai_teacher(api, logprobs=False), item())
    assert not ans.valid and ans.label is None and "not a number" in ans.error
    assert ans.usage.tokens_out > 0


def test_self_consistency_votes_over_the_numbers_the_samples_gave(api):
    said = iter([72, 72, 96])
    api.solver = lambda text: next(said)
    ans = ask(openai_teacher(api, samples=3, confidence="self_consistency", logprobs=False), item())
    assert len(generation_requests(api)) == 3
    assert ans.label == "72" and ans.confidence_source == "self_consistency"
    assert ans.distribution == pytest.approx({"72": 2 / 3, "96": 1 / 3}) and ans.confidence == pytest.approx(2 / 3)
