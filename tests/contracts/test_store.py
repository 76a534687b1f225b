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
    row = store.call_row(call)
    assert row["recovery_key"] == store.recovery_key(call) and row["round"] == 1 and row["status"] == "ok"
    assert (row["tokens_in"], row["tokens_out"], row["valid"]) == (80, 20, 1)
    with pytest.raises(StoreError, match="teacher call 999 is not in this store"):
        store.settle_call(999, status="ok", spend=Spend(1, 1, 0.0))
    assert store.spent() == Spend(80, 20, 0.004)  # nothing charged for it


def test_interrupted_calls_are_charged_their_reservation():
    store = Store.memory()
    store.begin_call(request_hash="h", round_no=1, example_id="e", teacher="t", model="m", prompt_style="s",
                     prompt_version="1", reserved=Spend(100, 50, 0.02))
    assert store.recover_interrupted_calls() == 1
    assert store.spent() == Spend(100, 50, 0.02)
    assert store.calls()[0].status == "interrupted"
    assert store.recover_interrupted_calls() == 0


def test_a_cut_call_of_a_model_run_in_the_process_is_charged_nothing():
    store = Store.memory()
    for teacher in ("api", "local"):
        store.begin_call(request_hash=f"h-{teacher}", round_no=1, example_id="e", teacher=teacher, model="m",
                         prompt_style="s", prompt_version="1", reserved=Spend(100, 50, 0.02),
                         expected=Spend(40, 10, 0.005))
    assert store.recover_interrupted_calls(unbilled={"local"}) == 2
    assert store.spent() == Spend(40, 10, 0.005)  # the API's call at its expected cost, the local one nothing
    assert {c.teacher: c.status for c in store.calls()} == {"api": "interrupted", "local": "interrupted"}
    assert store.call_accounting()["estimated"] == 1 and store.interrupted_call("h-local") is not None


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


# -- the store's contract beyond its basics: transactions, typed channels, moving, migrating ---------------
def test_a_unit_of_work_that_fails_leaves_nothing():
    store = Store.memory()
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.accept_label("e", "a", rationale=None, source="teachers", round_no=1)
            store.start_round(1, "random", ["e"], [0.5])
            raise RuntimeError("killed mid-step")
    assert store.labeled() == [] and store.rounds() == [] and store.selection(1) == []


def test_the_ledger_is_the_sum_of_what_was_settled():
    store = Store.memory()
    spends = [Spend(10, 5, 0.001), Spend(0, 0, 0.0), Spend(7, 3, 0.0005)]
    for i, s in enumerate(spends):
        call = store.begin_call(request_hash=f"h{i}", round_no=1 + i % 2, example_id=f"e{i}", teacher=f"t{i % 2}",
                                model="m", prompt_style="s", prompt_version="1", reserved=Spend(100, 100, 1.0))
        store.settle_call(call, status="ok", spend=s, label="a", valid=True)
    total = spends[0] + spends[1] + spends[2]
    assert store.spent() == total
    assert store.spent(1) + store.spent(2) == total
    by_teacher = store.spend_by_teacher()
    assert by_teacher["t0"] + by_teacher.get("t1", Spend()) == total
    assert store.count("ledger") == 2  # a free call leaves no ledger row


def test_a_selection_carries_what_the_strategy_learnt_of_its_picks():
    store = Store.memory()
    store.start_round(1, "elad", ["a", "b"], [0.9, 0.1], {"a": ["step one", "step two"]})
    assert store.selection(1) == ["a", "b"]
    assert store.selection_explanations(1) == {"a": ["step one", "step two"]}


def test_vectors_round_trip_by_encoder_and_text_hash():
    import numpy as np

    store = Store.memory()
    v = {"h1": np.arange(4, dtype=np.float32), "h2": np.ones(4, dtype=np.float32)}
    store.put_vectors("enc", v)
    got = store.get_vectors("enc", ["h1", "h2", "h3"])
    assert set(got) == {"h1", "h2"} and np.array_equal(got["h1"], v["h1"])
    assert store.get_vectors("other", ["h1"]) == {} and store.vector_count("enc") == 2


def test_student_paths_are_kept_relative_so_a_moved_campaign_finds_its_students(tmp_path):
    import shutil

    path = tmp_path / "a" / "c.db"
    store = Store.create(path, [Example("e", {"text": "x"})], {})
    folder = path.parent / "c.students" / "r001-v1"
    folder.mkdir(parents=True)
    store.record_student(version="v1", round_no=1, kind="k", path=str(folder), parent=None, metrics={},
                         n_train=1, train_seconds=0.0, promoted=True)
    assert store.db.execute("select path from students").fetchone()[0] == "c.students/r001-v1"
    store.close()
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    moved = Store.open(tmp_path / "b" / "c.db")
    assert moved.active_student()["path"] == str((tmp_path / "b" / "c.students" / "r001-v1").resolve())
    moved.close()


