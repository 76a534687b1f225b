"""Named schema migrations of the campaign store. Never edit an applied one: add a new one."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("distilloop")


@migrations(name="0001_initial")
def initial(db: Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.table("examples").create(
        {"id": str, "split": str, "fields": str, "gold": str, "gold_rationale": str, "text_len": int,
         "position": int},
        pk="id",
    )
    db.table("examples").create_index(["split"])
    db.table("rounds").create(
        {"round": int, "status": str, "strategy": str, "n_selected": int, "started_at": str,
         "finished_at": str, "stop_reason": str},
        pk="round",
    )
    db.table("selections").create({"round": int, "example_id": str, "rank": int, "score": float},
                            pk=("round", "example_id"))
    db.table("teacher_calls").create(
        {"id": int, "request_hash": str, "round": int, "example_id": str, "teacher": str, "model": str,
         "prompt_style": str, "prompt_version": str, "mode": str, "status": str,
         "raw_response": str, "label": str, "rationale": str, "confidence": float, "confidence_source": str,
         "valid": int, "tokens_in": int, "tokens_out": int, "cached_tokens": int, "cache_write_tokens": int,
         "reserved_tokens_in": int, "reserved_tokens_out": int, "reserved_usd": float, "cost_usd": float,
         "latency_s": float, "error": str, "distribution": str, "batch_id": str, "created_at": str, "finished_at": str},
        pk="id",
    )
    db.table("teacher_calls").create_index(["request_hash"])
    db.table("teacher_calls").create_index(["example_id"])
    db.table("teacher_calls").create_index(["round", "status"])
    db.table("consensus").create(
        {"example_id": str, "round": int, "label": str, "soft_label": str, "agreement": float,
         "entropy": float, "n_votes": int, "method": str, "route": str, "rationale": str, "votes": str},
        pk="example_id",
    )
    db.table("reviews").create(
        {"id": int, "example_id": str, "round": int, "reviewer": str, "label": str, "rationale": str,
         "seconds_spent": float, "source": str, "external_id": str, "created_at": str},
        pk="id",
    )
    db.table("reviews").create_index(["example_id"])
    db.table("review_queue").create(
        {"example_id": str, "round": int, "status": str, "backend": str, "external_id": str,
         "created_at": str, "resolved_round": int},
        pk="example_id",
    )
    db.table("labels").create(
        {"example_id": str, "label": str, "rationale": str, "soft_label": str, "source": str, "round": int,
         "created_at": str},
        pk="example_id",
    )
    db.table("students").create(
        {"version": str, "round": int, "kind": str, "path": str, "parent": str, "metrics": str,
         "n_train": int, "train_seconds": float, "promoted": int, "active": int, "created_at": str},
        pk="version",
    )
    db.table("ledger").create(
        {"id": int, "call_id": int, "round": int, "teacher": str, "kind": str, "tokens_in": int,
         "tokens_out": int, "usd": float, "created_at": str},
        pk="id",
        foreign_keys=[("call_id", "teacher_calls", "id")],
    )
    db.table("ledger").create_index(["call_id"], unique=True)
    db.table("cache").create({"kind": str, "key": str, "value": bytes, "created_at": str}, pk=("kind", "key"))


@migrations(name="0002_review_reliability")
def review_reliability(db: Database) -> None:
    """Per-item agreement details, each teacher's estimated reliability per class (a confusion matrix row per
    true label), and the cascade tier that settled an item."""
    consensus = db.table("consensus")
    consensus.add_column("vote_share", float)
    consensus.add_column("rationales_agree", int)
    consensus.add_column("tiers_asked", int)
    db.table("reliability_estimates").create(
        {"teacher": str, "true_label": str, "given_label": str, "prob": float, "support": float, "method": str,
         "n_items": int, "n_known": int, "updated_at": str},
        pk=("teacher", "true_label", "given_label"),
    )


@migrations(name="0003_typed_channels")
def typed_channels(db: Database) -> None:
    """What travelled through the generic cache table gets a table of its own: ELAD's student explanations go
    with the selection they belong to, each round's stop-set predictions get a row, and embeddings one cache
    keyed by encoder and text hash (the old embedding rows were keyed otherwise: they are recomputed once)."""
    import json

    db.table("selections").add_column("explanation", str)
    db.table("stop_predictions").create({"round": int, "student": str, "stop_set": str, "predictions": str},
                                        pk="round")
    db.table("embeddings").create({"encoder": str, "text_hash": str, "vector": bytes, "created_at": str},
                                  pk=("encoder", "text_hash"))
    if "cache" not in db.table_names():
        return
    # read each channel whole before writing: sqlite-utils probes with a DROP TABLE, refused while a cursor is open
    for r in list(db.query("select key, value from cache where kind = 'student_explanation'")):
        round_no, _, example_id = r["key"].partition(":")
        steps = json.loads(r["value"]).get("steps") or []
        db.execute("update selections set explanation = ? where round = ? and example_id = ?",
                   [json.dumps([str(s) for s in steps]), int(round_no), example_id])
    for r in list(db.query("select value from cache where kind = 'stop_set_predictions'")):
        p = json.loads(r["value"])
        db.table("stop_predictions").upsert({"round": p["round"], "student": p["student"], "stop_set": p["stop_set"],
                                             "predictions": json.dumps(p["predictions"])}, pk="round")
    db.table("cache").drop()


@migrations(name="0004_living_campaigns")
def living_campaigns(db: Database) -> None:
    """A campaign that keeps going as data and guidelines change: every addition of rows is a data version (the
    rows of the first data file are version 1); every guideline (the task and what each teacher is asked with) is
    a version, and each teacher answer, verdict and accepted label records the one it was made under (1 for what
    was there before); a student records the evaluation reference it was scored on and its score on the labels
    new since the student before it."""
    import json

    db.table("data_versions").create(
        {"version": int, "path": str, "sha256": str, "n_rows": int, "n_added": int, "n_skipped": int,
         "splits": str, "created_at": str},
        pk="version",
    )
    db.table("guidelines").create(
        {"version": int, "hash": str, "task": str, "teachers": str, "changes": str, "created_at": str},
        pk="version",
    )
    db.table("examples").add_column("data_version", int)
    for table in ("teacher_calls", "consensus", "labels"):
        db.table(table).add_column("guideline", int)
    students = db.table("students")
    for column in ("reference", "newest"):
        students.add_column(column, str)
    for column in ("guideline", "data_version"):
        students.add_column(column, int)
    n = next(db.query("select count(*) n from examples"))["n"]
    if not n:  # a new store: Store.create records its first data version
        return
    db.execute("update examples set data_version = 1")
    for table in ("teacher_calls", "consensus", "labels", "students"):
        db.execute(f"update {table} set guideline = 1")
    db.execute("update students set data_version = 1")
    meta = {r["key"]: r["value"] for r in db.query("select key, value from meta where key in ('config')")}
    path = ((json.loads(meta["config"]) if meta.get("config") else {}).get("data") or {}).get("path")
    splits = {r["split"]: r["n"] for r in db.query("select split, count(*) n from examples group by split")}
    first = next(db.query("select min(created_at) t from teacher_calls"))["t"]
    db.table("data_versions").insert({"version": 1, "path": path, "sha256": None, "n_rows": n, "n_added": n,
                                      "n_skipped": 0, "splits": json.dumps(splits), "created_at": first})


@migrations(name="0005_one_writer")
def one_writer(db: Database) -> None:
    """What a store needs to keep its promises about paying once: each call's expected cost (what a call whose
    outcome is unknown is charged), how it was charged (``usage``: as billed; ``estimate``: at its expected
    cost, flagged), the call it re-sends after a crash, and the key the provider can find it again by (a
    stored completion's metadata, a batch's custom ids); and a campaign id, so that a review server shared by
    several campaigns never mixes their tasks."""
    import uuid

    calls = db.table("teacher_calls")
    for column, kind in (("expected_tokens_in", int), ("expected_tokens_out", int), ("expected_usd", float),
                         ("charged", str), ("resend_of", int), ("recovery_key", str)):
        calls.add_column(column, kind)
    calls.create_index(["status"])
    # batch calls left in flight by an older release were cut off while being submitted: looked for at the provider
    db.execute("update teacher_calls set status = 'submitting' where status = 'in_flight' and mode = 'batch'")
    if "meta" in db.table_names() and not list(db.query("select 1 from meta where key = 'campaign_id'")):
        db.table("meta").insert({"key": "campaign_id", "value": f'"{uuid.uuid4().hex}"'})


@migrations(name="0006_vector_shards")
def vector_shards(db: Database) -> None:
    """The manifest of the columnar vector shards kept beside the store (one row per shard file pair): large pools'
    embeddings live in those files, not in SQLite; a shard exists for the campaign once its row is here."""
    db.table("vector_shards").create(
        {"encoder": str, "shard": str, "keys_path": str, "vectors_path": str, "rows": int, "dim": int,
         "created_at": str},
        pk=("encoder", "shard"),
    )


@migrations(name="0007_references")
def references(db: Database) -> None:
    """How many teachers were asked about an item (a missing vote is dissent), and the evaluation references of
    a campaign without gold: a held-out set labeled by the teacher ensemble, an audit set labeled by people."""
    db.table("consensus").add_column("n_asked", int)
    db.table("reference_labels").create(
        {"reference": str, "example_id": str, "label": str, "source": str, "round": int, "created_at": str},
        pk=("reference", "example_id"))


@migrations(name="0008_round_summary")
def round_summary(db: Database) -> None:
    """A round's verdicts summed up as it finished (items, agreement, reviews...: JSON): a later relabel round
    moves its items' verdicts to itself, and the reports would lose what the round did."""
    db.table("rounds").add_column("summary", str)


@migrations(name="0009_review_revisions")
def review_revisions(db: Database) -> None:
    """Each review's own id at its reviewer (a Label Studio annotation's) and when it was last changed there: a
    review a person corrects after the campaign took it is read again."""
    db.table("reviews").add_column("ref", str)
    db.table("reviews").add_column("version", str)
