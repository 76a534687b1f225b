import asyncio
from dataclasses import dataclass

from distilloop.annotators.base import Teacher
from distilloop.annotators.ensemble import TeacherEnsemble
from distilloop.core.ledger import Budget, Caps
from distilloop.core.types import LabelingItem, TeacherAnswer, Usage
from distilloop.errors import TeacherError
from distilloop.storage.store import Store

LABELS = ("negative", "positive")


@dataclass
class ScriptedTeacher(Teacher):
    """A test double of the Teacher contract: answers from a script, fails on demand."""

    fail_times: int = 0
    retryable: bool = True
    kind = "scripted"

    def __post_init__(self):
        self.price = self.price or {"input": 1.0, "output": 2.0}
        super().__post_init__()
        self.sent = 0

    async def answer(self, prompt, item):
        self.sent += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            err = TeacherError("HTTP 429 slow down", retryable=self.retryable, status=429)
            err.retry_after = 0.0
            raise err
        label = "positive" if "good" in item.fields["text"] else "negative"
        return TeacherAnswer(f'{{"label": "{label}"}}', label, "because", 0.9, Usage(30, 10), 0.01)


def items(n=4):
    return [LabelingItem(f"e{i}", {"text": f"good {i}" if i % 2 else f"bad {i}"}, LABELS, "t") for i in range(n)]


def run(ens, its, round_no=1):
    return asyncio.run(ens.annotate(its, round_no))


def test_answers_are_paid_once_and_reused_by_request_hash():
    store = Store.memory()
    t = ScriptedTeacher(name="t", model="m")
    ens = TeacherEnsemble([t], store, Budget(Caps(usd=1.0)))
    first = run(ens, items())
    assert first.paid_calls == 4 and t.sent == 4
    second = run(ens, items(), round_no=2)
    assert second.paid_calls == 0 and second.reused_calls == 4 and t.sent == 4
    assert [v[0].label for v in second.votes.values()] == ["negative", "positive"] * 2
    led = store.spent()
    assert led.tokens_in == 4 * 30 and led.usd == sum(c.cost_usd for c in store.calls())


def test_failures_are_recorded_and_retried():
    store = Store.memory()
    t = ScriptedTeacher(name="t", model="m", fail_times=2)
    ens = TeacherEnsemble([t], store, Budget(Caps(usd=1.0)), concurrency=1, backoff_s=0)
    res = run(ens, items(1))
    assert res.votes["e0"][0].label == "negative"
    statuses = [c.status for c in store.calls()]
    assert statuses == ["error", "error", "ok"]
    assert all("429" in c.error for c in store.calls() if c.status == "error")


def test_a_teacher_that_keeps_failing_is_taken_out_of_the_round():
    store = Store.memory()
    bad = ScriptedTeacher(name="bad", model="m", fail_times=10**6)
    good = ScriptedTeacher(name="good", model="m")
    ens = TeacherEnsemble([bad, good], store, Budget(Caps(usd=1.0)), concurrency=1, backoff_s=0,
                          max_consecutive_failures=3)
    res = run(ens, items(6))
    assert "bad" in res.disabled and "3 questions in a row failed" in res.disabled["bad"]
    assert all(len(v) == 1 and v[0].teacher == "good" for v in res.votes.values())
    # taken out once three questions failed for good: the rest are not asked to the end
    assert store.count("teacher_calls", "teacher = 'bad'") == bad.sent < 6 * ens.retry.max_attempts


def test_non_retryable_errors_are_not_retried():
    store = Store.memory()
    t = ScriptedTeacher(name="t", model="m", fail_times=1, retryable=False)
    ens = TeacherEnsemble([t], store, Budget(Caps(usd=1.0)), backoff_s=0)
    res = run(ens, items(1))
    assert res.votes["e0"] == [] and t.sent == 1


def test_budget_stops_calls_before_the_cap_is_crossed():
    store = Store.memory()
    t = ScriptedTeacher(name="t", model="m", max_tokens=10)
    # each call reserves its upper bound: the prompt's bytes + template overhead in, 10 out
    one = t.estimate(t.render(items(1)[0]))
    cap = one.tokens_in + 2 * 30  # room for the worst case of a call after two real ones (30 tokens each)
    budget = Budget(Caps(tokens_in=cap))
    res = run(TeacherEnsemble([t], store, budget, concurrency=1), items(5))
    assert res.budget_exhausted and res.paid_calls == 3
    assert store.spent().tokens_in == 90 <= cap
    assert budget.spent == store.spent()
