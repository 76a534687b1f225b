from distilloop.annotators.review import AutoAcceptReviewer
from tests.contracts.reviewer import pending_rows, review_item


class TestAutoAcceptReviewer:
    def test_accepts_the_ensemble_label_even_after_a_restart(self):
        item = review_item(1, "positive")
        first = AutoAcceptReviewer()
        first.submit([item])
        rows = pending_rows([item])
        fresh = AutoAcceptReviewer()  # a new process: only the store's consensus row is known
        [d] = fresh.collect(rows)
        assert (d.label, d.rationale, d.source) == ("positive", "teacher rationale", "auto")

    def test_items_without_a_valid_vote_stay_pending(self):
        item = review_item(2, None)
        r = AutoAcceptReviewer()
        r.submit([item])
        assert r.collect(pending_rows([item])) == []
