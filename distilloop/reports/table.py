"""The per-round table (the learning curve: the student's score against tokens and dollars spent) and the
campaign summary that ``distilloop run``, ``status`` and ``report`` print."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from distilloop.storage.queries import RoundRow
from distilloop.storage.store import Store


def row_dict(row: RoundRow) -> dict[str, Any]:
    """A round row as JSON: every field, and the student's accuracy and macro-F1 at the top level with the
    reference they are measured on and its baseline."""
    return {**dataclasses.asdict(row), "accuracy": row.accuracy, "macro_f1": row.macro_f1,
            "reference": row.reference, "baseline": row.baseline}


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def describe_scores(metrics: dict[str, Any], metric: str = "accuracy") -> str:
    """A student's scores, each named by its reference with its majority-class baseline and 95% interval, and
    the reference the campaign decides on."""
    refs = metrics.get("refs")
    if refs is None:  # a student recorded before references existed
        return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    # the majority label's score on the metric shown; the 95% interval is the accuracy's (a proportion)
    base = "baseline" if metric == "accuracy" else f"baseline_{metric}"
    parts = [f"{metric} {pct(sc.get(metric))} on {name} (n={sc.get('n')}, baseline {pct(sc.get(base))}"
             + (f", 95% CI {pct(sc.get('ci_low'))}-{pct(sc.get('ci_high'))})" if metric == "accuracy" else
                f"; accuracy {pct(sc.get('accuracy'))}, 95% CI {pct(sc.get('ci_low'))}-{pct(sc.get('ci_high'))})")
             for name, sc in refs.items()]
    decided = metrics.get("reference")
    parts.append(f"decided on {decided}" if decided else "no reference to decide on: promoted as the newest")
    trust = metrics.get("review_trust")
    if trust:
        scores = ", ".join(f"{how} {pct(sc)}" for how, sc in trust["scores"].items())
        parts.append(f"{trust['reviewed']} reviews read as {trust['chosen']} (review_trust = {trust['setting']}"
                     + (f"; {metric} on {trust['reference']}: {scores})" if len(trust["scores"]) > 1 else ")"))
    tuned = metrics.get("tuned")
    if tuned:
        chosen = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in tuned["chosen"].items())
        sep = "; " if any(", " in k for k in tuned["scores"]) else ", "  # a candidate of several parameters
        scores = sep.join(f"{k} {pct(sc)}" for k, sc in tuned["scores"].items())
        parts.append(f"{chosen} chosen on {tuned['reference']} ({scores})")
    return "; ".join(parts)


def _fmt(v: Any, kind: str = "") -> str:
    if v is None:
        return "-"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "usd":
        return f"${v:.4f}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


COLUMNS = [("round", "round", ""), ("strategy", "strategy", ""), ("selected", "asked", ""),
           ("labeled", "labeled", ""), ("review", "review", ""), ("tokens_in", "tokens in", ""),
           ("tokens_out", "tokens out", ""), ("usd", "USD", "usd"), ("agreement", "agreement", "pct"),
           ("label_acc", "label acc", "pct"), ("accuracy", "student acc", "pct"), ("reference", "on", ""),
           ("baseline", "baseline", "pct"), ("promoted", "promoted", "")]


def metric_name(metric: str) -> str:
    """``[evaluation] metric`` as people read it: accuracy, macro-F1."""
    return "macro-F1" if metric == "macro_f1" else metric


#: the student's columns of a campaign decided on macro-F1: the score it is promoted on, and its baseline's
F1_COLUMNS = {"accuracy": ("macro_f1", "student F1", "pct"), "baseline": ("baseline_macro_f1", "baseline", "pct")}


def columns(metric: str = "accuracy") -> list[tuple[str, str, str]]:
    """The table's columns: the student's score and baseline on the ``metric`` its promotions are decided on (on
    91% negative data the table showed accuracy, 93.8% at the majority baseline, on a campaign deciding on
    macro-F1, where that student scored 48.4%)."""
    return [F1_COLUMNS.get(key, (key, head, kind)) if metric == "macro_f1" else (key, head, kind)
            for key, head, kind in COLUMNS]


def rounds_table(rows: list[RoundRow], title: str = "Rounds", metric: str = "accuracy") -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    shown = columns(metric)
    for _, head, _kind in shown:
        table.add_column(head, justify="right")
    for row in rows:
        table.add_row(*(_fmt(getattr(row, key), kind) for key, _, kind in shown))
    return table


def summary(store: Store, caps: Any = None) -> dict[str, Any]:
    spent = store.spent()
    out: dict[str, Any] = {
        "name": store.get_meta("name"),
        "rounds": len(store.rounds()),
        "examples": store.split_counts(),
        "labeled": sum(store.label_sources().values()),
        "labeled_by": store.label_sources(),
        "pending_reviews": store.pending_review_count(),
        "skipped_reviews": len(store.skipped_reviews()),  # skipped by every reviewer: left out of training
        "calls": store.call_counts(),
        "charging": store.call_accounting(),
        "spent": {"tokens_in": spent.tokens_in, "tokens_out": spent.tokens_out, "usd": round(spent.usd, 6)},
        "by_teacher": {k: dataclasses.asdict(v) for k, v in store.spend_by_teacher().items()},
        "stop_reason": store.get_meta("stop_reason"),
    }
    active = store.active_student()
    out["active_student"] = ({"version": active["version"], "round": active["round"], "metrics": active["metrics"]}
                             if active else None)
    if caps is not None:
        out["caps"] = {"tokens_in": caps.tokens_in, "tokens_out": caps.tokens_out, "usd": caps.usd}
    return out


def versions_summary(store: Store, config: Any = None) -> dict[str, Any]:
    """The guideline versions (labels made under each, the stale ones; with the campaign's config, a change of its
    file not recorded yet) and the data versions of a campaign."""
    from distilloop.loop.guidelines import guideline_summary

    return {"guidelines": guideline_summary(store, config), "data_versions": store.data_versions()}


#: a teacher's per-class rates on fewer items than this are mostly the prior
MIN_RELIABILITY_ITEMS = 10
#: the most classes whose rates are all shown (beyond it, the lowest ones)
SPELLED_CLASSES = 8
#: a class's rate on fewer items than this is mostly the prior (0.50 for a teacher right on its one item): beyond
#: ``SPELLED_CLASSES`` classes it is neither ranked nor in the balanced accuracy, where other classes have more
MIN_CLASS_ITEMS = 3


@dataclasses.dataclass
class TeacherReliability:
    """One teacher's estimated reliability: per class, P(it says the class | the class is true) and the items
    that rate rests on; ``balanced`` (their mean: a teacher that says one label to everything scores chance) is
    None while it answered fewer than ``MIN_RELIABILITY_ITEMS`` of the items the estimate rests on."""

    teacher: str
    items: float
    per_class: list[tuple[str, float, float]]
    balanced: float | None

    def not_yet(self) -> str:
        """Why there is no balanced accuracy yet."""
        if self.items < MIN_RELIABILITY_ITEMS:
            return f"not estimated yet (it answered {self.items:.0f} of those items; {MIN_RELIABILITY_ITEMS} needed)"
        return f"not estimated yet ({self.classes()})"

    @property
    def chance(self) -> float:
        return 1 / len(self.per_class) if self.per_class else 0.0

    def classes(self, most: int = SPELLED_CLASSES) -> str:
        """The per-class rates as one line: every class up to ``most``, else the lowest ``most`` of those the
        estimate has items for (a class with none shows only the prior) and how many have none."""
        def spell(classes: list[tuple[str, float, float]]) -> str:
            return ", ".join(f"{label} {p:.2f} (n~{n:.0f})" for label, p, n in classes)

        if len(self.per_class) <= most:
            return spell(self.per_class)
        seen = rated(self.per_class)
        if not seen:
            return f"each of the {len(self.per_class)} classes on fewer than {MIN_CLASS_ITEMS} items: too few to rank"
        few = len(self.per_class) - len(seen)
        ranked = spell(sorted(seen, key=lambda c: c[1])[:most])
        if not few:
            return f"lowest {min(most, len(seen))} of {len(self.per_class)}: {ranked}"
        return (f"lowest {min(most, len(seen))} of the {len(seen)} classes on {MIN_CLASS_ITEMS}+ items: {ranked}; "
                f"{few} on fewer")


def rated(per_class: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The classes whose rate rests on ``MIN_CLASS_ITEMS`` items or more."""
    return [c for c in per_class if c[2] >= MIN_CLASS_ITEMS - 1e-9]


