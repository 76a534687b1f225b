import pytest

from distilloop.annotators.review import AutoAcceptReviewer
from tests.unit.annotators.review_contract import ReviewerContract, review_item


class TestAutoAcceptReviewer(ReviewerContract):
    @pytest.fixture
    def reviewer(self):
        return AutoAcceptReviewer()

    @pytest.fixture
    def answer(self):
        return lambda reviewer, example_id, label, rationale, external: None  # decides by itself

    def test_accepts_the_ensemble_label_even_after_a_restart(self):
        item = review_item(1, "positive")
        first = AutoAcceptReviewer()
        first.submit([item])
        rows = self.pending_rows([item])
        fresh = AutoAcceptReviewer()  # a new process: only the store's consensus row is known
        [d] = fresh.collect(rows)
        assert (d.label, d.rationale, d.source) == ("positive", "teacher rationale", "auto")

    def test_items_without_a_valid_vote_stay_pending(self):
        item = review_item(2, None)
        r = AutoAcceptReviewer()
        r.submit([item])
        assert r.collect(self.pending_rows([item])) == []
