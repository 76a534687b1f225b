"""Guideline versions: what the teachers are asked, versioned, so that a campaign keeps going when it changes.

A campaign's *guideline* is the task text and, for every teacher, each setting that can change its answer (its
kind, model, prompt style and options, sampling, server, recording). Editing any of it, or adding or removing a
teacher, records a new guideline version when the campaign is next opened; every teacher answer, verdict and
accepted label records the version it was made under, so stale labels can be found and relabeled
(:mod:`distilloop.loop.relabel`).

Settings that change no answer (:data:`FREE_KNOBS`: rate limits, concurrency, prices, timeouts, latency, batch
polling, the key's variable) change freely and make no version. What the stored answers and labels are made of
(:data:`FIXED`: the answer kind, the input fields) cannot change under a running campaign; the label set can
grow (a new category in a revised guideline: a new version, every earlier label stale), never lose a label.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilloop.errors import ConfigError, DistilloopError
from distilloop.loop.config import CampaignConfig, load_config
from distilloop.loop.progress import Progress
from distilloop.registry import resolve
from distilloop.storage.store import Store

#: teacher settings that change no answer: they never make a new guideline version
FREE_KNOBS = frozenset({"requests_per_minute", "tokens_per_minute", "max_concurrency", "price", "timeout_s",
                        "latency_s", "batch_poll_s", "batch_wait_s", "mode", "api_key_env", "n_threads",
                        # where a teacher runs, not what it is (``model`` names the weights): a server moved, a
                        # replica added for throughput, a gateway; and transport settings
                        "base_url", "base_urls", "server_retry_s", "cache_prompt", "store", "max_tokens_param"})

#: what a running campaign cannot change: (section, key, what depends on it)
FIXED = (("campaign", "answer", "the answer kind"), ("data", "input_fields", "the input fields"))


@dataclass(frozen=True)
class Guideline:
    """The part of a campaign file that decides what the teachers answer; ``labels`` only where the label set
    is no longer the one the campaign started with (so the versions of a campaign that never changed it keep
    their hashes)."""

    task: str
    teachers: dict[str, dict[str, Any]]  # name -> every answer-changing setting
    labels: list[str] | None = None

    @property
    def hash(self) -> str:
        key: dict[str, Any] = {"task": self.task, "teachers": self.teachers}
        if self.labels is not None:
            key["labels"] = self.labels
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def guideline_of(raw: dict[str, Any], first_labels: list[str] | None = None) -> Guideline:
    """The guideline of a raw (parsed TOML) campaign file; its labels count where they differ from
    ``first_labels`` (the campaign's label set at its start)."""
    labels = list((raw.get("campaign") or {}).get("labels") or [])
    first = list(first_labels) if first_labels is not None else labels
    task = str((raw.get("campaign") or {}).get("task", "Classify the input."))
    teachers = {}
    for t in raw.get("teachers") or []:
        if isinstance(t, dict):
            defaults = _defaults(str(t.get("kind")))
            teachers[str(t.get("name"))] = {k: v for k, v in t.items() if k not in FREE_KNOBS and k != "name"
                                            and not (k in defaults and defaults[k] == v)}
    return Guideline(task, teachers, labels if labels != first else None)


def first_labels(store: Store) -> list[str]:
    """The label set the campaign started with (its recorded campaign file's)."""
    return list(((store.get_meta("config") or {}).get("campaign") or {}).get("labels") or [])


def current_labels(store: Store) -> list[str]:
    """The campaign's label set now: its start's, grown by every label a later guideline added."""
    return list(store.get_meta("labels") or first_labels(store))


def label_changes(before: list[str], now: list[str]) -> str | None:
    """What a new label set changed, in words (``labels added: refund``), or None."""
    if before == now:
        return None
    added = [x for x in now if x not in before]
    return f"labels added: {', '.join(added)}" if added else "labels reordered"


def _defaults(kind: str) -> dict[str, Any]:
    """A teacher kind's default settings: writing one out explicitly is no change of guideline."""
    import dataclasses

    try:
        cls = resolve("teacher", kind, where="teachers")
    except (DistilloopError, ImportError):  # an unknown kind is named by the parts' own check
        return {}
    out = {}
    for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def changes(old: Guideline, new: Guideline) -> str:
    """What changed between two guidelines, in words (``task edited; teacher d added``)."""
    out = []
    if old.task != new.task:
        out.append("task edited")
    for name in new.teachers:
        if name not in old.teachers:
            out.append(f"teacher {name} added")
        elif old.teachers[name] != new.teachers[name]:
            keys = sorted(k for k in set(old.teachers[name]) | set(new.teachers[name])
                          if old.teachers[name].get(k) != new.teachers[name].get(k))
            out.append(f"teacher {name}: {', '.join(keys)} changed")
    out += [f"teacher {name} removed" for name in old.teachers if name not in new.teachers]
    return "; ".join(out) or "no change"


def _fixed(raw: dict[str, Any], section: str, key: str) -> Any:
    value = (raw.get(section) or {}).get(key)
    if value is None:  # the defaults, as the sections give them
        return {"labels": [], "answer": "label", "input_fields": ["text"]}[key]
    return value


#: the store's meta key naming the campaign file it belongs to
OWNER = "campaign_file"


def check_owner(store: Store, config: CampaignConfig) -> None:
    """Refuse a campaign file that is another's copy: a campaign file copied beside the first to try a variant keeps
    its ``[campaign] name``, so it names the first's store, and running it would change that campaign. A file that
    was renamed or moved (the first is gone, or names another store now), or names the store itself (``[campaign]
    store``), takes over."""
    owner, here = store.get_meta(OWNER), config.path
    if not owner or here is None or Path(owner) == here or not Path(owner).is_file() or config.campaign.store:
        return  # (a [campaign] store named in the file: chosen on purpose)
    try:
        theirs = load_config(owner).store_path
    except DistilloopError:  # a file that no longer reads claims nothing
        return
    if theirs.resolve() == config.store_path.resolve():
        raise ConfigError(
            f"{config.store_path.name} is the store of {owner}, and {here.name} names it too (a copy keeps [campaign] "
            f"name = {config.campaign.name!r}), so it would run or report that campaign as its own. Give {here.name} a "
            f"name of its own for a new campaign, or move {Path(owner).name} away if this file takes that campaign over")


def check_fixed(store: Store, config: CampaignConfig) -> None:
    """Refuse a campaign file that is not the store's (:func:`check_owner`) or that changed what a running campaign
    is made of, with the reason and the way out: the answer kind, the input fields, or a label the campaign has
    (labels may be added)."""
    check_owner(store, config)
    recorded = store.get_meta("config") or {}
    if not recorded:
        return
    for section, key, what in FIXED:
        before, now = _fixed(recorded, section, key), _fixed(config.raw, section, key)
        if before != now:
            raise ConfigError(
                f"{section}.{key}: changed from {before!r} to {now!r}, but {what} cannot change under a running "
                f"campaign (its stored answers, labels and students are made of it); set {key} back to {before!r}, "
                f"or start a new campaign on the changed file with a new [campaign] name or store")
    before, now = current_labels(store), list(config.campaign.labels)
    removed = [x for x in before if x not in now]
    if removed:
        raise ConfigError(
            f"campaign.labels: {', '.join(map(repr, removed))} removed from {before!r}, but a running campaign can "
            "gain labels, never lose one (its stored answers, labels and students use it); put it back, or start a "
            "new campaign with a new [campaign] name or store (to retire a label, relabel its items under a "
            "guideline that says not to use it)")


def sync(store: Store, config: CampaignConfig, progress: Progress | None = None) -> int:
    """Record the campaign file's guideline as a new version when it differs from the current one; returns the
    current version. A store without any (new, or written before guideline versions) records the guideline it
    was created with as version 1 first."""
    check_fixed(store, config)
    if config.path is not None and store.get_meta(OWNER) != str(config.path):  # new, renamed, or an older store
        store.set_meta(OWNER, str(config.path))
    current = guideline_of(config.raw, first_labels(store) if store.get_meta("config") else None)
    versions = store.guidelines()
    if not versions:
        recorded = store.get_meta("config")
        first = guideline_of(recorded) if recorded else current
        store.record_guideline(hash=first.hash, task=first.task, teachers=first.teachers, changes="first guideline")
        versions = store.guidelines()
    last = versions[-1]
    if _same(store, config, last, current):
        return int(last["version"])
    what = _what_changed(store, config, last, current)
    if label_changes(current_labels(store), list(config.campaign.labels)):
        store.set_meta("labels", list(config.campaign.labels))
    version = store.record_guideline(hash=current.hash, task=current.task, teachers=current.teachers, changes=what)
    stale = sum(n for v, n in store.labels_by_guideline().items() if v is None or v < version)
    if progress is not None:
        progress.warn(f"new guideline version {version} ({what}); {stale} label(s) were made under an older one: "
                      "`distilloop relabel --stale --dry-run` shows what relabeling them would cost")
    return version


def version_of(store: Store, config: CampaignConfig) -> int:
    """The guideline version the campaign file stands for, without recording anything: the current one, or the
    number :func:`sync` will give it when the file's guideline is new."""
    current = guideline_of(config.raw, first_labels(store) if store.get_meta("config") else None)
    versions = store.guidelines()
    if not versions:
        recorded = store.get_meta("config")
        return 1 if (guideline_of(recorded) if recorded else current).hash == current.hash else 2
    last = versions[-1]
    return int(last["version"]) + (not _same(store, config, last, current))


def _answering(teachers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A recorded version's teacher settings without the knobs that change no answer (a version recorded before
    a knob was known to be one still holds it)."""
    return {name: {k: v for k, v in settings.items() if k not in FREE_KNOBS} for name, settings in teachers.items()}


def _same(store: Store, config: CampaignConfig, last: dict[str, Any], current: Guideline) -> bool:
    """Whether the campaign file's guideline is the last recorded version: the same hash, or the same task,
    answer-changing teacher settings and label set (a version recorded with a knob now known to change nothing)."""
    if last["hash"] == current.hash:
        return True
    return (changes(Guideline(last["task"], _answering(last["teachers"])), current) == "no change"
            and label_changes(current_labels(store), list(config.campaign.labels)) is None)


def pending_change(store: Store, config: CampaignConfig) -> str | None:
    """What the campaign file's guideline changes against the last recorded version (``task edited``), not yet
    recorded (that happens at the next ``run`` or ``relabel``); None where they are the same or nothing is
    recorded. Read only: ``status`` says it while the file is edited."""
    versions = store.guidelines()
    if not versions or not store.get_meta("config"):
        return None
    last, current = versions[-1], guideline_of(config.raw, first_labels(store))
    if _same(store, config, last, current):
        return None
    return _what_changed(store, config, last, current)


def _what_changed(store: Store, config: CampaignConfig, last: dict[str, Any], current: Guideline) -> str:
    """What the campaign file's guideline ``current`` changes against the recorded version ``last``, in words: its
    labels added first (``label neutral added; task edited``)."""
    what = changes(Guideline(last["task"], _answering(last["teachers"])), current)
    relabeled = label_changes(current_labels(store), list(config.campaign.labels))
    return (relabeled if what == "no change" else f"{relabeled}; {what}") if relabeled else what


def guideline_summary(store: Store, config: CampaignConfig | None = None) -> dict[str, Any]:
    """The current guideline version, every version with its change, and the labels made under each; with the
    campaign file's ``config``, what it changes that is not recorded yet (``pending``)."""
    versions = store.guidelines()
    current = versions[-1]["version"] if versions else None
    by = store.labels_by_guideline()
    return {"current": current, "pending": pending_change(store, config) if config is not None else None,
            "versions": [{"version": v["version"], "created_at": v["created_at"], "changes": v["changes"],
                          "hash": v["hash"], "labels": by.get(v["version"], 0)} for v in versions],
            "stale_labels": sum(n for v, n in by.items() if current is not None and (v is None or v < current))}
