import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distilloop.core.ledger import Budget, Caps
from distilloop.core.types import Spend
from distilloop.errors import BudgetExhausted

spend = st.builds(Spend, st.integers(0, 500), st.integers(0, 200), st.floats(0, 0.05, allow_nan=False))


def _within(budget: Budget) -> bool:
    committed = budget.spent + budget.reserved
    c = budget.campaign
    return ((c.tokens_in is None or committed.tokens_in <= c.tokens_in)
            and (c.tokens_out is None or committed.tokens_out <= c.tokens_out)
            and (c.usd is None or committed.usd <= c.usd + 1e-9))


@settings(max_examples=200, deadline=None)
@given(
    caps=st.builds(Caps, st.integers(0, 5000), st.integers(0, 2000), st.floats(0, 0.5, allow_nan=False)),
    ops=st.lists(st.tuples(spend, st.floats(0, 1), st.sampled_from(["settle", "release", "hold"])), max_size=60),
)
def test_reserved_plus_spent_never_exceeds_the_cap(caps, ops):
    """Random call estimates and usages (each usage <= its estimate, as the teachers guarantee)."""
    budget = Budget(caps)
    held = []
    for estimate, fraction, action in ops:
        try:
            r = budget.reserve(estimate)
        except BudgetExhausted:
            assert not budget.can_afford(estimate)
            continue
        assert _within(budget)
        if action == "settle":
            usage = Spend(int(estimate.tokens_in * fraction), int(estimate.tokens_out * fraction),
                          estimate.usd * fraction)
            budget.settle(r, usage)
        elif action == "release":
            budget.release(r)
        else:
            held.append(r)
        assert _within(budget)
    for r in held:
        budget.settle(r, r.amount)
        assert _within(budget)


def test_round_cap_is_enforced_separately_from_the_campaign_cap():
    budget = Budget(Caps(usd=10.0), Caps(usd=1.0))
    budget.new_round(1)
    r = budget.reserve(Spend(0, 0, 0.8))
    with pytest.raises(BudgetExhausted) as exc:
        budget.reserve(Spend(0, 0, 0.3))
    assert exc.value.scope == "round"
    budget.settle(r, Spend(0, 0, 0.8))
    budget.new_round(2)
    budget.reserve(Spend(0, 0, 0.9))  # a new round has its own allowance


def test_settle_twice_is_an_error_and_negative_reservations_are_refused():
    budget = Budget(Caps(tokens_in=100))
    r = budget.reserve(Spend(10, 0, 0))
    budget.settle(r, Spend(5, 0, 0))
    with pytest.raises(ValueError):
        budget.settle(r, Spend(5, 0, 0))
    with pytest.raises(ValueError):
        budget.reserve(Spend(-1, 0, 0))
    assert budget.spent == Spend(5, 0, 0)


def test_exhausted_names_the_resource():
    budget = Budget(Caps(tokens_out=10), spent=Spend(0, 10, 0))
    assert budget.exhausted() == ("campaign", "tokens_out")
    assert Budget(Caps(tokens_out=10)).exhausted() is None


def test_a_zero_dollar_cap_allows_free_calls_only():
    budget = Budget(Caps(usd=0.0))
    assert budget.exhausted() is None
    budget.settle(budget.reserve(Spend(100, 10, 0.0)), Spend(100, 10, 0.0))
    with pytest.raises(BudgetExhausted):
        budget.reserve(Spend(1, 1, 0.0001))
