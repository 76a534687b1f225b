"""OpenAITeacher through the real openai SDK against the wire-compatible fake (httpx2.MockTransport)."""

import asyncio
import json

import pytest

from distilloop.annotators import openai_teacher as openai_module
from distilloop.annotators.openai_compatible import OpenAICompatibleTeacher
from distilloop.errors import ConfigError, TeacherError
from distilloop.testing.fake_api import FakeLLMAPI
from tests.unit.annotators.remote_helpers import KEY, LABELS, ask, generation_requests, items, openai_teacher


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setattr(openai_module, "_DETECTED", {})
    return FakeLLMAPI(api_key=KEY)



def test_structured_answer_with_a_logprob_confidence_and_cached_tokens(api):
    t = openai_teacher(api)
    first, second = ask(t, items()[1]), ask(t, items()[3])
    assert first.valid and first.label == "positive" and first.rationale
    assert first.confidence_source == "logprobs" and first.confidence == pytest.approx(0.8)
    assert first.distribution == pytest.approx({"negative": 0.2, "positive": 0.8})
    body = generation_requests(api)[0]["json"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == list(LABELS)
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    # the shared system prompt is cached by the provider the second time: billed at the cached rate
    assert first.usage.cached_tokens == 0 < second.usage.cached_tokens < second.usage.tokens_in
    p = t._price
    expect = ((second.usage.tokens_in - second.usage.cached_tokens) * p.input
              + second.usage.cached_tokens * p.cached_input + second.usage.tokens_out * p.output) / 1e6
    assert t.cost(second.usage) == pytest.approx(expect) and t.cost(second.usage) < t.cost(first.usage)


def test_responses_api(api):
    t = openai_teacher(api, api="responses")
    ans = ask(t, items()[0])
    assert ans.valid and ans.label == "negative" and ans.confidence_source == "logprobs"
    req = generation_requests(api)[0]
    assert req["path"] == "/v1/responses"
    assert req["json"]["text"]["format"]["type"] == "json_schema"
    assert req["json"]["include"] == ["message.output_text.logprobs"]


def test_a_label_outside_the_set_or_non_json_is_an_invalid_but_billed_answer(api):
    api.faults = ["bad_label", "bad_content"]
    t = openai_teacher(api)
    for ans in (ask(t, items()[0]), ask(t, items()[1])):
        assert not ans.valid and ans.label is None and ans.error and ans.usage.tokens_in > 0


def test_an_answer_in_keyed_lines_is_read_through_the_sdk(api):
    """A server that ignores the JSON format: '**Label:** ... / **Rationale:** ...' is the answer, not an invalid
    (billed, wasted) one."""
    api.faults = ["keyed_lines"]
    ans = ask(openai_teacher(api), items()[0])
    assert ans.valid and ans.label in LABELS and ans.rationale.startswith("The wording of the text points to")


@pytest.mark.parametrize("fault,status,retryable", [("429", 429, True), ("500", 500, True), ("529", 503, True),
                                                    ("malformed_json", None, True), ("disconnect", None, True)])
def test_failures_map_to_teacher_errors_and_the_sdk_does_not_retry(api, fault, status, retryable):
    api.faults = [fault]
    t = openai_teacher(api, structured="json_schema")
    with pytest.raises(TeacherError) as exc:
        ask(t, items()[0])
    assert exc.value.retryable is retryable and exc.value.status == status
    assert len(generation_requests(api)) == 1  # max_retries=0: the ensemble retries and records each attempt
    if fault == "429":
        assert exc.value.retry_after == pytest.approx(api.retry_after_s)  # the ensemble pauses the teacher for it
    assert exc.value.maybe_billed is (fault in ("malformed_json", "disconnect"))  # sent, then lost


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_page_where_the_api_should_be_is_said_so_and_not_retried(api, kind, monkeypatch):
    """A proxy's login page (a 200 of HTML) at base_url: the SDKs hand the body back as a string, and the teacher
    failed with "malformed response: ValueError: dictionary update sequence element #0 has length 1"."""
    from tests.unit.annotators.remote_helpers import KEY, anthropic_teacher

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api.faults = ["html_page"]
    t = openai_teacher(api, structured="json_schema") if kind == "openai" else anthropic_teacher(api)
    with pytest.raises(TeacherError) as exc:
        ask(t, items()[0])
    assert "answered with a page, not the API's JSON (it begins: <html><body><h1>Sign in</h1> to continue" in \
        str(exc.value) and "check base_url" in str(exc.value), str(exc.value)
    assert not exc.value.retryable and not exc.value.maybe_billed
    assert ("ends in /v1" in str(exc.value)) is (kind == "openai")
    api.faults = ["error_200"]  # a gateway's 200 carrying an error: "unexpected response shape: TypeError(...)"
    with pytest.raises(TeacherError, match="answered with an error instead of an answer: upstream quota exhausted"):
        ask(t, items()[0])


@pytest.mark.parametrize("kind", ["chat", "responses", "anthropic"])
def test_an_answer_cut_at_max_tokens_says_to_raise_it(api, kind, monkeypatch):
    """A reasoning model given the starter's max_tokens spends them thinking and answers nothing (finish_reason
    "length"): every answer was "invalid" with a parse error and nothing said the cap was the cause."""
    from tests.unit.annotators.remote_helpers import KEY, anthropic_teacher

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api.faults = ["cut", None]
    t = (anthropic_teacher(api, max_tokens=96) if kind == "anthropic" else
         openai_teacher(api, structured="json_schema", api=kind, max_tokens=96))
    ans = ask(t, items()[0])
    assert not ans.valid and ans.usage.tokens_out == 96  # billed: the tokens were spent
    assert "the answer was cut at max_tokens = 96: raise this teacher's max_tokens" in ans.error, ans.error
    ok = ask(t, items()[1])
    assert ok.valid and (ok.error or "") == ""


def test_a_wrong_key_is_not_retryable_and_never_shown(api, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-secret-9876543210")
    t = openai_teacher(api)
    with pytest.raises(TeacherError) as exc:
        ask(t, items()[0])
    assert exc.value.status == 401 and not exc.value.retryable
    text = str(exc.value) + repr(exc.value) + repr(t)
    assert "9876543210" not in text and "sk-wrong" not in text and "3210" not in text
    assert "API key" in str(exc.value)


def test_a_missing_key_says_which_variable_to_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from distilloop.annotators.openai_teacher import OpenAITeacher

    t = OpenAITeacher(name="g", model="gpt-4o-mini")
    with pytest.raises(TeacherError, match="OPENAI_API_KEY is not set") as exc:
        ask(t, items()[0])
    assert not exc.value.retryable


def test_a_server_that_wants_a_key_says_where_to_configure_one(monkeypatch):
    """A compatible server behind a key (vLLM --api-key): the 401 names the fix, not a variable nobody set."""
    monkeypatch.setattr(openai_module, "_DETECTED", {})
    monkeypatch.delenv("SERVER_KEY", raising=False)
    api = FakeLLMAPI(api_key=KEY)
    for kw, hint in (({}, "api_key_env in teacher llama's \\[\\[teachers\\]\\] entry"),
                     ({"api_key_env": "SERVER_KEY"}, "\\$SERVER_KEY is not set")):
        t = OpenAICompatibleTeacher(name="llama", model="local", base_url="http://fake.test/v1",
                                    http_client=api.async_client(), **kw)
        with pytest.raises(TeacherError, match=f"HTTP 401.*{hint}") as exc:
            ask(t, items()[0])
        assert not exc.value.retryable
    monkeypatch.setenv("SERVER_KEY", "sk-wrong-secret-9876543210")
    t = OpenAICompatibleTeacher(name="llama", model="local", base_url="http://fake.test/v1",
                                http_client=api.async_client(), api_key_env="SERVER_KEY")
    with pytest.raises(TeacherError, match="check the API key in \\$SERVER_KEY"):
        ask(t, items()[0])


def test_json_schema_unsupported_falls_back_once_and_is_remembered(monkeypatch):
    monkeypatch.setattr(openai_module, "_DETECTED", {})
    api = FakeLLMAPI(api_key=KEY, supports_json_schema=False)
    monkeypatch.setenv("SERVER_KEY", KEY)
    t = OpenAICompatibleTeacher(name="llama", model="local", base_url="http://fake.test/v1",
                                http_client=api.async_client(), api_key_env="SERVER_KEY")
    a, b = ask(t, items()[0]), ask(t, items()[1])
    assert a.valid and b.valid and t.detected_mode == "json_object"
    kinds = [(r["json"].get("response_format") or {}).get("type") for r in generation_requests(api)]
    # the 500 names the unsupported response_format: json_object at once, and the second call goes straight to it
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert generation_requests(api)[-1]["json"]["response_format"]["schema"]["required"] == ["rationale", "label"]
    assert "max_tokens" in generation_requests(api)[-1]["json"]  # compatible servers get max_tokens
    assert t.cost(a.usage) == 0.0  # a local server is free unless priced


def test_transient_server_errors_never_downgrade_the_structured_output_mode(monkeypatch):
    """Two plain HTTP 500s on the first call (an outage, not a missing feature) leave the mode unknown: the next
    call probes json_schema again and keeps it."""
    monkeypatch.setattr(openai_module, "_DETECTED", {})
    api = FakeLLMAPI(api_key=KEY, faults=["500", "500"])
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    t = openai_teacher(api)
    for _ in range(2):
        with pytest.raises(TeacherError, match="HTTP 500") as exc:
            ask(t, items()[0])
        assert exc.value.retryable
    assert t.detected_mode is None
    assert ask(t, items()[0]).valid and t.detected_mode == "json_schema"
    kinds = [(r["json"].get("response_format") or {}).get("type") for r in generation_requests(api)]
    assert kinds == ["json_schema"] * 3


def test_the_probe_lock_is_per_event_loop(monkeypatch):
    """A campaign runs each round in its own event loop: the probe lock of a round whose probe never succeeded
    must not be reused in the next (asyncio locks are bound to one loop)."""
    monkeypatch.setattr(openai_module, "_DETECTED", {})
    api = FakeLLMAPI(api_key=KEY, faults=["500"] * 4, latency_s=0.01)  # the calls overlap
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    t = openai_teacher(api)

    async def two_at_once():
        return await asyncio.gather(*(t.answer(t.render(it), it) for it in items(2)), return_exceptions=True)

    first = asyncio.run(two_at_once())  # both probes fail; the second waited on the lock
    assert all(isinstance(r, TeacherError) for r in first)
    api.faults = ["500", "500"]
    second = asyncio.run(two_at_once())  # a new loop: no "bound to a different event loop"
    assert all(isinstance(r, TeacherError) and "HTTP 500" in str(r) for r in second)
    assert all(r.valid for r in asyncio.run(two_at_once()))


def test_prompt_and_parse_when_no_structured_mode_is_supported(api, monkeypatch):
    t = openai_teacher(api, structured="prompt", logprobs=False)
    ans = ask(t, items()[0])
    body = generation_requests(api)[0]["json"]
    assert "response_format" not in body and "logprobs" not in body
    assert ans.valid and ans.confidence is None and ans.confidence_source is None


def test_self_consistency_samples_and_bills_every_sample(api):
    t = openai_teacher(api, samples=3, confidence="self_consistency", logprobs=False)
    item = items()[1]
    est = t.estimate(t.render(item))
    ans = ask(t, item)
    assert len(generation_requests(api)) == 3
    assert {r["json"]["temperature"] for r in generation_requests(api)} == {0.7}
    assert ans.confidence_source == "self_consistency" and ans.confidence == 1.0 and ans.label == "positive"
    assert ans.usage.tokens_in == sum(u["prompt_tokens"] for u in api.billed)
    assert len(json.loads(ans.raw)) == 3 and ans.usage.tokens_in <= est.tokens_in


def test_self_consistency_failure_carries_the_spend_of_the_samples_that_answered(api):
    api.faults = [None, "500"]
    t = openai_teacher(api, samples=2, confidence="self_consistency", structured="json_schema")
    with pytest.raises(TeacherError) as exc:
        ask(t, items()[0])
    assert exc.value.spend.tokens_in == api.billed[0]["prompt_tokens"] and exc.value.spend.usd > 0


@pytest.mark.parametrize("kw,match", [({"mode": "later"}, "mode"), ({"structured": "xml"}, "structured"),
                                      ({"confidence": "self_consistency"}, "samples >= 2"),
                                      ({"confidence": "verbalized"}, "confidence_priming"),
                                      ({"requests_per_minute": -1}, "requests_per_minute"),
                                      ({"top_logprobs": 50}, "top_logprobs"),
                                      ({"model": "  "}, "model is empty")])
def test_bad_options_are_config_errors(api, kw, match):
    with pytest.raises(ConfigError, match=match):
        openai_teacher(api, **kw)


def test_compatible_teacher_needs_a_base_url():
    with pytest.raises(ConfigError, match="base_url"):
        OpenAICompatibleTeacher(name="x", model="m")


def test_request_hash_ignores_transport_and_mode_but_not_the_server(api):
    a = openai_teacher(api)
    b = openai_teacher(api, mode="batch", max_concurrency=2)
    p = a.render(items()[0])
    assert a.request_hash(p) == b.request_hash(p)
    from distilloop.annotators.openai_teacher import OpenAITeacher

    other = OpenAITeacher(name="gpt", model="gpt-4o-mini", base_url="https://elsewhere/v1")
    assert other.request_hash(p) != a.request_hash(p)


def test_a_timeout_over_real_http_is_retryable(monkeypatch):
    from distilloop.annotators.openai_teacher import OpenAITeacher
    from distilloop.testing.fake_api import serve

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with serve(FakeLLMAPI(api_key=KEY, latency_s=0.5)) as server:
        t = OpenAITeacher(name="g", model="gpt-4o-mini", base_url=server.openai_url, timeout_s=0.05,
                          structured="json_schema")
        with pytest.raises(TeacherError, match="did not answer within 0.05 s") as exc:
            ask(t, items()[0])
    assert exc.value.retryable and exc.value.status is None


def test_a_server_that_reports_no_usage_is_charged_an_upper_bound_and_the_cap_holds(caplog):
    """A proxy or a server of one's own that leaves ``usage`` out of its completions: every call was charged 0 tokens
    and $0, so a token cap never stopped the campaign. Such a call is charged an upper bound of what it used (one
    token per byte of the prompt and of the reply), said once; the cap then stops the calls."""
    import httpx2

    from distilloop.annotators.ensemble import Retry, TeacherEnsemble
    from distilloop.core.ledger import Budget, Caps
    from distilloop.storage.store import Store

    reply = json.dumps({"rationale": "r", "label": "positive"})

    def handler(request):
        return httpx2.Response(200, json={"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                                          "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                              "role": "assistant", "content": reply}}]})

    t = OpenAICompatibleTeacher(name="own", model="m", base_url="http://127.0.0.1:9/v1", structured="json_schema",
                                logprobs=False, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))
    prompt = t.render(items(1)[0])
    bound = t.estimate(prompt)
    store = Store.memory()
    budget = Budget(Caps(tokens_in=bound.tokens_in * 3))
    with caplog.at_level("WARNING"):
        res = asyncio.run(TeacherEnsemble([t], store, budget, concurrency=1, retry=Retry(backoff_s=0)).annotate(
            items(10), 1))
    spent = store.spent()
    assert spent.tokens_out == 3 * len(reply.encode()) and bound.tokens_in <= spent.tokens_in // 3
    assert spent.tokens_in <= bound.tokens_in * 3 and res.paid_calls == 3 and res.budget_exhausted
    said = [r.getMessage() for r in caplog.records if "reports no token usage" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("teacher own:"), said


def test_the_fakes_models_can_disagree_the_same_way_each_time(api):
    """Every fake "model" gave the labeler's answer, so a campaign of two API teachers on the fake never sent an
    item to review (trying examples/api_review against it showed no Label Studio step). With ``disagree`` each
    model answers another label on about that share of the items, the same on every ask (a resumed run's)."""
    api.disagree = 0.3
    gpt, mini = openai_teacher(api, structured="json_schema"), openai_teacher(api, model="gpt-4.1-mini",
                                                                             structured="json_schema")
    its = items(60)
    a = [ask(gpt, it).label for it in its]
    b = [ask(mini, it).label for it in its]
    assert a == [ask(gpt, it).label for it in its]  # the same answers when asked again
    differ = sum(x != y for x, y in zip(a, b)) / len(its)
    assert 0.2 <= differ <= 0.65, differ  # each off on ~30%: they part on ~42%
    plain = FakeLLMAPI(api_key=KEY)
    assert [ask(openai_teacher(plain), it).label for it in its] == [ask(openai_teacher(plain, model="gpt-4o"), it).label
                                                                    for it in its]
