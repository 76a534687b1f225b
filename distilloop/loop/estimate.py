"""Pre-flight estimate: the tokens and dollars of the next round and of the whole campaign, per teacher,
before anything is paid (``distilloop estimate``). Nothing is sent and no store is written.

How the figures are made (a documented approximation, not a tokenizer):

* **expected** input tokens of a prompt = its UTF-8 bytes / 4 + 16. Byte-level BPE tokenizers (OpenAI's
  cl100k/o200k, Claude's, Qwen's) average about 4 bytes a token on English text; ``tiktoken`` is not used
  because it downloads its encodings at run time, which fails offline, and it would not cover Anthropic.
  Expected output = a typical answer (about 60 tokens with a rationale, 12 for a label alone, 150 for a worked
  number; at most ``max_tokens``). Both times ``samples`` (self-consistency), dollars at the batch price for
  ``mode = "batch"`` teachers; a replay teacher's recorded usage. This is each teacher's
  :meth:`~distilloop.annotators.base.Teacher.expected`; once a teacher has answered a few of the campaign's
  calls, it is scaled by what those calls really used against it (:class:`~distilloop.loop.plan.Corrections`),
  exactly as ``run`` sizes its rounds.
* **upper bound** = the reservation the budget makes before each call (one token per byte of the prompt and
  its schema + chat-template overhead, all of ``max_tokens`` out): the spend can never exceed it.
* Per-item figures are the mean over a sample of the pool (every k-th unlabeled example, up to
  ``sample``), times the items of the next round and of every remaining round (``rounds.size(r)`` up to
  ``rounds.max_rounds``, capped by the pool). Answers already paid for (reused for free by request hash) and
  cascades that skip later tiers make the real spend lower; retries of failed calls are free at the
  providers.
* **observed**: once the campaign has labeled ``MIN_ITEMS`` items (its finished rounds, or its pilot), a teacher's
  per-item figure is what its ledger charged per labeled item: the cascade's reach (a later tier asked about
  only some items), the rationale policy (label-only answers, explanation calls for the items sent to review)
  and charged failures are all in it, so the forecast follows ``run``'s own routing rather than the
  every-teacher-on-every-item assumption.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from distilloop.annotators.base import Teacher
from distilloop.core.ledger import Budget, Caps, amount
from distilloop.core.types import Example, Spend
from distilloop.data import check_pool, load_examples
from distilloop.loop.config import CampaignConfig
from distilloop.loop.env import make_item
from distilloop.loop.parts import build_parts
from distilloop.loop.plan import Corrections, round_cap_below_one_call, sample, upper_bound
from distilloop.loop.relabel import RELABEL
from distilloop.storage.store import Store

#: labeled items after which a teacher's per-item figure is what the campaign's ledger charged per item
MIN_ITEMS = 10

METHOD = ("expected: prompt bytes / 4 + 16 tokens in, a typical answer out (60 tokens with a rationale, at most "
          "max_tokens), corrected by the campaign's answered calls once there are some (no tokenizer: tiktoken "
          "cannot download its encodings offline); upper bound: the budget's reservation, 1 token per byte + "
          f"overhead in and max_tokens out; observed (after {MIN_ITEMS} labeled items): the ledger's spend per labeled "
          "item, cascade reach and rationale policy included")


@dataclass
class TeacherEstimate:
    teacher: str
    model: str
    mode: str
    per_item: Spend
    per_item_upper: Spend
    next_round: Spend
    next_round_upper: Spend
    campaign: Spend
    campaign_upper: Spend


@dataclass
class CampaignEstimate:
    name: str
    next_round: int
    next_round_items: int
    remaining_rounds: int
    campaign_items: int
    pool_left: int
    spent: Spend
    caps: Caps
    teachers: list[TeacherEstimate] = field(default_factory=list)
    reference_items: int = 0  # the teachers' held-out set still to label, before the first round (in the totals)
    later_tiers: list[str] = field(default_factory=list)  # a cascade's teachers asked only where earlier ones are unsure
    method: str = METHOD
    notes: list[str] = field(default_factory=list)  # what the figures assume that the campaign may not do
    blocked: str | None = None  # a per-round cap below any one call: `run` cannot ask anything

    def total(self, attr: str) -> Spend:
        out = Spend()
        for t in self.teachers:
            out = out + getattr(t, attr)
        return out

    def verdict(self) -> str:
        """Whether the expected campaign fits in what the budget has left."""
        if self.blocked:
            return f"no round can ask anything: {self.blocked}"
        need = self.total("campaign")
        for res in ("usd", "tokens_in", "tokens_out"):
            cap = getattr(self.caps, res)
            if cap is None:
                continue
            left = cap - getattr(self.spent, res)
            if getattr(need, res) > left + 1e-12:
                per = getattr(self.total("per_item") if self.teachers else Spend(), res)
                # a call is sent only while the cap has room for its upper bound (its reservation): the last
                # item's calls need that much left, not their expected cost
                # (a cascade's first tier: where a later tier's reservation no longer fits, the first still labels
                # the items it is sure of; a cap of $0.004 bought 109 items where this said 6)
                first = [t for t in self.teachers if t.teacher not in self.later_tiers]
                room = max((getattr(t.per_item_upper, res) for t in first), default=0.0)
                n = int((left - room) // per) + 1 - self.reference_items if per > 0 and left >= room else 0
                # once what is left no longer fits a later tier's reservation, `run` asks the first tier alone
                # (plan.callable_teachers): the last of the budget buys first-tier answers, at their cost
                later = max((getattr(t.per_item_upper, res) for t in self.teachers if t.teacher in self.later_tiers),
                            default=0.0)
                alone = sum(getattr(t.per_item, res) for t in first)
                end = ""
                if later > room and alone > 0 and per > 0:
                    tail = min(left, later)
                    n = (int(max(0.0, left - later) // per) - self.reference_items
                         + (int((tail - room) // alone) + 1 if tail >= room else 0))
                    end = (f"; the last {amount(res, later)} buys {', '.join(t.teacher for t in first)}'s answers "
                           "alone, the later tiers' bound no longer fitting")
                if end and n >= self.campaign_items:
                    return (f"the campaign's {self.campaign_items} items fit, the last of them answered by "
                            f"{', '.join(t.teacher for t in first)} alone: what is left then no longer fits the later "
                            f"tiers' reservation ({amount(res, later)})")
                return (f"the budget's {res} cap is reached before the campaign ends: about {max(0, n)} of "
                        f"{self.campaign_items} items fit (a call is sent only while the cap has room for its "
                        f"upper bound, {amount(res, room)}{end})")
        return "the expected spend fits in the budget"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["totals"] = {k: asdict(self.total(k)) for k in ("next_round", "next_round_upper", "campaign",
                                                          "campaign_upper")}
        d["verdict"] = self.verdict()
        return d


def schedule(config: CampaignConfig, next_no: int, pool: int, current: int | None = None) -> list[int]:
    """The sizes of the rounds left, from round ``next_no`` (``current``: the size of a round in progress, whose
    selection is fixed), capped by the pool."""
    sizes: list[int] = []
    left, first = pool, next_no
    if current is not None:
        sizes.append(current)
        left -= current
        first += 1
    for r in range(first, config.rounds.max_rounds + 1):
        n = min(config.rounds.size(r), left)
        if n <= 0:
            break
        sizes.append(n)
        left -= n
    return sizes


def estimate_campaign(config: CampaignConfig, *, sample_size: int = 32,
                      teachers: list[Teacher] | None = None) -> CampaignEstimate:
    """The estimate of the campaign ``config`` describes (resumed from its store where it exists); the config
    is checked exactly as ``run`` checks it."""
    parts = build_parts(config, teachers=teachers)
    from distilloop.loop.guidelines import check_owner
    from distilloop.loop.steps.reference import heldout_todo

    spent, done, current = Spend(), 0, None
    corrections = Corrections()
    observed: dict[str, Spend] = {}  # per teacher: what the ledger charged over ``asked[name]`` labeled items
    seen, asked = 0, dict[str, int]()
    if config.store_path.exists():
        store = Store.open(config.store_path)
        try:
            check_owner(store, config)  # not the store of another campaign file that names it too
            corrections = Corrections.from_store(store, parts.teachers)
            examples = store.examples()
            # as `run` takes its pool: neither annotated nor set aside for a reference nor skipped as too long
            taken = store.annotated_ids() | store.reserved_ids() | set(store.get_meta("too_long") or [])
            rounds = store.rounds()
            done = sum(1 for r in rounds if r["status"] == "done" and r["strategy"] != RELABEL)  # max_rounds' count
            if rounds and rounds[-1]["status"] == "annotating":
                current = (rounds[-1]["round"], len(store.selection(rounds[-1]["round"])))
            spent = store.spent()
            seen, asked, observed = observed_spend(store, rounds)
            pool: list[Example] = [e for e in examples if e.split == "pool" and e.id not in taken]
            reference, aside = heldout_todo(config, examples, len(pool), store)  # the held-out set still to label
        finally:
            store.close()
    else:
        examples = load_examples(config.data_path, config.data_spec(), config.campaign.labels, config.campaign.answer)
        check_pool(examples, config.data_path, config.data_spec())
        pool = [e for e in examples if e.split == "pool"]
        reference, aside = heldout_todo(config, examples, len(pool))
    next_no = current[0] if current else done + 1
    sizes = schedule(config, next_no, len(pool) - aside, current[1] if current else None)
    picked = sample(pool, sample_size)
    caps, _ = config.budget.caps()
    est = CampaignEstimate(config.campaign.name, next_no, sizes[0] if sizes else 0, len(sizes), sum(sizes),
                           len(pool) - aside, spent, caps, reference_items=reference)
    items = [make_item(config, parts, e) for e in picked]  # as `run` asks them: the same rationale policy
    k = max(1, len(picked))
    # the held-out set is labeled before the next round, as its items are: in both totals
    n_next, n_all = est.next_round_items + reference, est.campaign_items + reference
    later = (config.routing.cascade or [])[1:]
    est.later_tiers = list(later)
    # a later tier the ledger never charged over enough rounds it was in: the tiers before it were always sure
    never = [name for name in later if asked.get(name, 0) >= MIN_ITEMS and name not in observed]
    # one the campaign's rounds did not have (or on too few items to tell): new to it
    fresh = [name for name in later if seen and asked.get(name, 0) < MIN_ITEMS]
    bounds: dict[str, list[Spend]] = {}
    for t in parts.teachers:
        exp, up = Spend(), Spend()
        for it in items:
            exp = exp + corrections.expected(t, it)
            bounds.setdefault(t.name, []).append(upper_bound(t, it, exact=False))
            up = up + bounds[t.name][-1]
        measured = asked.get(t.name, 0) >= MIN_ITEMS
        total, n = ((observed[t.name], asked[t.name]) if measured and t.name in observed else
                    (Spend(), asked[t.name]) if t.name in never else (exp, k))
        est.teachers.append(TeacherEstimate(
            t.name, t.model, getattr(t, "mode", "live"), total.scaled(1 / n), up.scaled(1 / k),
            total.scaled(n_next / n), up.scaled(n_next / k), total.scaled(n_all / n), up.scaled(n_all / k)))
    est.blocked = round_cap_below_one_call(Budget(caps, config.budget.caps()[1], spent=spent), bounds)
    if reference:
        est.notes.append(
            f"before round {next_no} the teachers label {reference} held-out items, the evaluation reference of a "
            "campaign without gold dev or test rows to choose its student on ([evaluation] heldout_size): counted in "
            "the next round and the campaign")
    unseen = [name for name in later if not seen]
    if unseen:
        first = [t.campaign for t in est.teachers if t.teacher not in later]
        low = sum(first, Spend())
        est.notes.append(
            f"{', '.join(unseen)}: a later tier of the cascade, counted here on every item until the campaign has "
            f"labeled {MIN_ITEMS} items; the cascade asks it only where the teachers before it are unsure, so expect "
            f"less (the first tier alone: {low.tokens_in + low.tokens_out:,} tokens, ${low.usd:.4f}, for the "
            "campaign; `distilloop pilot` or a first round measures how often)")
    if fresh:
        est.notes.append(
            f"{', '.join(fresh)}: a later tier of the cascade new to the campaign, counted here on every item until "
            "a round measures how often the teachers before it are unsure")
    if never:
        est.notes.append(
            f"{', '.join(never)}: a later tier of the cascade the campaign has not asked about any of its {seen} "
            "labeled items (the teachers before it were sure): counted at nothing; its upper bound stands")
    return est


def measured_per_item(store: Store, later_tiers: list[str]) -> dict[str, Spend]:
    """Per teacher measured on ``MIN_ITEMS`` labeled items or more: what the ledger charged per labeled item (a
    later tier of the cascade, only where it was asked; one never charged: nothing). What ``run`` sizes a round on,
    as ``estimate`` forecasts it: counted on every item through every teacher, a cascade's expensive later tier made
    each round near the cap buy a third of what was left, and a campaign on $0.02 ran 26 rounds of 17, 12, ... 1
    items, a student trained after each."""
    _, asked, observed = observed_spend(store, store.rounds())
    out: dict[str, Spend] = {}
    for name, n in asked.items():
        if n >= MIN_ITEMS and name in observed:
            out[name] = observed[name].scaled(1 / n)
        elif n >= MIN_ITEMS and name in later_tiers:
            out[name] = Spend()
    return out


def observed_spend(store: Store, rounds: list[dict[str, Any]]) -> tuple[int, dict[str, int], dict[str, Spend]]:
    """The labeled items of the campaign's finished annotation rounds, per teacher how many of them were labeled
    in rounds whose guideline had it (a teacher added later was not there to ask before), and per teacher what
    the ledger charged over them (with the pilot's calls, whose items the first round reuses), or the pilot's
    items and calls before any round has finished; nothing before ``MIN_ITEMS`` items. A teacher the ledger never
    charged is left out of the spend (its expected figure stands, or nothing where it had items to be asked)."""
    from distilloop.loop.pilot import PILOT_META

    finished = [r for r in rounds if r["status"] == "done" and r["strategy"] != RELABEL and r["round"] > 0]
    counted = {0} | {r["round"] for r in finished}
    items = sum(int(r["n_selected"] or 0) for r in finished) or len(store.get_meta(PILOT_META) or [])
    if items < MIN_ITEMS:
        return 0, {}, {}
    guides = store.guidelines()
    asked: dict[str, int] = {}
    for r in finished or [{"n_selected": items, "started_at": "~"}]:  # the pilot: asked with every teacher now
        under = [g for g in guides if g["created_at"] <= r["started_at"]] or guides[:1]
        for name in under[-1]["teachers"] if under else []:
            asked[name] = asked.get(name, 0) + int(r["n_selected"] or 0)
    per: dict[str, Spend] = {}
    for round_no, by_teacher in store.spend_by_round_and_teacher().items():
        if round_no in counted:
            for name, s in by_teacher.items():
                per[name] = per.get(name, Spend()) + s
    # round 0 also holds the held-out set the teachers labeled (80 items): spread over the first round's 20, it
    # made the next rounds forecast at 3 times their cost
    for name, s in store.spend_on_reference("teachers", sorted(counted)).items():
        if name in per:
            per[name] = Spend(max(0, per[name].tokens_in - s.tokens_in), max(0, per[name].tokens_out - s.tokens_out),
                              max(0.0, per[name].usd - s.usd))
    if not guides:  # a store from before guideline versions: every teacher the ledger charged, on every item
        asked = dict.fromkeys(per, items)
    return items, asked, per
