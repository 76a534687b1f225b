"""A campaign that knows when it is failing: plain warnings, each with what to try, read from the store after every
round (``run``) and by ``status`` and the HTML report.

- a teacher that gives one label to (nearly) every item, more often than the data's gold labels are that label: it
  is not reading the input;
- training labels that hold one class: the student can only learn a constant;
- teachers that agree no better than chance (Cohen's kappa, corrected for each teacher's own label rates, so two
  teachers that both say the majority label to everything do not look like they agree);
- the teachers' labels no closer than chance to the data's gold labels (codes read otherwise than the data means);
- the student's and its reference's (:mod:`distilloop.loop.student_warnings`): a student at the majority-class
  baseline, texts its encoder cannot read, decisions on a handful of rows (or of a rare label's), a test split
  without gold;
- a teacher that answered none of its questions in the last round it was asked (a dead server, a wrong key), or
  answered every one outside the label set or the format (paid for, and of no use);
- items the `auto` reviewer cannot decide (an even split between the teachers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from itertools import combinations
from typing import Any

from distilloop.annotators.agreement import cohen_kappa
from distilloop.core.answers import AnswerSpace
from distilloop.loop.student_warnings import (
    gold_before_labels,
    rare_in_reference,
    small_reference,
    test_without_gold,
    unreadable_texts,
    weak_student,
)
from distilloop.storage.store import Store

#: answers a teacher must have given before its label rates mean anything
MIN_ANSWERS = 20
#: the share of one label above which a teacher is called constant
CONSTANT_SHARE = 0.95
#: kappa at or below which two teachers agree no better than chance
CHANCE_KAPPA = 0.1


def voted_labels(store: Store, space: AnswerSpace,
                 votes_by_item: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, dict[str, str]]:
    """Per teacher, its valid vote on each item as the campaign decided with it (calibrated where calibration is
    on), from the consensus rows (``votes_by_item``: already read)."""
    by_teacher: dict[str, dict[str, str]] = {}
    for ex, votes in (store.all_votes() if votes_by_item is None else votes_by_item).items():
        for v in votes:
            if v.get("valid", True) and v.get("label") in space.labels:
                by_teacher.setdefault(v["teacher"], {})[ex] = v["label"]
    return by_teacher


#: how unlikely a teacher's few answers of the other labels must be, given the data's gold class shares, before it is
#: called constant: on data that is 91% one label, 95 of 100 answers of that label is a teacher reading the input
CONSTANT_P = 0.01


def class_shares(store: Store, space: AnswerSpace) -> dict[str, float] | None:
    """The data's own label shares, from its gold labels (every split), or None with fewer than ``MIN_ANSWERS``."""
    gold = Counter(g for g in store.gold_labels().values() if g in space.labels)
    n = sum(gold.values())
    return {label: k / n for label, k in gold.items()} if n >= MIN_ANSWERS else None


def one_label(label_counts: dict[str, int], shares: dict[str, float] | None,
              min_answers: int = MIN_ANSWERS) -> tuple[str, int, int] | None:
    """``(label, k, n)`` when a teacher gave one label to (nearly) every one of its ``n`` answers, more often than the
    data's class ``shares`` (gold, where known) explain: its few other answers would be that rare by chance with
    probability under ``CONSTANT_P``. Without shares, every share of ``CONSTANT_SHARE`` or more counts."""
    n = sum(label_counts.values())
    if n < min_answers:
        return None
    label, k = Counter(label_counts).most_common(1)[0]
    if k / n < CONSTANT_SHARE:
        return None
    if shares is not None:
        from scipy.stats import binom

        if binom.cdf(n - k, n, 1.0 - shares.get(label, 0.0)) >= CONSTANT_P:
            return None  # the data is that lopsided
    return label, k, n


