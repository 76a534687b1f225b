"""A pilot before the money: every teacher asked about a small seeded sample of the pool, charged to the budget
and reused by the campaign (the first round starts with the pilot's items, whose answers are paid already), and
what it shows: each teacher's label distribution, the agreement between teachers, accuracy where the data has
gold, tokens, dollars and seconds per item, the share of items that would go to review, and the projected cost,
wall time and review load of the whole campaign."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations

from distilloop.annotators.agreement import cohen_kappa
from distilloop.core.types import Spend
from distilloop.loop.diagnostics import class_shares, one_label
from distilloop.loop.env import Env
from distilloop.loop.estimate import schedule
from distilloop.loop.references import choose
from distilloop.loop.routing import REVIEW
from distilloop.loop.steps.annotate import Annotation, ask, calibrate
from distilloop.loop.steps.decide import aggregate, asked, degrade, with_missing_votes
from distilloop.loop.steps.reference import heldout_todo

#: the meta key of the pilot's items
PILOT_META = "pilot_ids"
#: salt of the pilot sample's generator (round 0)
PILOT_SALT = 83
#: answers a teacher must give in the pilot before its label shares are judged
PILOT_MIN_ANSWERS = 10


@dataclass
class TeacherPilot:
    teacher: str
    answered: int = 0
    invalid: int = 0
    failed: int = 0  # items it was asked about and gave no answer to (every attempt failed, or it was taken out)
    error: str | None = None  # the last failure's message
    invalid_error: str | None = None  # why its last invalid answer was (not JSON, a label outside the set, cut)
    labels: dict[str, int] = field(default_factory=dict)
    #: the labels of its votes as the campaign counts them (after calibration, which removes a lean toward a label)
    counted: dict[str, int] = field(default_factory=dict)
    #: (label, k, n): it gave one label to k of its n counted answers, more often than the data's gold labels explain
    one_label: tuple[str, int, int] | None = None
    correct: int = 0
    judged: int = 0
    spend: Spend = field(default_factory=Spend)
    seconds: float = 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.judged if self.judged else None


@dataclass
class PilotReport:
    n: int
    teachers: list[TeacherPilot]
    kappa: dict[str, float]  # "a / b" -> Cohen's kappa between two teachers on the pilot items
    review_share: float
    ensemble_accuracy: float | None
    spend: Spend  # what the pilot charged (answers already paid are free)
    seconds: float  # the pilot's wall time
    campaign_items: int
    projected: Spend  # the campaign's teacher cost at the pilot's cost per item
    projected_seconds: float
    projected_reviews: float
    reference_items: int = 0  # the teachers' held-out set still to label (a campaign without gold): in the projection
    judged: int = 0  # the gold items ``ensemble_accuracy`` is over
    #: the ensemble's labels' accuracy (gold) on the pilot's items with each teacher's answers left out, as if the
    #: campaign had not asked it: what each teacher adds (two or more teachers, gold on the items)
    without: dict[str, float] = field(default_factory=dict)


def sample_ids(env: Env, n: int) -> list[str]:
    """The pilot's items: the ones an earlier pilot chose (topped up to ``n``), else a seeded sample of the pool."""
    kept = [i for i in env.store.get_meta(PILOT_META) or [] if i in {e.id for e in env.unlabeled_pool()}]
    if len(kept) < n:
        rest = [e.id for e in env.unlabeled_pool() if e.id not in set(kept)]
        kept += choose(rest, n - len(kept), env.rng(0, salt=PILOT_SALT))
    env.store.set_meta(PILOT_META, kept)
    return kept[:n]


