"""The per-round table (the learning curve: student accuracy against tokens and dollars spent) and the
campaign summary that ``distilloop run``, ``status`` and ``report`` print."""

from __future__ import annotations

from typing import Any

from distilloop.storage.store import Store


def round_rows(store: Store) -> list[dict[str, Any]]:
    """One row per round, spend and labels cumulative, agreement and student metrics of that round."""
    gold = {r["id"]: r["gold"] for r in store.db.query("select id, gold from examples where gold is not null")}
    students: dict[int, dict[str, Any]] = {}
    for student in store.students():
        students[student["round"]] = student
    rows = []
    cum_in = cum_out = 0
    cum_usd = 0.0
    for r in store.rounds():
        n = r["round"]
        spend = store.spent(n)
        cum_in += spend.tokens_in
        cum_out += spend.tokens_out
        cum_usd += spend.usd
        cons = list(store.db.query("select agreement, route from consensus where round = ?", [n]))
        labels = list(store.db.query("select example_id, label from labels where round <= ?", [n]))
        judged = [lab for lab in labels if lab["example_id"] in gold]
        label_acc = (sum(gold[lab["example_id"]] == lab["label"] for lab in judged) / len(judged)) if judged else None
        s: dict[str, Any] | None = students.get(n)
        rows.append({
            "round": n, "status": r["status"], "strategy": r["strategy"], "selected": r["n_selected"],
            "labeled": len(labels), "review": sum(1 for c in cons if c["route"] == "review"),
            "tokens_in": cum_in, "tokens_out": cum_out, "usd": cum_usd,
            "agreement": (sum(c["agreement"] for c in cons) / len(cons)) if cons else None,
            "label_acc": label_acc,
            "accuracy": s["metrics"].get("accuracy") if s else None,
            "macro_f1": s["metrics"].get("macro_f1") if s else None,
            "promoted": bool(s["promoted"]) if s else None,
        })
    return rows


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


COLUMNS = [("round", "round", ""), ("strategy", "strategy", ""), ("selected", "selected", ""),
           ("labeled", "labeled", ""), ("review", "to review", ""), ("tokens_in", "tokens in", ""),
           ("tokens_out", "tokens out", ""), ("usd", "USD", "usd"), ("agreement", "agreement", "pct"),
           ("label_acc", "label acc", "pct"), ("accuracy", "student acc", "pct"), ("promoted", "promoted", "")]


def rounds_table(rows: list[dict[str, Any]], title: str = "Rounds") -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for _, head, _kind in COLUMNS:
        table.add_column(head, justify="right")
    for row in rows:
        table.add_row(*(_fmt(row[key], kind) for key, _, kind in COLUMNS))
    return table


def summary(store: Store, caps: Any = None) -> dict[str, Any]:
    spent = store.spent()
    out: dict[str, Any] = {
        "name": store.get_meta("name"),
        "rounds": len(store.rounds()),
        "examples": {s: store.count("examples", "split = ?", [s]) for s in ("pool", "dev", "test")},
        "labeled": store.count("labels"),
        "labeled_by": {r["source"]: r["n"] for r in store.db.query(
            "select source, count(*) n from labels group by source")},
        "pending_reviews": store.count("review_queue", "status = 'pending'"),
        "calls": {r["status"]: r["n"] for r in store.db.query(
            "select status, count(*) n from teacher_calls group by status")},
        "spent": {"tokens_in": spent.tokens_in, "tokens_out": spent.tokens_out, "usd": round(spent.usd, 6)},
        "by_teacher": {k: v.__dict__ for k, v in store.spend_by_teacher().items()},
        "stop_reason": store.get_meta("stop_reason"),
    }
    active = store.active_student()
    out["active_student"] = ({"version": active["version"], "round": active["round"], "metrics": active["metrics"]}
                             if active else None)
    if caps is not None:
        out["caps"] = {"tokens_in": caps.tokens_in, "tokens_out": caps.tokens_out, "usd": caps.usd}
    return out
