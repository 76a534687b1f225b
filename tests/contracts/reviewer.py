"""The Reviewer contract: tests of every reviewer inherit this mixin and provide ``reviewer`` (a ready reviewer)
and ``answer(reviewer, example_id, label, rationale)`` (makes a decision available: a human's, or a no-op for
reviewers that decide by themselves)."""

from distilloop.core.types import ReviewDecision, ReviewItem, Verdict

LABELS = ("negative", "positive")


def review_item(i: int, label: str | None = "positive") -> ReviewItem:
    verdict = Verdict(label, {"negative": 0.5, "positive": 0.5}, 0.5, 0.69, 2, "teacher rationale", "majority",
                      [{"teacher": "a", "label": "positive", "confidence": 0.6, "rationale": "nice", "valid": True},
                       {"teacher": "b", "label": "negative", "confidence": 0.7, "rationale": "dull", "valid": True}])
    return ReviewItem(f"ex{i}", {"text": f"review text {i}"}, verdict, 1, LABELS)


def pending_rows(items):
    return [{"example_id": it.example_id, "round": 1, "status": "pending", "external_id": None,
             "consensus": {"label": it.verdict.label, "rationale": it.verdict.rationale}} for it in items]


class ReviewerContract:
    def test_submit_returns_an_entry_per_item(self, reviewer):
        items = [review_item(i) for i in range(3)]
        out = reviewer.submit(items)
        assert set(out) == {it.example_id for it in items}

    def test_decisions_are_for_submitted_items_with_labels_from_the_set(self, reviewer, answer):
        items = [review_item(i) for i in range(3)]
        external = reviewer.submit(items)
        answer(reviewer, items[0].example_id, "negative", "actually dull", external)
        rows = pending_rows(items)
        for row, it in zip(rows, items):
            row["external_id"] = external.get(it.example_id)
        decisions = reviewer.collect(rows)
        assert decisions, "an answered item must be collected"
        for d in decisions:
            assert isinstance(d, ReviewDecision)
            assert d.example_id in {it.example_id for it in items}
            assert d.label in LABELS and d.source and d.reviewer

    def test_collect_with_nothing_pending_returns_nothing(self, reviewer):
        assert reviewer.collect([]) == []
