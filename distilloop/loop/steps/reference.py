"""Reference: at a campaign's start, the evaluation references it needs are set aside from the pool (seeded, once)
and the teachers' held-out set is labeled by the ensemble (round 0, charged to the budget); an audit set is sent
to the reviewer, whose answers come back with the reviews (:mod:`distilloop.loop.steps.review`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from distilloop.core.types import Example, ReviewItem, Verdict
from distilloop.errors import ReviewError
from distilloop.loop import guidelines, references
from distilloop.loop.config import CampaignConfig
from distilloop.loop.env import Env
from distilloop.loop.steps.annotate import Annotation, ask, calibrate
from distilloop.loop.steps.decide import aggregate, asked, degrade, with_missing_votes
from distilloop.storage.store import Store

#: salt of the references' generator (round 0), apart from the stop set's and every round's draws
REFERENCE_SALT = 71
#: meta key: the label set the teachers' held-out set was labeled with (asked again when it grows)
HELDOUT_LABELS = "heldout_labels"
#: meta key: the guideline version it was labeled under (asked again under a newer one: an edited task, another
#: teacher); a store from before it was kept has none, and is asked again only when the label set grows
HELDOUT_GUIDELINE = "heldout_guideline"
#: the most of the pool the references together take: a small unlabeled file keeps most of its rows to label and
#: train on (``heldout_size = 100`` of a 42-row file would leave nothing)
MAX_REFERENCE_SHARE = 0.2


def wanted(env: Env) -> dict[str, int]:
    """The references this campaign sets aside, with their sizes: a teachers' held-out set when it has no gold
    to decide on (or asks for one), an audit set when ``audit_size`` asks for one."""
    return wanted_for(env.config, env.examples.values())


def heldout_todo(config: CampaignConfig, examples: Iterable[Example], pool: int,
                 store: Store | None = None) -> tuple[int, int]:
    """The items of the teachers' held-out set still to be labeled (what ``estimate`` and ``pilot`` add to the next
    round), and how many of them still leave the ``pool``-item pool: all of it, capped as :func:`prepare` caps it,
    until it has been set aside; then its unlabeled items, or all of them after the label set grew."""
    sizes = wanted_for(config, examples)
    if "teachers" not in sizes:
        return 0, 0
    if store is not None and store.get_meta("references_chosen"):
        if stale_heldout(store, list(config.campaign.labels), guidelines.version_of(store, config)):
            return len(store.reference_ids("teachers")), 0  # asked again (:func:`prepare`)
        done = set(store.reference_labels("teachers")) | store.unresolved_reference_ids("teachers")
        return sum(1 for i in store.reference_ids("teachers") if i not in done), 0
    n = capped(sizes, pool, lambda _: None)["teachers"]
    return n, n


def wanted_for(config: CampaignConfig, examples: Iterable[Example]) -> dict[str, int]:
    """:func:`wanted` of a campaign file and its examples."""
    cfg = config.evaluation
    gold = any(e.gold is not None and e.split in ("dev", "test") for e in examples)
    out = {}
    if cfg.heldout_size and (cfg.reference == "teachers" or (cfg.reference == "auto" and not gold)):
        out["teachers"] = cfg.heldout_size
    if cfg.audit_size:
        out["audit"] = cfg.audit_size
    return out


def prepare(env: Env) -> None:
    """Set the references aside (once), label the held-out set by the teachers, send the audit set to review."""
    store = env.store
    sizes = wanted(env)
    if not sizes:
        return
    if not store.get_meta("references_chosen"):
        rng = env.rng(0, salt=REFERENCE_SALT)
        sizes = capped(sizes, len(env.unlabeled_pool()), env.progress.warn)
        with store.atomic():
            for name, n in sizes.items():
                pool = [e.id for e in env.unlabeled_pool()]
                store.reserve_reference(name, references.choose(pool, n, rng))
            store.set_meta("references_chosen", sorted(sizes))
    if "teachers" in sizes:
        labels = list(env.parts.space.labels)
        asked_with = store.get_meta(HELDOUT_LABELS) or guidelines.first_labels(store)
        version = store.current_guideline()
        round_no = 0
        why = stale_heldout(store, labels, version)
        if why and store.reference_labels("teachers"):
            n = store.clear_reference_labels("teachers")
            grown = ", ".join(x for x in labels if x not in asked_with)
            env.progress.warn((f"the label set grew ({grown})" if grown else f"the guideline changed ({why})")
                              + f": the teachers label the {n} held-out items again (answers whose request is "
                              "unchanged are reused), so that students are judged on the current guideline")
        if why:  # charged to the round it runs before, not to the past rounds' figures
            rounds = store.rounds()
            round_no = (rounds[-1]["round"] + (rounds[-1]["status"] == "done")) if rounds else 0
        label_heldout(env, round_no)
        store.set_meta(HELDOUT_LABELS, labels)
        store.set_meta(HELDOUT_GUIDELINE, version)
    if "audit" in sizes:
        send_audit(env)


def stale_heldout(store: Store, labels: list[str], version: int | None) -> str | None:
    """Why the teachers' held-out set must be labeled again before the next round (its labels are of another
    label set, or of an older guideline version than ``version``), or None."""
    if not store.get_meta("references_chosen"):
        return None
    if (store.get_meta(HELDOUT_LABELS) or guidelines.first_labels(store)) != labels:
        return "labels added"
    was = store.get_meta(HELDOUT_GUIDELINE)
    if was is None or version is None or int(was) == int(version):
        return None
    changes = {int(g["version"]): g["changes"] for g in store.guidelines()}
    return f"version {version}: {changes.get(int(version), 'edited')}"


def capped(sizes: dict[str, int], pool: int, warn: Any) -> dict[str, int]:
    """``sizes`` scaled down, where they ask for more than :data:`MAX_REFERENCE_SHARE` of a ``pool``-item pool
    together, to that share (each at least 1 where the share allows any), said once."""
    limit = int(pool * MAX_REFERENCE_SHARE)
    total = sum(sizes.values())
    if total <= limit:
        return sizes
    out = {name: max(1, n * limit // total) if limit else 0 for name, n in sizes.items()}
    keys = {"teachers": "heldout_size", "audit": "audit_size"}
    names = {"teachers": "the teachers' held-out set", "audit": "the audit set"}
    asked = ", ".join(f"{keys.get(k, k)} = {n}" for k, n in sizes.items())
    got = ", ".join(f"{names.get(k, k)} gets {n}" for k, n in out.items())
    warn(f"the pool has {pool} items: {got} (at most {MAX_REFERENCE_SHARE:.0%} of the pool, where {asked} asks for "
         "more), so that most of it is left to label and train on; gold dev or test rows make a better reference")
    return out


def label_heldout(env: Env, round_no: int = 0) -> None:
    """The teachers label the held-out set's unanswered items, charged to ``round_no`` (0: the campaign's start)."""
    store = env.store
    todo = [i for i in store.reference_ids("teachers") if i not in store.reference_labels("teachers")
            and i not in store.unresolved_reference_ids("teachers")]
    if not todo:
        return
    env.budget.new_round(round_no, store.spent(round_no))
    items = [env.item(env.examples[i]) for i in todo]
    with env.progress.bar("evaluation set: teachers labeling", len(items) * len(env.parts.teachers)) as advance:
        result, tiers = asyncio.run(ask(env, items, round_no, advance))
    for name, reason in result.disabled.items():
        env.progress.warn(f"teacher {name} was taken out of labeling the evaluation set: {reason}")
    ann = Annotation(round_no, todo, calibrate(env, {i: result.votes[i] for i in todo if result.votes.get(i)}), tiers, result)
    votes = {i: with_missing_votes(v, asked(env, ann, i)) for i, v in ann.votes.items()}
    verdicts = aggregate(env.parts.aggregator, env.parts.space, store, votes)
    with store.atomic():
        for i, v in verdicts.items():
            v = degrade(v, len(asked(env, ann, i)))
            store.set_reference_label("teachers", i, v.label, source="teachers" if v.label else "teachers: no winner",
                                      round_no=round_no)


def send_audit(env: Env) -> None:
    store, reviewer, space = env.store, env.parts.reviewer, env.parts.space
    queued = {r["example_id"] for r in store.pending_reviews()} | set(store.reference_labels("audit"))
    todo = [i for i in store.reference_ids("audit") if i not in queued]
    if not todo:
        return
    items = [ReviewItem(i, env.examples[i].fields, Verdict(None, {}, 0.0, 0.0, 0, None, "audit"), 0, space.labels,
                        answer=space.kind, guideline=env.config.campaign.task) for i in todo]
    try:
        external = reviewer.submit(items)
    except ReviewError as exc:
        env.progress.warn(f"audit set not sent to review yet: {exc}")
        external = {}
    with store.atomic():
        for it in items:
            store.enqueue_review(it.example_id, 0, reviewer.name, external.get(it.example_id))
