"""Every registered reviewer passes the Reviewer contract: the automatic and simulated ones in process, Label
Studio on a real server (the labelstudio tier), the test playing the human through its API."""

from __future__ import annotations

import uuid

import pytest

from distilloop.annotators.review import AutoAcceptReviewer, SimulatedReviewer
from distilloop.core.types import Example
from distilloop.registry import REVIEWERS
from distilloop.storage.store import Store
from tests.contracts.reviewer import ReviewerContract


def _simulated(request):
    store = Store.memory()
    store._insert_examples([Example(f"ex{i}", {"text": f"t{i}"}, "pool", "negative", f"gold why {i}")
                            for i in range(4)])
    store.start_round(1, "random", [], [])
    r = SimulatedReviewer()
    r.attach(store)
    return r


def _label_studio(request):
    from distilloop.annotators.label_studio import LabelStudioReviewer
    from tests.labelstudio import KEY_ENV

    server = request.getfixturevalue("label_studio")
    request.getfixturevalue("monkeypatch").setenv(KEY_ENV, server.token)
    r = LabelStudioReviewer(url=server.url, api_key_env=KEY_ENV, project_title=f"contract-{uuid.uuid4().hex[:8]}")
    request.addfinalizer(r.close)
    return r


def _decides_by_itself(reviewer, example_id, label, rationale, external):
    return None


def _human_in_label_studio(reviewer, example_id, label, rationale, external):
    from tests.labelstudio import answer_task

    answer_task(reviewer.client(), int(external[example_id]), label, rationale)


#: (build the reviewer, make a decision available for an item) per registered reviewer
FACTORIES = {
    "auto": (lambda request: AutoAcceptReviewer(), _decides_by_itself),
    "simulated": (_simulated, _decides_by_itself),  # answers from gold by itself
    "label_studio": (_label_studio, _human_in_label_studio),
}
NEEDS_SERVER = {"label_studio"}


def test_every_registered_reviewer_has_a_contract_entry():
    assert set(FACTORIES) == set(REVIEWERS)


class TestEveryRegisteredReviewer(ReviewerContract):
    @pytest.fixture(params=[pytest.param(k, marks=[pytest.mark.labelstudio, pytest.mark.slow]) if k in NEEDS_SERVER
                            else k for k in sorted(REVIEWERS)])
    def kind(self, request):
        return request.param

    @pytest.fixture
    def reviewer(self, kind, request):
        return FACTORIES[kind][0](request)

    @pytest.fixture
    def answer(self, kind):
        return FACTORIES[kind][1]
