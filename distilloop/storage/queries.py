"""Typed read models for the reports (``status``, ``report``, the HTML report, exports): what a campaign
did, round by round, teacher by teacher, computed from the store in one place."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from distilloop.core.types import Spend
from distilloop.storage.base import StoreBase, loads


@dataclass
class RoundRow:
    """One round of the learning curve: spend and labels cumulative, agreement and student of that round."""

    round: int
    status: str
    strategy: str
    selected: int
    labeled: int
    review: int
    tokens_in: int
    tokens_out: int
    usd: float
    agreement: float | None
    label_acc: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    promoted: bool | None = None
    student: str | None = None

    def _shown(self) -> tuple[str | None, dict[str, Any]]:
        """The reference the row reports on: the evaluation split's gold where the data has it (the flat
        metrics), else the one the campaign decided on."""
        if "accuracy" in self.metrics or "refs" not in self.metrics:
            refs = self.metrics.get("refs") or {}
            # the flat metrics are a copy of one reference's scores: every score matches (two references can tie
            # on accuracy, e.g. a student answering the majority label on dev and test splits of the same shares)
            name = next((n for n, sc in refs.items() if sc and all(self.metrics.get(k) == v for k, v in sc.items())),
                        None)
            return name, self.metrics
        name = self.metrics.get("reference")
        return name, (self.metrics.get("refs") or {}).get(name) or {}

    @property
    def accuracy(self) -> float | None:
        return self._shown()[1].get("accuracy")

    @property
    def macro_f1(self) -> float | None:
        return self._shown()[1].get("macro_f1")

    @property
    def reference(self) -> str | None:
        """The name of the reference ``accuracy`` is measured on (``gold:test``, ``teachers``, ``audit``...)."""
        return self._shown()[0] if self.student else None

    @property
    def baseline(self) -> float | None:
        """The majority-class baseline of that reference."""
        return self._shown()[1].get("baseline")

    @property
    def baseline_macro_f1(self) -> float | None:
        """The majority-class baseline's macro-F1 on that reference."""
        return self._shown()[1].get("baseline_macro_f1")

    def score(self, metric: str = "accuracy") -> float | None:
        """The student's score on ``metric`` (``accuracy`` or ``macro_f1``) on that reference."""
        return self._shown()[1].get(metric)


def unanimous(votes: list[dict[str, Any]]) -> bool:
    """Every teacher asked about the item gave a valid answer, and the same one (a cascade's first teacher, sure
    enough that no one else was asked, counts: no teacher it asked disagreed). A failed, refused or invalid answer
    is dissent."""
    return bool(votes) and all(v.get("valid", True) and v.get("label") is not None for v in votes) and \
        len({v["label"] for v in votes}) == 1


@dataclass
class AgreementRow:
    round: int
    items: int
    agreement: float | None
    unanimous: float | None
    entropy: float | None
    review: int
    accept: int
    consensus_acc: float | None


@dataclass
class TeacherStats:
    """A teacher's calls, invalid answers and errors, and its accuracy against gold where the item has gold,
    against the campaign's accepted label otherwise."""

    teacher: str
    calls: int = 0
    answered: int = 0
    invalid: int = 0
    errors: int = 0
    gold_n: int = 0
    gold_ok: int = 0
    acc_n: int = 0
    acc_ok: int = 0
    mean_confidence: float | None = None
    label_counts: dict[str, int] = field(default_factory=dict)

    @property
    def invalid_rate(self) -> float | None:
        return self.invalid / self.answered if self.answered else None

    @property
    def acc_gold(self) -> float | None:
        return self.gold_ok / self.gold_n if self.gold_n else None

    @property
    def acc_accepted(self) -> float | None:
        return self.acc_ok / self.acc_n if self.acc_n else None


@dataclass
class ReviewRow:
    round: int
    routed: int
    answered: int
    pending: int
    median_s: float | None
    by: dict[str, int]
    skipped: int = 0  # skipped by every reviewer where the reviewer counts that done (left out of training)


@dataclass
class HardItem:
    example_id: str
    round: int
    fields: dict[str, Any]
    gold: str | None
    label: str | None
    agreement: float | None
    entropy: float | None
    route: str | None
    accepted: str | None
    accepted_source: str | None
    votes: list[dict[str, Any]]
    reviews: list[dict[str, Any]]