def constant_teachers(store: Store, space: AnswerSpace, calibrated: bool = False,
                      voted: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Teachers giving one label to (nearly) every item, more often than the data's gold labels are that label. With
    calibration on, judged on the calibrated votes the campaign decides with (``voted``, read here if not given): a
    lean that calibration removes (a small model's raw answers to the items a cascade passes it, say) is not a
    teacher ignoring the input."""
    if not space.has_label_set:
        return []
    if calibrated:
        counts = {t: dict(Counter(by_item.values())) for t, by_item in (voted or voted_labels(store, space)).items()}
    else:
        counts = {s.teacher: s.label_counts for s in store.teacher_stats()}
    shares = class_shares(store, space)
    out = []
    for teacher, label_counts in counts.items():
        found = one_label(label_counts, shares)
        if found is None:
            continue
        label, k, n = found
        fix = ("; its votes are calibrated, which removes a lean but not a teacher that ignores the input: "
               "check its accuracy in `distilloop pilot`" if calibrated else
               ", or [aggregation] calibrate = \"batch\" if it reports logprobs; `distilloop pilot` shows each "
               "teacher's answers on a sample")
        data = "" if shares is None else f" (the gold labels are {100 * shares.get(label, 0.0):.0f}% {label!r})"
        out.append(f"teacher {teacher} answered {label!r} to {k} of {n} items"
                   f"{' (its calibrated votes)' if calibrated else ''}{data}: it is hardly reading the input. "
                   "Try a stronger model, another prompt style (e.g. prompt = \"few_shot_cot\" with worked "
                   f"examples){fix}")
    return out


def one_class(store: Store, space: AnswerSpace) -> list[str]:
    labels = [r["label"] for r in store.labeled()]
    if len(labels) < 10 or not space.has_label_set or len(set(labels)) > 1:
        return []
    return [f"every accepted label is {labels[0]!r} ({len(labels)} labels): the student can only learn a constant. "
            "Check the teachers (`distilloop pilot`), send more items to review (raise [routing] min_agreement), or "
            "label a few items of the other classes by hand"]


def chance_agreement(store: Store, space: AnswerSpace, voted: dict[str, dict[str, str]] | None = None) -> list[str]:
    if not space.has_label_set:
        return []
    by_teacher = voted if voted is not None else voted_labels(store, space)
    out = []
    for a, b in combinations(sorted(by_teacher), 2):
        common = sorted(set(by_teacher[a]) & set(by_teacher[b]))
        if len(common) < MIN_ANSWERS:
            continue
        kappa = cohen_kappa([by_teacher[a][i] for i in common], [by_teacher[b][i] for i in common], space.labels)
        if kappa <= CHANCE_KAPPA:
            out.append(f"teachers {a} and {b} agree no better than chance (Cohen's kappa {kappa:.2f} over "
                       f"{len(common)} items): at least one of them is not doing the task. `distilloop pilot` shows "
                       "each teacher's label distribution (and accuracy where the data has gold)")
    return out


#: gold items of each of two labels, at least, before the labels' agreement with gold is judged (a gold of one
#: label gives every labeler a kappa of 0)
MIN_GOLD_PER_CLASS = 5


def labels_against_gold(store: Store, space: AnswerSpace) -> list[str]:
    """The teachers' accepted labels no closer to the data's own gold labels than chance, while they may agree with
    each other: codes the teachers read otherwise than the data (``0``/``1`` with ``0`` the positive class, star
    ratings, an in-house scheme) or a task text that does not say what the labels mean."""
    if not space.has_label_set:
        return []
    pairs = [(a, g) for a, g in store.teacher_labels_with_gold() if a in space.labels and g in space.labels]
    if len(pairs) < MIN_ANSWERS or sum(n >= MIN_GOLD_PER_CLASS for n in Counter(g for _, g in pairs).values()) < 2:
        return []
    kappa = cohen_kappa([a for a, _ in pairs], [g for _, g in pairs], space.labels)
    if kappa > CHANCE_KAPPA:
        return []
    same = sum(a == g for a, g in pairs) / len(pairs)
    wrong = Counter((a, g) for a, g in pairs if a != g).most_common(1)
    often = f"; most often {wrong[0][0][0]!r} where the gold says {wrong[0][0][1]!r}, {wrong[0][1]} times" if wrong else ""
    return [f"the teachers' labels agree with the data's gold labels no better than chance (Cohen's kappa {kappa:.2f}, "
            f"{same:.0%} the same over {len(pairs)} labeled items with gold{often}): the teachers do not read the "
            "labels as the data means them. Say what each label means in [campaign] task (for codes, e.g. "
            "\"0 = negative, 1 = positive\"), try it on a few items with `distilloop pilot`, then `distilloop relabel "
            "--stale` asks the labeled items again"]


def warnings(store: Store, space: AnswerSpace, metric: str = "accuracy", calibrated: bool = False,
             student: Any = None) -> list[str]:
    """Every warning that holds for the campaign now (``calibrated``: the votes are batch-calibrated; ``student``:
    the campaign's ``[student]``, for the advice on a weak student)."""
    rows = store.all_votes() if space.has_label_set else {}  # the consensus votes, read once for every check
    voted = voted_labels(store, space, rows) if space.has_label_set else {}
    return [*failing_teachers(store), *undecided_ties(store), *constant_teachers(store, space, calibrated, voted),
            *one_class(store, space), *chance_agreement(store, space, voted), *labels_against_gold(store, space),
            *weak_student(store, metric, student, len(space.labels), space), *small_reference(store, metric),
            *rare_in_reference(store, metric, space), *gold_before_labels(store, space),
            *unreadable_texts(store, student),
            *test_without_gold(store),
            *(diluted_confidence(store, space, rows) if calibrated else [])]


#: a calibrated confidence below this share of the teacher's own is said (with labels left out of its answers)
DILUTED_SHARE = 0.8


def diluted_confidence(store: Store, space: AnswerSpace,
                       votes_by_item: dict[str, list[dict[str, Any]]] | None = None) -> list[str]:
    """Teachers whose answers leave labels out (an API's top logprobs with many labels) and whose confidence the
    calibration lowers by a fifth or more: the left-out labels hold mass, so a cascade asks its next teacher
    and review takes items the teachers agree on (``benchmarks/calibration_labels.py``)."""
    own: dict[str, list[float]] = {}
    calibrated: dict[str, list[float]] = {}
    left_out: dict[str, list[int]] = {}
    for votes in (store.all_votes() if votes_by_item is None else votes_by_item).values():
        for v in votes:
            raw, conf = v.get("distribution"), v.get("confidence")
            if not (v.get("calibrated_distribution") and isinstance(raw, dict) and raw and conf is not None):
                continue
            own.setdefault(v["teacher"], []).append(max(raw.values()))
            calibrated.setdefault(v["teacher"], []).append(float(conf))
            left_out.setdefault(v["teacher"], []).append(sum(1 for p in raw.values() if not p))
    out = []
    for teacher, values in own.items():
        before, after = sum(values) / len(values), sum(calibrated[teacher]) / len(values)
        missing = sum(left_out[teacher]) / len(values)
        if len(values) >= MIN_ANSWERS and missing >= 1 and after < DILUTED_SHARE * before:
            out.append(f"teacher {teacher}'s answers leave out {missing:.0f} of {len(space.labels)} labels on average "
                       f"(its API's top alternatives), and the calibration lowers its mean confidence from {before:.2f} "
                       f"to {after:.2f}: a cascade asks the next teacher, and review takes items the teachers agree "
                       "on, more often. With a strong teacher, [aggregation] calibrate = \"none\" may pay; "
                       "`distilloop pilot` on gold rows shows its accuracy either way")
    return out


def undecided_ties(store: Store) -> list[str]:
    """Items routed to the ``auto`` reviewer that it cannot decide: the teachers split evenly and no confidence
    broke the tie, so there is no ensemble label to accept, and no one else will answer."""
    stuck = [r["example_id"] for r in store.pending_reviews() if r["backend"] == "auto"]
    if not stuck:
        return []
    shown = ", ".join(stuck[:5]) + (", ..." if len(stuck) > 5 else "")
    return [f"{len(stuck)} item(s) wait for a review that [review] kind = \"auto\" cannot give ({shown}): the "
            "teachers split evenly on them and no confidence broke the tie, so there is no label to accept, and they "
            "are not trained on. A reviewer decides them: with [review] kind = \"label_studio\" the next `run` (or "
            "`distilloop review push`) sends them; a third teacher makes such splits rarer in later rounds"]


def failing_teachers(store: Store) -> list[str]:
    """Teachers whose every call failed in the last rounds they were asked in: the items they were asked about
    were decided on the other teachers' answers alone (or not at all)."""
    streak: dict[str, list[dict[str, Any]]] = {}  # per teacher, its latest rounds without one usable answer
    for r in store.call_outcomes_by_round():
        if r["ok"] > r["invalid"] or not (r["failed"] or r["invalid"]):
            streak[r["teacher"]] = []
        else:
            streak.setdefault(r["teacher"], []).append(r)
    out = []
    for teacher, rounds in streak.items():
        if not rounds:
            continue
        error = (rounds[-1]["last_error"] or "").removeprefix(f"teacher {teacher}: ")[:300]
        nums = [r["round"] for r in rounds]
        where = f"round {nums[0]}" if len(nums) == 1 else f"rounds {nums[0]}-{nums[-1]}"
        again = [n for n in nums if n > 0]  # round 0 is the evaluation set, not labels to relabel
        fix = (f", then `distilloop relabel --round N` (N = {', '.join(map(str, again))}) asks those items again "
               "(answers already paid for are reused)" if again else "")
        failed, invalid = sum(r["failed"] for r in rounds), sum(r["invalid"] for r in rounds)
        if invalid and not failed:  # it answers, but never with a label of the set (or never as JSON): paid for
            out.append(f"teacher {teacher} gave no usable answer to its {sum(r['items'] for r in rounds)} question(s) "
                       f"in {where} ({invalid} invalid answer(s), paid for; the last: {error}): those items were "
                       "decided on the other teachers' answers. Its model may not follow the format or the label "
                       "names: try another prompt style or model, say the labels in the task, or take it out "
                       f"(`distilloop pilot` shows its answers){fix}")
            continue
        out.append(f"teacher {teacher} answered none of its {sum(r['items'] for r in rounds)} question(s) in {where} "
                   f"({failed} failed call(s){f' and {invalid} invalid answer(s)' if invalid else ''}, the last: "
                   f"{error}): those items were decided on the other teachers' answers. Fix it (its base_url, API "
                   f"key or server; `distilloop pilot` asks the teachers about a few items and shows what failed){fix}")
    return out


def warn_once(store: Store, space: AnswerSpace, metric: str, said: set[str], warn: Callable[[str], None],
              calibrated: bool = False, student: Any = None) -> None:
    """Say each warning that holds now and was not said yet (``said`` keeps what was)."""
    for message in warnings(store, space, metric, calibrated, student):
        if message not in said:
            said.add(message)
            warn(message)
