"""New data for a running campaign (``distilloop add``): rows appended to its pool as a recorded data version.

A row whose id is new joins the campaign (rows without a split join the pool; a row may name its split, e.g.
``test`` with a gold label). A row whose id is known with identical content is skipped and counted; a known id
with different content stops the addition before anything is written (the stored answers and labels are about
the old content). Each addition records when, how many rows, and the file's sha256. The next ``run`` selects
from the grown pool; the evaluation reference stays frozen (:mod:`distilloop.loop.references`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distilloop.core.types import Example
from distilloop.data import file_sha256, first_row, for_campaign_rows, other_case, read_rows
from distilloop.errors import DataError
from distilloop.loop import guidelines
from distilloop.loop.config import CampaignConfig
from distilloop.storage.store import Store, stores_reading

#: known ids with changed content named in the error message
SHOWN = 10


@dataclass
class Addition:
    """What ``add`` did: the data version it recorded (None when nothing was new), rows added by split, rows
    skipped as already known."""

    version: int | None
    n_rows: int
    added: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    sha256: str = ""

    @property
    def n_added(self) -> int:
        return sum(self.added.values())


def _same(known: Example, new: Example, split_given: bool) -> bool:
    return (known.fields == new.fields and known.gold == new.gold and known.gold_rationale == new.gold_rationale
            and (not split_given or known.split == new.split))


def read_additions(config: CampaignConfig, store: Store, path: str | Path) -> tuple[list[Example], int, int]:
    """The new rows of ``path`` (every row validated as the campaign's data is), the number of rows, and the
    number already known with identical content; raise :class:`DataError` for a known id with other content."""
    path = Path(path)
    spec = for_campaign_rows(config.data_spec())
    mismatched = other_case(first_row(path) or {}, spec)
    if mismatched:  # else ignored: its ids replaced by row-<line>, a "test" split or a gold label lost
        raise DataError(f"{path.name}: " + ", ".join(f"column {theirs!r} is {ours!r} in the campaign" for ours, theirs
                                                     in mismatched)
                        + " (the [data] field names); rename the column(s) to match, case included: nothing was added")
    rows = list(read_rows(path, spec, config.campaign.labels, config.campaign.answer))
    if not rows:
        raise DataError(f"{path}: no rows; the data file is empty")
    seen: set[str] = set()
    for r in rows:
        if r.example.id in seen:
            raise DataError(f"{path.name}:{r.lineno}: duplicate id '{r.example.id}'; ids must be unique")
        seen.add(r.example.id)
    known = store.known_examples(seen)
    changed = [r.example.id for r in rows if r.example.id in known
               and not _same(known[r.example.id], r.example, r.split_given)]
    if changed and (first_row(path) or {}).get(config.data.id_field) in (None, ""):
        raise DataError(f"{path.name} has no '{config.data.id_field}' column, so its rows are known by their line "
                        f"(row-<line>), and {len(changed)} of those ids are taken by rows already in the campaign "
                        f"with other content; nothing was added: give every row a value in column "
                        f"'{config.data.id_field}' that no row of the campaign has")
    if changed:
        shown = ", ".join(changed[:SHOWN]) + (f" and {len(changed) - SHOWN} more" if len(changed) > SHOWN else "")
        raise DataError(f"{path.name}: {len(changed)} row(s) have the id of a row already in the campaign but other "
                        f"content: {shown}; nothing was added (stored answers are about the old content): give "
                        "changed rows new ids, or remove them from the file")
    new = [r.example for r in rows if r.example.id not in known]
    return new, len(rows), len(rows) - len(new)


def add_data(config: CampaignConfig, path: str | Path) -> Addition:
    """Append the new rows of ``path`` to the campaign's store as one data version (one transaction)."""
    store = Store.open(config.store_path, writer="add")
    try:
        guidelines.check_fixed(store, config)  # the rows are read with the campaign's label set and fields
        new, n_rows, skipped = read_additions(config, store, path)
        sha = file_sha256(path)
        if not new:
            return Addition(None, n_rows, {}, skipped, sha)
        # rows added to a gold split from now on are not in its reference; a split with no gold row yet has no
        # reference to keep: the first gold rows added to it become its reference (a campaign without gold, judged
        # on the teachers' held-out set, gains gold dev rows labeled by hand)
        gold = [split for split in ("dev", "test") if any(e.gold is not None for e in store.examples(split))]
        with store.atomic():
            for split in gold:
                store.freeze_evaluation(split)
            version = store.add_examples(new, path=str(Path(path).resolve()), sha256=sha, n_rows=n_rows,
                                         n_skipped=skipped)
        added: dict[str, int] = {}
        for e in new:
            added[e.split] = added.get(e.split, 0) + 1
        return Addition(version, n_rows, added, skipped, sha)
    finally:
        store.close()


def data_file_changed(config: CampaignConfig, store: Store) -> str | None:
    """A note when the campaign's data file is not what the campaign read (rows appended to it, or edited):
    the pool is the store's, so the new rows are not in it and ``run`` would say the pool is used up."""
    path = config.data_path
    versions = store.data_versions()
    if not versions or not path.exists():  # a file, or a dataset folder
        return None
    if file_sha256(path) in {v["sha256"] for v in versions}:
        return None
    return (f"{path.name} has changed since the campaign read it: the pool is the campaign's own, so rows added "
            f"to the file are not in it; `distilloop add {config.path or 'campaign.toml'} {path}` adds the "
            "new ones (rows already in the campaign are skipped, an edited one is refused)")


def other_campaigns_on_this_data(config: CampaignConfig) -> str | None:
    """Before a new store is made: a note naming the stores beside it that hold a campaign on this same data
    file (a renamed [campaign] name starts again from nothing, paying for every label again)."""
    path = config.data_path
    if config.store_path.exists() or not path.exists() or not any(config.store_path.parent.glob("*.db")):
        return None  # (the file is hashed only where a store beside it could have read it)
    found = [(p, n) for p, n in stores_reading(config.store_path.parent, file_sha256(path), besides=config.store_path)
             if n]
    if not found:
        return None
    names = ", ".join(f"{p.name} ({n} labels)" for p, n in found)
    holds, one = ("holds a campaign", "that one") if len(found) == 1 else ("hold campaigns", "one of them")
    return (f"a new campaign starts in {config.store_path.name}, while {names} beside it {holds} on this "
            f"same data file; to go on with {one} (its labels and budget), set [campaign] store = "
            f"\"{found[0][0].name}\" (a renamed [campaign] name starts a new store)")
