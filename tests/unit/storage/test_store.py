import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distilloop.core.types import Example, Spend
from distilloop.errors import StoreError
from distilloop.storage.store import Store

text = st.text(min_size=1, max_size=40)
example = st.builds(Example, st.uuids().map(str), st.fixed_dictionaries({"text": text}),
                    st.sampled_from(["pool", "dev", "test"]), st.one_of(st.none(), st.sampled_from(["a", "b"])),
                    st.one_of(st.none(), text))


@settings(max_examples=30, deadline=None)
@given(st.lists(example, max_size=20, unique_by=lambda e: e.id))
def test_examples_round_trip(tmp_path_factory, examples):
    path = tmp_path_factory.mktemp("s") / "c.db"
    store = Store.create(path, examples, {"name": "x"})
    assert store.examples() == examples
    assert store.get_meta("name") == "x"
    store.close()


def test_create_is_atomic_and_leaves_nothing_on_failure(tmp_path):
    bad = [Example("a", {"text": "x"}), Example("a", {"text": "y"})]  # duplicate primary key
    with pytest.raises(sqlite3.IntegrityError):
        Store.create(tmp_path / "c.db", bad, {})
    assert list(tmp_path.iterdir()) == []


def test_store_uses_wal_and_refuses_a_non_store(tmp_path):
    store = Store.create(tmp_path / "c.db", [Example("a", {"text": "x"})], {})
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a distilloop campaign store"):
        Store.open(junk)
    with pytest.raises(StoreError, match="no campaign store"):
        Store.open(tmp_path / "missing.db")


def test_calls_ledger_and_paid_lookup():
    store = Store.memory()
    call = store.begin_call(request_hash="h1", round_no=1, example_id="e", teacher="t", model="m",
                            prompt_style="s", prompt_version="1", reserved=Spend(100, 50, 0.01))
    assert store.find_paid_call("h1") is None  # in flight is not paid
    store.settle_call(call, status="ok", spend=Spend(80, 20, 0.004), label="a", rationale="r", valid=True,
                      distribution={"a": 0.9, "b": 0.1})
    paid = store.find_paid_call("h1")
    assert paid is not None and paid.label == "a" and paid.distribution == {"a": 0.9, "b": 0.1}
    assert store.spent() == Spend(80, 20, 0.004)
    failed = store.begin_call(request_hash="h2", round_no=1, example_id="e", teacher="t", model="m",
                              prompt_style="s", prompt_version="1", reserved=Spend(10, 10, 0.0))
    store.settle_call(failed, status="error", spend=Spend(), error="boom")
    assert store.find_paid_call("h2") is None
    assert store.count("ledger") == 1  # nothing charged for a free failure


def test_interrupted_calls_are_charged_their_reservation():
    store = Store.memory()
    store.begin_call(request_hash="h", round_no=1, example_id="e", teacher="t", model="m", prompt_style="s",
                     prompt_version="1", reserved=Spend(100, 50, 0.02))
    assert store.recover_interrupted_calls() == 1
    assert store.spent() == Spend(100, 50, 0.02)
    assert store.calls()[0].status == "interrupted"
    assert store.recover_interrupted_calls() == 0


def test_students_promotion_and_rollback():
    store = Store.memory()
    store.record_student(version="v1", round_no=1, kind="k", path="/p1", parent=None, metrics={"accuracy": 0.6},
                         n_train=10, train_seconds=0.1, promoted=True)
    store.record_student(version="v2", round_no=2, kind="k", path="/p2", parent="v1", metrics={"accuracy": 0.5},
                         n_train=20, train_seconds=0.1, promoted=False)
    assert store.active_student()["version"] == "v1"
    store.record_student(version="v3", round_no=3, kind="k", path="/p3", parent="v1", metrics={"accuracy": 0.7},
                         n_train=30, train_seconds=0.1, promoted=True)
    assert store.active_student()["version"] == "v3"
    store.set_active_student("v1")
    assert store.active_student()["version"] == "v1"
    with pytest.raises(StoreError):
        store.set_active_student("nope")