def run_pilot(env: Env, n: int = 30) -> PilotReport:
    """Ask every teacher about ``n`` pool items (round 0) and measure; nothing is accepted or trained."""
    store = env.store
    ids = sample_ids(env, n)
    items = [env.item(env.examples[i]) for i in ids]
    env.budget.new_round(0, store.spent(0))
    spent_before, started = store.spent(), time.perf_counter()
    with env.progress.bar(f"pilot: teachers answering {len(items)} items",
                          len(items) * len(env.parts.teachers)) as advance:
        result, tiers = asyncio.run(ask(env, items, 0, advance))
    seconds = time.perf_counter() - started
    ann = Annotation(0, ids, calibrate(env, {i: result.votes[i] for i in ids if result.votes.get(i)}), tiers, result)
    votes = {i: with_missing_votes(v, asked(env, ann, i)) for i, v in ann.votes.items()}
    verdicts = {i: degrade(v, len(asked(env, ann, i)))
                for i, v in aggregate(env.parts.aggregator, env.parts.space, store, votes).items()}
    routes = env.parts.router.route(list(verdicts.items()))
    gold = {i: env.examples[i].gold for i in ids if env.examples[i].gold is not None}
    per = {t.name: TeacherPilot(t.name) for t in env.parts.teachers}
    wanted = set(ids)
    for call in store.calls(round_no=0):  # what was paid: one call serves every item with the same prompt
        if call.example_id in wanted and call.teacher in per:
            p = per[call.teacher]
            if call.status == "ok":
                p.spend = p.spend + Spend(call.tokens_in, call.tokens_out, call.cost_usd)
                if not call.valid and call.error:
                    p.invalid_error = call.error.removeprefix(f"teacher {call.teacher}: ")
            elif call.status == "error" and call.error:
                p.error = call.error.removeprefix(f"teacher {call.teacher}: ")
    for name, refused in result.refused.items():  # why, where no call failed: the budget had no room for them
        if name in per and refused and per[name].error is None:
            per[name].error = (f"the budget had no room for {len(refused)} of its calls (a call reserves its prompt "
                               "and max_tokens of answer before it is sent): raise the [budget] cap")
    for name, reason in result.disabled.items():
        if name in per and per[name].error is None:
            per[name].error = reason
    for i in ids:  # asked and not answered: failed (a missing vote is dissent, and the table says it)
        got = {v.teacher for v in result.votes.get(i, [])}
        for name in asked(env, ann, i):
            if name in per and name not in got:
                per[name].failed += 1
    for i in ids:  # what each item got: its teachers' own answers (before calibration), duplicates included
        for v in result.votes.get(i, []):
            tp = per.get(v.teacher)
            if tp is None:
                continue
            tp.answered += 1
            if not v.valid or v.label is None:
                tp.invalid += 1
                continue
            tp.labels[v.label] = tp.labels.get(v.label, 0) + 1
            if i in gold:
                tp.judged += 1
                tp.correct += v.label == gold[i]
    for i in ids:
        for v in ann.votes.get(i, []):
            if v.teacher in per and v.valid and v.label is not None:
                per[v.teacher].counted[v.label] = per[v.teacher].counted.get(v.label, 0) + 1
    shares = class_shares(store, env.parts.space) if env.parts.space.has_label_set else None
    for p in per.values():
        p.seconds = store.latency_total(0, p.teacher, ids)
        if len(env.parts.space.labels) > 1:
            p.one_label = one_label(p.counted or p.labels, shares, min_answers=PILOT_MIN_ANSWERS)
    answers = {t: {v.teacher: v.label for v in vs if v.valid and v.label is not None} for t, vs in ann.votes.items()}
    kappa = {}
    for a, b in combinations(sorted(per), 2):
        common = [i for i in ids if a in answers.get(i, {}) and b in answers.get(i, {})]
        if len(common) >= 2:
            labels = env.parts.space.labels or tuple(sorted({answers[i][x] for i in common for x in (a, b)}))
            kappa[f"{a} / {b}"] = cohen_kappa([answers[i][a] for i in common], [answers[i][b] for i in common], labels)
    judged = [i for i in ids if i in gold and i in verdicts and verdicts[i].label is not None]
    # the only teacher of a cascade's first tier is not left out: the next tier answered only the items it was unsure of
    first = env.parts.cascade.tiers[0] if env.parts.cascade is not None else []
    spare = [name for name in per if list(first) != [name]]
    without = {name: _accuracy_without(env, ann, name, gold) for name in spare} if judged and len(per) > 1 else {}
    review_share = sum(r == REVIEW for r in routes.values()) / len(ids) if ids else 0.0
    per_item = sum((p.spend for p in per.values()), Spend()).scaled(1 / max(1, len(ids)))
    done = sum(1 for r in store.rounds() if r["status"] == "done")
    pool = len(env.unlabeled_pool())
    reference, aside = heldout_todo(env.config, env.examples.values(), pool, store)
    sizes = schedule(env.config, done + 1, pool - aside)
    items_left = sum(sizes)
    n_asked = items_left + reference  # the held-out set is asked as the rounds' items are
    return PilotReport(
        len(ids), list(per.values()), kappa, review_share,
        sum(verdicts[i].label == gold[i] for i in judged) / len(judged) if judged else None,
        store.spent() + Spend(-spent_before.tokens_in, -spent_before.tokens_out, -spent_before.usd), seconds,
        items_left, per_item.scaled(n_asked), seconds / max(1, len(ids)) * n_asked, review_share * items_left, reference,
        len(judged), {k: v for k, v in without.items() if v is not None})


