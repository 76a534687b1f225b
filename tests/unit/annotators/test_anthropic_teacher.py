"""AnthropicTeacher through the real anthropic SDK against the wire-compatible fake (httpx2.MockTransport)."""

import pytest

from distilloop.errors import ConfigError, TeacherError
from distilloop.testing.fake_api import FakeLLMAPI
from tests.unit.annotators.remote_helpers import (
    KEY,
    LABELS,
    anthropic_teacher,
    ask,
    generation_requests,
    items,
)


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return FakeLLMAPI(api_key=KEY)



def test_tool_use_answer_and_the_cached_prefix_billed_at_its_own_rates(api):
    t = anthropic_teacher(api)
    first, second = ask(t, items()[1]), ask(t, items()[2])
    assert first.valid and first.label == "positive" and second.label == "negative"
    req = generation_requests(api)[0]
    body = req["json"]
    assert req["authorization"] == f"Bearer {KEY}"
    assert body["tool_choice"] == {"type": "tool", "name": "record_label"}
    assert body["tools"][0]["input_schema"]["properties"]["label"]["enum"] == list(LABELS)
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"} and "temperature" not in body
    # the first call writes the cache, the second reads it; tokens_in counts all input tokens
    assert first.usage.cache_write_tokens > 0 and first.usage.cached_tokens == 0
    assert second.usage.cached_tokens == first.usage.cache_write_tokens and second.usage.cache_write_tokens == 0
    u = api.billed[1]
    assert second.usage.tokens_in == u["input_tokens"] + u["cache_read_input_tokens"]
    p = t._price
    expect_first = ((first.usage.tokens_in - first.usage.cache_write_tokens) * p.input
                    + first.usage.cache_write_tokens * p.cache_write + first.usage.tokens_out * p.output) / 1e6
    assert t.cost(first.usage) == pytest.approx(expect_first)
    assert t.cost(second.usage) < t.cost(first.usage)
    # no logprobs and no confidence asked: none is claimed
    assert first.confidence is None and first.confidence_source is None


def test_json_schema_output_format(api):
    t = anthropic_teacher(api, structured="json_schema", cache_prompt=False)
    ans = ask(t, items()[0])
    body = generation_requests(api)[0]["json"]
    assert body["output_config"]["format"]["type"] == "json_schema" and "tools" not in body
    assert isinstance(body["system"], str)
    assert ans.valid and ans.label == "negative"


def test_verbalized_confidence_from_confidence_priming(api):
    t = anthropic_teacher(api, prompt="confidence_priming", confidence="verbalized")
    ans = ask(t, items()[0])
    assert ans.confidence == pytest.approx(api.confidence) and ans.confidence_source == "verbalized"
    assert "confidence" in generation_requests(api)[0]["json"]["tools"][0]["input_schema"]["required"]


def test_self_consistency_is_the_share_of_samples(api):
    calls = iter(["positive", "negative", "positive", "positive", "negative"])
    api.labeler = lambda text, labels: next(calls)
    t = anthropic_teacher(api, samples=5, confidence="self_consistency")
    ans = ask(t, items()[0])
    assert ans.label == "positive" and ans.confidence == pytest.approx(0.6)
    assert ans.distribution == pytest.approx({"negative": 0.4, "positive": 0.6})
    assert ans.confidence_source == "self_consistency" and len(generation_requests(api)) == 5


@pytest.mark.parametrize("fault,status", [("429", 429), ("529", 529), ("500", 500)])
def test_overload_and_rate_limits_are_retryable_with_retry_after(api, fault, status):
    api.faults = [fault]
    t = anthropic_teacher(api)
    with pytest.raises(TeacherError) as exc:
        ask(t, items()[0])
    assert exc.value.retryable and exc.value.status == status and len(generation_requests(api)) == 1
    if fault == "429":
        assert exc.value.retry_after == pytest.approx(api.retry_after_s)


def test_a_label_outside_the_set_is_invalid(api):
    api.faults = ["bad_label"]
    ans = ask(anthropic_teacher(api), items()[0])
    assert not ans.valid and "not in the label set" in ans.error


def test_estimate_bounds_the_tool_overhead_and_cache_write_rate(api):
    t = anthropic_teacher(api)
    item = items()[0]
    est = t.estimate(t.render(item))
    ans = ask(t, item)
    assert ans.usage.tokens_in <= est.tokens_in and t.cost(ans.usage) <= est.usd


def test_logprobs_confidence_is_refused():
    with pytest.raises(ConfigError, match="no logprobs"):
        anthropic_teacher(FakeLLMAPI(), confidence="logprobs")


def test_cache_writes_of_a_model_priced_by_hand_are_billed_at_anthropics_rate():
    """A model missing from the price table, priced with input and output only: cache writes cost 1.25x the input
    price and cache reads 0.1x, as Anthropic bills them (they were charged at the plain input rate)."""
    from distilloop.annotators.anthropic_teacher import AnthropicTeacher
    from distilloop.core.types import Usage

    t = AnthropicTeacher(name="c", model="claude-next", price={"input": 3.0, "output": 15.0})
    usage = Usage(4100, 100, cached_tokens=0, cache_write_tokens=4000)
    assert t.cost(usage) == pytest.approx((100 * 3.0 + 4000 * 3.75 + 100 * 15.0) / 1e6)
    assert t.cost(Usage(4100, 100, cached_tokens=4000)) == pytest.approx((100 * 3.0 + 4000 * 0.3 + 100 * 15.0) / 1e6)
    # the reservation bounds it: every input token at the dearest input rate, the cache write's
    est = t.estimate(t.render(items()[0]))
    assert est.usd == pytest.approx((est.tokens_in * 3.75 + est.tokens_out * 15.0) / 1e6)


def test_a_refusal_reads_as_one(monkeypatch):
    """Anthropic's stop_reason "refusal" with no content was an invalid answer "reply is not JSON: ''"; it reads
    "[refusal]", as OpenAI's message.refusal does."""
    from distilloop.annotators.anthropic_teacher import AnthropicTeacher
    from tests.unit.annotators.remote_helpers import KEY, items

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    t = AnthropicTeacher(name="claude", model="claude-haiku-4-5")
    ans = t.parse_message({"content": [], "stop_reason": "refusal", "usage": {"input_tokens": 10, "output_tokens": 0}},
                          t.render(items()[0]), 0.1)
    assert not ans.valid and ans.raw.startswith("[refusal]") and "[refusal]" in (ans.error or "")