@dataclasses.dataclass
class ReliabilitySummary:
    """The stored Dawid-Skene estimate as people read it (``status`` and the HTML report): what it rests on,
    each teacher's rates, and the caveats that apply."""

    method: str
    n_items: int
    n_known: int
    teachers: list[TeacherReliability]
    notes: list[str]


def reliability_summary(rel: Sequence[dict[str, Any]], cascade: Sequence[Any] | None = None) -> ReliabilitySummary | None:
    """``rel`` (the store's ``reliability()`` rows: one per teacher, true label and given label) summarized, or
    None when nothing rests on it yet (no item has answers of two teachers or a human review). Only the diagonal
    is kept: with many labels the full matrices are thousands of rows of priors."""
    if not rel or not rel[0]["n_items"]:
        return None
    r0 = rel[0]
    teachers: dict[str, TeacherReliability] = {}
    for r in rel:
        if r["true_label"] == r["given_label"]:
            t = teachers.setdefault(r["teacher"], TeacherReliability(r["teacher"], 0.0, [], None))
            t.per_class.append((r["true_label"], r["prob"], r["support"]))
            t.items += r["support"]
    for t in teachers.values():
        many = len(t.per_class) > SPELLED_CLASSES  # many labels: over the classes with items enough to rate
        over = rated(t.per_class) if many else t.per_class
        if t.items >= MIN_RELIABILITY_ITEMS and over:
            t.balanced = sum(p for _, p, _ in over) / len(over)
    shown = any(t.balanced is not None for t in teachers.values())
    notes = []
    if shown and not r0["n_known"] and len(teachers) == 2:
        notes.append("two teachers and no review: where they disagree nothing says which is right, so these rest on "
                     "agreement; reviewed items make them a measurement")
    if shown and cascade:
        first = cascade[0] if isinstance(cascade[0], str) else " and ".join(map(str, cascade[0]))
        notes.append(f"with the cascade these are the items {first} was unsure of, not a sample of the pool: the "
                     "rates understate it on the items it settled alone, most for the labels it is surest of")
    return ReliabilitySummary(r0["method"], r0["n_items"], r0["n_known"], list(teachers.values()), notes)


#: why there is no estimate yet, for ``status`` and the report
RELIABILITY_NOT_YET = ("not estimated yet (no item has answers of two teachers or a human review; a cascade asks its "
                       "next teacher only where the first is unsure)")