class QueriesPart(StoreBase):
    def round_rows(self) -> list[RoundRow]:
        gold = {r["id"]: r["gold"] for r in self.db.query("select id, gold from examples where gold is not null")}
        students: dict[int, dict[str, Any]] = {}
        for st in self.db.query("select * from students order by created_at, round"):
            students[st["round"]] = st
        spend = {r["round"]: Spend(int(r["a"]), int(r["b"]), float(r["c"])) for r in self.db.query(
            "select round, sum(tokens_in) a, sum(tokens_out) b, sum(usd) c from ledger group by round")}
        # an item counts from the round that first selected it: a relabel round re-decides items of earlier
        # rounds (their label rows move to it), and the curve must still show what those rounds labeled
        first = {r["example_id"]: r["first"] for r in self.db.query(
            "select example_id, min(round) first from selections group by example_id")}
        labels = [(first.get(r["example_id"], r["round"]), r["example_id"], r["label"])
                  for r in self.db.query("select example_id, label, round from labels")]
        rows: list[RoundRow] = []
        total = spend.get(0, Spend())  # before round 1: the pilot and the evaluation set
        summaries = self._summaries()  # as each round finished (a later relabel may have moved its verdicts)
        for r in self.db.query("select * from rounds order by round"):
            n = r["round"]
            total = total + spend.get(n, Spend())
            review, agreement = summaries[n]["review"], summaries[n]["agreement"]
            upto = [(i, label) for rnd, i, label in labels if rnd <= n]
            judged = [gold[i] == label for i, label in upto if i in gold]
            s = students.get(n)
            rows.append(RoundRow(
                n, r["status"], r["strategy"], r["n_selected"], len(upto), review,
                total.tokens_in, total.tokens_out, total.usd, agreement,
                sum(judged) / len(judged) if judged else None,
                loads(s["metrics"], {}) if s else {}, bool(s["promoted"]) if s else None,
                s["version"] if s else None))
        return rows

    def round_summary(self, round_no: int) -> dict[str, Any]:
        """The round's verdicts as they stand (an :class:`AgreementRow`'s fields), kept on the round when it
        finishes: a later relabel round moves its items' verdicts to itself."""
        gold = {r["id"]: r["gold"] for r in self.db.query(
            "select e.id, e.gold from examples e join consensus c on c.example_id = e.id where c.round = ? and "
            "e.gold is not null", [round_no])}
        cons = list(self.db.query("select example_id, label, agreement, entropy, route, votes from consensus "
                                  "where round = ?", [round_no]))
        judged = [c for c in cons if c["example_id"] in gold and c["label"] is not None]
        n = len(cons)
        return {"items": n, "agreement": sum(c["agreement"] or 0 for c in cons) / n if n else None,
                "unanimous": sum(1 for c in cons if unanimous(loads(c["votes"], []))) / n if n else None,
                "entropy": sum(c["entropy"] or 0 for c in cons) / n if n else None,
                "review": sum(1 for c in cons if c["route"] == "review"),
                "accept": sum(1 for c in cons if c["route"] == "accept"),
                "consensus_acc": sum(gold[c["example_id"]] == c["label"] for c in judged) / len(judged)
                if judged else None}

    def _summaries(self) -> dict[int, dict[str, Any]]:
        """Every round's summary: as it finished where it was kept, else as its verdicts stand now."""
        return {r["round"]: loads(r.get("summary"), None) or self.round_summary(r["round"])
                for r in self.db.query("select * from rounds order by round")}

    def agreement_rows(self) -> list[AgreementRow]:
        return [AgreementRow(n, **summary) for n, summary in self._summaries().items()]

    def teacher_stats(self) -> list[TeacherStats]:
        gold = {r["id"]: r["gold"] for r in self.db.query("select id, gold from examples where gold is not null")}
        accepted = {r["example_id"]: r["label"] for r in self.db.query("select example_id, label from labels")}
        stats: dict[str, TeacherStats] = {}
        conf: dict[str, list[float]] = defaultdict(list)
        for r in self.db.query("select teacher, example_id, status, valid, label, confidence from teacher_calls "
                               "order by id"):
            s = stats.setdefault(r["teacher"], TeacherStats(r["teacher"]))
            s.calls += 1
            if r["status"] != "ok":
                s.errors += r["status"] not in ("in_flight", "submitted")
                continue
            s.answered += 1
            if not r["valid"] or r["label"] is None:
                s.invalid += 1
                continue
            s.label_counts[r["label"]] = s.label_counts.get(r["label"], 0) + 1
            if r["confidence"] is not None:
                conf[r["teacher"]].append(r["confidence"])
            if r["example_id"] in gold:
                s.gold_n += 1
                s.gold_ok += r["label"] == gold[r["example_id"]]
            elif r["example_id"] in accepted:
                s.acc_n += 1
                s.acc_ok += r["label"] == accepted[r["example_id"]]
        for name, s in stats.items():
            c = conf.get(name)
            s.mean_confidence = sum(c) / len(c) if c else None
        return sorted(stats.values(), key=lambda s: s.teacher)

    def review_rows(self) -> list[ReviewRow]:
        seconds: dict[int, list[float]] = defaultdict(list)
        sources: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in self.db.query("select q.round, v.seconds_spent, v.source from reviews v join review_queue q "
                               "on q.example_id = v.example_id"):
            sources[r["round"]][r["source"] or "?"] += 1
            if r["seconds_spent"] is not None:
                seconds[r["round"]].append(float(r["seconds_spent"]))
        out = []
        for r in self.db.query("select round, count(*) n, sum(status = 'done') done, sum(status = 'pending') pending, "
                               "sum(status = 'skipped') skipped from review_queue group by round order by round"):
            sec = seconds.get(r["round"], [])
            out.append(ReviewRow(r["round"], r["n"], int(r["done"] or 0), int(r["pending"] or 0),
                                 statistics.median(sec) if sec else None, dict(sources.get(r["round"], {})),
                                 int(r["skipped"] or 0)))
        return out

    def review_seconds(self) -> list[float]:
        return [float(r["seconds_spent"]) for r in self.db.query(
            "select seconds_spent from reviews where seconds_spent is not null")]

    def hardest_items(self, n: int) -> list[HardItem]:
        rows = self.db.query(
            "select c.*, e.fields, e.gold, l.label accepted, l.source accepted_source from consensus c "
            "join examples e on e.id = c.example_id left join labels l on l.example_id = c.example_id "
            "order by c.agreement asc, c.entropy desc, e.position limit ?", [n])
        out = []
        for r in list(rows):
            reviews = list(self.db.query("select * from reviews where example_id = ? order by id", [r["example_id"]]))
            out.append(HardItem(r["example_id"], r["round"], json.loads(r["fields"]), r["gold"], r["label"],
                                r["agreement"], r["entropy"], r["route"], r["accepted"], r["accepted_source"],
                                loads(r["votes"], []), reviews))
        return out