def _accuracy_without(env: Env, ann: Annotation, name: str, gold: Mapping[str, object]) -> float | None:
    """The share of the ensemble's labels that are right on the gold items, as ``ensemble_accuracy`` counts it
    (over the items that get a label), with teacher ``name`` left out: its votes dropped, the others decided as a
    round decides them. The whole ensemble leaves its split items unlabeled (they go to review) and is judged on
    the rest, so the comparison favours keeping a teacher: one said to add nothing adds nothing on those either."""
    expected = {i: [t for t in asked(env, ann, i) if t != name] for i in ann.votes if i in gold}
    votes = {i: with_missing_votes([v for v in ann.votes[i] if v.teacher != name], t)
             for i, t in expected.items() if t}
    verdicts = aggregate(env.parts.aggregator, env.parts.space, env.store, votes)
    labeled = [i for i, v in verdicts.items() if v.label is not None]
    return sum(verdicts[i].label == gold[i] for i in labeled) / len(labeled) if labeled else None


#: gold items the pilot's ensemble is judged on before a teacher is said to add nothing: on the demo the 0.5B
#: teacher added nothing on 30 items (63.3% both ways) and a point on 100 (85.0% against 84.0%)
MIN_JUDGED = 100


def spare_teachers(rep: PilotReport) -> list[TeacherPilot]:
    """The teachers without which the ensemble's labels are as right (``rep.without``), judged on enough gold items
    (``MIN_JUDGED``) to say so: leaving one out saves its tokens."""
    if rep.ensemble_accuracy is None or rep.judged < MIN_JUDGED:
        return []
    return [p for p in rep.teachers if p.answered and rep.without.get(p.teacher, -1.0) >= rep.ensemble_accuracy]


def describe_counts(labels: dict[str, int], most: int = 8) -> str:
    """The labels a teacher gave, the commonest first, with their shares; beyond ``most``, how many others."""
    total = sum(labels.values())
    if not total:
        return "-"
    common = Counter(labels).most_common()
    rest = sum(k for _, k in common[most:])
    def said(lab: str) -> str:  # codes or numbers quoted: "1 40%, 0 27%" read as arithmetic
        return f"'{lab}'" if lab.replace(".", "", 1).lstrip("-").isdigit() else lab

    return (", ".join(f"{said(lab)} {100 * k / total:.0f}%" for lab, k in common[:most])
            + (f", {len(common) - most} others {100 * rest / total:.0f}%" if rest else ""))