def test_migration_moves_the_old_cache_channels_into_their_tables(tmp_path):
    """Stores written before 0003 kept ELAD's explanations and the stop-set predictions in a generic cache table."""
    import json

    from sqlite_utils import Database

    from distilloop.storage.migrations import migrations

    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="0003_typed_channels")
    db.table("rounds").insert({"round": 1, "status": "annotating", "strategy": "elad", "n_selected": 1})
    db.table("selections").insert({"round": 1, "example_id": "e", "rank": 0, "score": 1.0})
    db.table("cache").insert_all([
        {"kind": "student_explanation", "key": "1:e", "value": json.dumps({"steps": ["s1", "s2"], "within": 0.5})},
        {"kind": "stop_set_predictions", "key": "000001",
         "value": json.dumps({"round": 1, "student": "v1", "stop_set": "d", "predictions": ["a"]})},
        {"kind": "embedding", "key": "k", "value": b"\x00" * 8}])
    db.close()
    store = Store.open(path)
    assert store.selection_explanations(1) == {"e": ["s1", "s2"]}
    assert store.stop_predictions("d") == [{"round": 1, "student": "v1", "stop_set": "d", "predictions": ["a"]}]
    assert "cache" not in store.db.table_names()


def test_a_store_written_by_the_previous_release_resumes(tmp_path, fixtures):
    """A real store of the release before the redesign (two rounds done, the third selected, absolute student
    paths of another machine) opens, migrates and runs to its end with the current code."""
    import shutil

    from distilloop.loop import stopping
    from distilloop.loop.campaign import Campaign
    from distilloop.loop.config import load_config

    folder = tmp_path / "campaign"
    shutil.copytree(fixtures / "store_v0_1", folder)
    for name in ("rt_tiny.jsonl", "rt_tiny_replay.jsonl.gz"):
        shutil.copy(fixtures / name, folder / name)
    campaign = Campaign.open(load_config(folder / "campaign.toml"))
    try:
        assert [r["status"] for r in campaign.store.rounds()] == ["done", "done", "annotating"]
        before = campaign.store.selection(3)
        assert campaign.run().startswith("max rounds reached (4)")
        assert campaign.store.selection(3) == before  # round 3 resumed where it was, not selected again
        assert [r["status"] for r in campaign.store.rounds()] == ["done"] * 4
        assert [p["round"] for p in stopping.prediction_history(campaign.store)] == [1, 2, 3, 4]
        assert campaign.store.active_student() is not None
        # what it had is data version 1 and guideline 1 (recorded from the file it was created with)
        assert [(v["version"], v["n_added"]) for v in campaign.store.data_versions()] == [(1, 200)]
        assert [g["version"] for g in campaign.store.guidelines()] == [1]
        assert set(campaign.store.labels_by_guideline()) == {1}
    finally:
        campaign.close()


def test_migration_0004_gives_what_a_store_had_data_version_1_and_guideline_1(tmp_path):
    """A store written before living campaigns: its rows are data version 1, its answers, verdicts, labels and
    students were made under guideline 1; a new addition is version 2 and appends after the old rows."""
    import json

    from sqlite_utils import Database

    from distilloop.storage.migrations import migrations

    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="0004_living_campaigns")
    db.table("meta").insert({"key": "config", "value": json.dumps({"data": {"path": "d.jsonl"}})})
    db.table("examples").insert_all([{"id": f"e{i}", "split": "pool", "fields": json.dumps({"text": f"t{i}"}),
                                      "position": i} for i in range(3)])
    db.table("teacher_calls").insert({"request_hash": "h", "round": 1, "example_id": "e0", "teacher": "t",
                                      "status": "ok", "label": "a", "valid": 1, "created_at": "2025-01-01"})
    db.table("labels").insert({"example_id": "e0", "label": "a", "source": "teachers", "round": 1,
                               "created_at": "2025-01-01"})
    db.close()
    store = Store.open(path)
    try:
        [v1] = store.data_versions()
        assert (v1["version"], v1["path"], v1["n_added"], v1["splits"]) == (1, "d.jsonl", 3, {"pool": 3})
        assert store.label_states()[0].guideline == 1 and store.data_version_of(["e0", "e2"]) == {"e0": 1, "e2": 1}
        assert store.current_guideline() is None  # recorded from the campaign file when the campaign opens
        v2 = store.add_examples([Example("e3", {"text": "t3"})], path="more.jsonl", sha256="x", n_rows=2,
                                n_skipped=1)
        assert v2 == 2 and [e.id for e in store.examples()] == ["e0", "e1", "e2", "e3"]
        assert store.data_version_of(["e3"]) == {"e3": 2}
        assert store.record_guideline(hash="g", task="T", teachers={}, changes="first guideline") == 1
        store.accept_label("e3", "b", rationale=None, source="teachers", round_no=2)
        assert {s.example_id: s.guideline for s in store.label_states()} == {"e0": 1, "e3": 1}
    finally:
        store.close()


def test_the_evaluation_reference_is_frozen_at_its_first_use():
    store = Store.memory()
    store._insert_examples([Example("t0", {"text": "a"}, "test", "x"), Example("p0", {"text": "b"})])
    cutoff = store.freeze_evaluation("test")
    store.add_examples([Example("t1", {"text": "c"}, "test", "y")], path="m", sha256="s", n_rows=1, n_skipped=0)
    assert store.freeze_evaluation("test") == cutoff == 2
    assert [e.id for e in store.examples_before("test", cutoff)] == ["t0"]
    assert [e.id for e in store.examples("test")] == ["t0", "t1"]
