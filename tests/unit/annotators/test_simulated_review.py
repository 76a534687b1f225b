import pytest

from distilloop.annotators.review import SimulatedReviewer
from distilloop.core.types import Example
from distilloop.errors import ReviewError, UserInputError
from distilloop.storage.store import Store
from tests.contracts.reviewer import review_item


def store_with_gold(n=4, rounds=1):
    store = Store.memory()
    store._insert_examples([Example(f"ex{i}", {"text": f"t{i}"}, "pool", "negative", f"gold why {i}")
                            for i in range(n)])
    for r in range(1, rounds + 1):
        store.start_round(r, "random", [], [])
    return store


def test_answers_from_gold_named_as_a_simulation():
    r = SimulatedReviewer()
    r.attach(store_with_gold())
    [d, *_] = r.collect([{"example_id": "ex0", "round": 1}])
    assert (d.label, d.rationale, d.source) == ("negative", "gold why 0", "simulated")
    assert "simulated" in d.reviewer


def test_delay_in_rounds():
    store = store_with_gold(rounds=1)
    r = SimulatedReviewer(delay_rounds=1)
    r.attach(store)
    row = {"example_id": "ex1", "round": 1}
    assert r.collect([row]) == []
    store.start_round(2, "random", [], [])
    assert [d.example_id for d in r.collect([row])] == ["ex1"]


def test_delay_in_seconds_uses_the_queue_time():
    r = SimulatedReviewer(delay_seconds=3600)
    r.attach(store_with_gold())
    assert r.collect([{"example_id": "ex1", "round": 1, "created_at": "2999-01-01T00:00:00+00:00"}]) == []
    assert r.collect([{"example_id": "ex1", "round": 1, "created_at": "2000-01-01T00:00:00+00:00"}])


def test_bad_options_and_missing_store():
    with pytest.raises(UserInputError, match="delay_rounds"):
        SimulatedReviewer(delay_rounds=-1)
    with pytest.raises(ReviewError, match="attach"):
        SimulatedReviewer().collect([{"example_id": "ex0", "round": 1}])
    assert review_item(0).example_id == "ex0"
