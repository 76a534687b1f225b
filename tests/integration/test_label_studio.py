"""Human review against a real Label Studio server: the test plays the human through the API."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid

import pytest

from distilloop.annotators.label_studio import LabelStudioReviewer
from distilloop.errors import ReviewError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.loop.steps import train as train_step
from tests.conftest import replay_config
from tests.contracts.reviewer import review_item
from tests.labelstudio import KEY_ENV, answer_task

pytestmark = pytest.mark.labelstudio




@pytest.fixture
def ls_env(label_studio, monkeypatch):
    monkeypatch.setenv(KEY_ENV, label_studio.token)
    return label_studio



def test_import_is_idempotent_and_tasks_carry_every_rationale(ls_env):
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"idem-{uuid.uuid4().hex[:8]}")
    items = [review_item(i) for i in range(3)]
    first = r.submit(items)
    again = r.submit(items + [review_item(3)])
    assert {k: again[k] for k in first} == first
    tasks = list(r.client().tasks.list(project=r.project_id, fields="all"))
    assert len(tasks) == 4
    task = r.client().tasks.get(id=int(first["ex0"]))
    assert {t["rationale"] for t in task.data["teachers"]} == {"nice", "dull"}
    assert "nice" in task.data["teachers_html"] and "dull" in task.data["teachers_html"]
    [pred] = task.predictions
    assert pred.result[0]["value"]["choices"] == ["positive"]  # pre-filled with the ensemble's vote


def test_a_personal_access_token_works_as_the_api_key(ls_env, monkeypatch):
    """Label Studio's Access Token page gives a personal access token (a JWT refresh token) where legacy tokens
    are off, the default since 1.14: the reviewer takes it as the key (the SDK trades it for access tokens)."""
    import json
    import urllib.request

    req = urllib.request.Request(f"{ls_env.url}/api/token/", method="POST",
                                 headers={"Authorization": f"Token {ls_env.token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        pat = json.load(resp)["token"]
    assert pat.count(".") == 2 and pat != ls_env.token
    monkeypatch.setenv(KEY_ENV, pat)
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"pat-{uuid.uuid4().hex[:8]}")
    ids = r.submit([review_item(0)])
    answer_task(r.client(), int(ids["ex0"]), "negative")
    [done] = r.collect([{"example_id": "ex0", "external_id": ids["ex0"], "round": 1}])
    assert (done.example_id, done.label, done.source) == ("ex0", "negative", "human")
    monkeypatch.setenv(KEY_ENV, pat[:-4] + "AAAA")  # a PAT with a wrong signature is refused, said as a bad key
    with pytest.raises(ReviewError, match="refused the API key"):
        LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"pat-{uuid.uuid4().hex[:8]}"
                            ).submit([review_item(1)])


def polling_or_webhook(ls_env, monkeypatch, poll: bool, name: str) -> LabelStudioReviewer:
    """A reviewer on a project of its own that polls, or that hears from Label Studio's webhook alone."""
    monkeypatch.setenv("DISTILLOOP_TEST_SECRET", "s3cret-value")
    return LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"{name}-{uuid.uuid4().hex[:8]}",
                               poll=poll, webhook_port=None if poll else 0,
                               webhook_secret_env="DISTILLOOP_TEST_SECRET")


@pytest.mark.parametrize("poll", [True, False], ids=["polling", "webhook"])
def test_a_task_is_taken_once_it_has_the_annotations_its_project_asks_for(ls_env, monkeypatch, poll):
    """A project set (in Label Studio) to two annotators per task: one annotation leaves the item pending (before,
    the first reviewer's answer settled it and the second was never read); with both, both are collected, by
    polling and from the webhook alike."""
    import json
    import urllib.request

    r = polling_or_webhook(ls_env, monkeypatch, poll, "two")
    try:
        ids = r.submit([review_item(0)])
        r.client().projects.update(id=r.project_id, maximum_annotations=2)
        rows = [{"example_id": "ex0", "external_id": ids["ex0"], "round": 1}]
        answer_task(r.client(), int(ids["ex0"]), "negative")
        assert r.collect(rows) == [] and r.lost() == []
        name = uuid.uuid4().hex[:6]
        body = json.dumps({"username": f"second-{name}", "email": f"{name}@example.com",
                           "password": "second-reviewer-pw"}).encode()
        req = urllib.request.Request(f"{ls_env.url}/api/users/", data=body, method="POST", headers={
            "Authorization": f"Token {ls_env.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            second = json.load(resp)["id"]
        result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["positive"]}}]
        r.client().annotations.create(id=int(ids["ex0"]), result=result, completed_by=second)
        assert sorted(d.label for d in r.collect(rows)) == ["negative", "positive"]
    finally:
        r.close()


@pytest.mark.parametrize("poll", [True, False], ids=["polling", "webhook"])
def test_a_task_skipped_where_the_project_ignores_skipped_tasks_is_said_as_skipped(ls_env, monkeypatch, poll):
    """A reviewer presses Skip: with the project's default skip queue the task waits for another reviewer (the
    item stays pending); where the project ignores skipped tasks (Label Studio counts them done) the item was
    pending for ever, said to wait for a reviewer no one would be: it is reported as skipped, and an answer given
    there later is still taken."""
    r = polling_or_webhook(ls_env, monkeypatch, poll, "skip")
    try:
        ids = r.submit([review_item(0), review_item(1)])
        rows = [{"example_id": ex, "external_id": ids[ex], "round": 1} for ex in ("ex0", "ex1")]
        c = r.client()
        c.annotations.create(id=int(ids["ex0"]), result=[], was_cancelled=True, lead_time=2.0)
        assert (r.collect(rows), r.skipped()) == ([], [])  # requeued for others: it waits
        # Label Studio now counts ex0 done too, which a poll sees (a setting changed sends no webhook call)
        c.projects.update(id=r.project_id, skip_queue="IGNORE_SKIPPED")
        c.annotations.create(id=int(ids["ex1"]), result=[], was_cancelled=True, lead_time=2.0)
        assert (r.collect(rows), r.skipped()) == ([], ["ex0", "ex1"] if poll else ["ex1"])
        answer_task(c, int(ids["ex1"]), "positive")  # someone answers it after all
        [late] = r.collect(rows)
        assert (late.example_id, late.label, r.skipped()) == ("ex1", "positive", ["ex0"] if poll else [])
    finally:
        r.close()


@pytest.mark.parametrize("poll", [True, False], ids=["polling", "webhook"])
def test_an_annotation_changed_after_it_was_taken_comes_back_as_a_revision(ls_env, monkeypatch, poll):
    """An annotation edited in Label Studio after the campaign took it (a reviewer correcting a slip) was never
    read again: it comes back from `revised`, and one left unchanged does not."""
    r = polling_or_webhook(ls_env, monkeypatch, poll, "rev")
    try:
        ids = r.submit([review_item(0), review_item(1)])
        rows = [{"example_id": ex, "external_id": ids[ex], "round": 1} for ex in ("ex0", "ex1")]
        answer_task(r.client(), int(ids["ex0"]), "negative")
        answer_task(r.client(), int(ids["ex1"]), "negative")
        taken = r.collect(rows)
        assert sorted((d.example_id, d.label) for d in taken) == [("ex0", "negative"), ("ex1", "negative")]
        recorded = [{"example_id": d.example_id, "external_id": d.external_id, "ref": d.ref, "version": d.version}
                    for d in taken]
        assert all(x["ref"] and x["version"] for x in recorded)
        assert r.revised(recorded) == []
        [ann] = r.client().annotations.list(id=int(ids["ex1"]))
        r.client().annotations.update(id=ann.id, result=[
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["positive"]}},
            {"from_name": "rationale", "to_name": "text", "type": "textarea", "value": {"text": ["read it again"]}}])
        [again] = r.revised(recorded)
        assert (again.example_id, again.label, again.rationale, again.ref) == ("ex1", "positive", "read it again",
                                                                               str(ann.id))
        assert again.version != next(x["version"] for x in recorded if x["example_id"] == "ex1")
        assert r.retracted() == []
        [first] = r.client().annotations.list(id=int(ids["ex0"]))
        r.client().annotations.delete(id=first.id)  # a person takes an answer back
        r.revised(recorded)
        assert r.retracted() == ([("ex0", str(first.id))] if poll else [])  # (no webhook call says it)
    finally:
        r.close()


def test_a_labeling_config_people_rewrote_is_read_or_said_unreadable(ls_env):
    """A team replaces the project's labeling config with its own template: its answer control named "sentiment"
    gave no label, so every item waited for ever with its annotation in Label Studio. Its only choice control is
    the answer; with two, which one answers is not guessed, and the item is said as unreadable, not silent."""
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"own-{uuid.uuid4().hex[:8]}")
    ids = r.submit([review_item(0), review_item(1)])
    rows = [{"example_id": ex, "external_id": ids[ex], "round": 1} for ex in ("ex0", "ex1")]
    c = r.client()
    choices = '<Choice value="negative"/><Choice value="positive"/>'
    c.projects.update(id=r.project_id, label_config=(
        f'<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">{choices}</Choices>'
        '<Choices name="topic" toName="text"><Choice value="plot"/><Choice value="acting"/></Choices></View>'))
    r.submit([review_item(2)])  # a later push leaves the team's config as it is
    assert 'name="sentiment"' in c.projects.get(id=r.project_id).label_config

    def choose(task, **given):
        c.annotations.create(id=int(task), result=[{"from_name": name, "to_name": "text", "type": "choices",
                                                    "value": {"choices": [value]}} for name, value in given.items()])

    choose(ids["ex0"], sentiment="positive")
    choose(ids["ex1"], sentiment="negative", topic="plot")
    [d] = r.collect(rows)
    assert (d.example_id, d.label) == ("ex0", "positive")
    assert r.unread() == [("ex1", "its answer is in controls 'sentiment', 'topic': name the answer's control 'label'")]


def test_reviewers_read_the_campaigns_guideline_as_the_projects_instructions(ls_env):
    """Reviewers saw the item and the teachers' answers but never what the campaign asks (its task): the project's
    instructions (shown before the first task and behind Instructions) are the guideline, kept current when the
    task is edited, and instructions someone else wrote in the project are left alone."""
    import dataclasses

    first = "Label the review's sentiment. Sarcasm <b>counts</b> as negative."
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"guide-{uuid.uuid4().hex[:8]}")
    r.submit([dataclasses.replace(review_item(0), guideline=first)])
    project = r.client().projects.get(id=r.project_id)
    assert project.show_instruction is True
    assert "Sarcasm &lt;b&gt;counts&lt;/b&gt; as negative." in project.expert_instruction
    assert "Pick one of: negative, positive." in project.expert_instruction
    edited = "Label the review's sentiment. Mixed reviews: the verdict of the last sentence."
    r.submit([dataclasses.replace(review_item(1), guideline=edited)])
    assert "the verdict of the last sentence" in r.client().projects.get(id=r.project_id).expert_instruction
    r.client().projects.update(id=r.project_id, expert_instruction="<p>Our team's own rules.</p>")
    r.submit([dataclasses.replace(review_item(2), guideline=first)])
    assert r.client().projects.get(id=r.project_id).expert_instruction == "<p>Our team's own rules.</p>"


def test_a_label_the_guideline_added_joins_the_projects_choices(ls_env):
    """A running campaign that gains a label ("refund" beside "billing") reviews with it: the project made with
    the first label set gets the new choice, and what was annotated before stays."""
    from xml.etree import ElementTree

    title = f"grow-{uuid.uuid4().hex[:8]}"
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=title)
    first = r.submit([review_item(0)])
    answer_task(r.client(), int(first["ex0"]), "positive")

    def choices():
        config = r.client().projects.get(id=r.project_id).label_config
        return [c.get("value") for c in ElementTree.fromstring(config).iter("Choice")]

    assert choices() == ["negative", "positive"]
    again = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=title)  # the next run
    item = dataclasses.replace(review_item(1), labels=("negative", "positive", "mixed"))
    again.submit([item])
    assert again.project_id == r.project_id and choices() == ["negative", "positive", "mixed"]
    assert len(list(r.client().tasks.list(project=r.project_id))) == 2
    assert again.collect([{"example_id": "ex0", "external_id": first["ex0"]}])[0].label == "positive"


def test_html_in_rationales_is_escaped(ls_env):
    item = review_item(9)
    item.verdict.votes[0]["rationale"] = "<script>alert(1)</script> & <b>bold</b>"
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"esc-{uuid.uuid4().hex[:8]}")
    ext = r.submit([item])
    html = r.client().tasks.get(id=int(ext["ex9"])).data["teachers_html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp;" in html


def test_webhook_delivers_annotations_with_the_shared_secret(ls_env, monkeypatch):
    monkeypatch.setenv("DISTILLOOP_TEST_SECRET", "s3cret-value")
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"hook-{uuid.uuid4().hex[:8]}",
                            poll=False, webhook_port=0, webhook_secret_env="DISTILLOOP_TEST_SECRET")
    try:
        items = [review_item(i) for i in range(2)]
        ext = r.submit(items)
        rows = [{"example_id": k, "external_id": v, "round": 1} for k, v in ext.items()]
        assert r.collect(rows) == []  # nothing answered, and polling is off
        answer_task(r.client(), int(ext["ex1"]), "negative", "flat")
        [d] = r.collect(rows)  # delivered synchronously by the server to the listener
        assert (d.example_id, d.label, d.rationale, d.source) == ("ex1", "negative", "flat", "human")
        assert r._listener is not None and r._listener.received >= 1
    finally:
        r.close()


def test_numeric_answers_are_reviewed_with_a_number_input(ls_env):
    from distilloop.core.types import ReviewItem, Verdict

    verdict = Verdict("96", {"96": 0.5, "72": 0.5}, 0.5, 0.69, 2, "48 + 48 = 96", "majority",
                      [{"teacher": "a", "label": "96", "confidence": None, "rationale": "48 + 48 = 96", "valid": True},
                       {"teacher": "b", "label": "72", "confidence": None, "rationale": "48 + 24 = 72", "valid": True}])
    item = ReviewItem("m1", {"question": "48 clips in April, half as many in May: how many in all?"}, verdict, 1, (),
                      answer="number")
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=f"num-{uuid.uuid4().hex[:8]}")
    try:
        ext = r.submit([item])
        config = r.client().projects.get(id=r.project_id).label_config
        assert '<Number name="label"' in config and "<Choices" not in config
        task = r.client().tasks.get(id=int(ext["m1"]))
        assert task.predictions[0].result[0]["value"] == {"number": 96}  # pre-filled with the ensemble's vote
        result = [{"from_name": "label", "to_name": "text", "type": "number", "value": {"number": 72}},
                  {"from_name": "rationale", "to_name": "text", "type": "textarea",
                   "value": {"text": ["Half of 48 is 24; 48 + 24 = 72."]}}]
        r.client().annotations.create(id=int(ext["m1"]), result=result, lead_time=12.0)
        [d] = r.collect([{"example_id": "m1", "external_id": ext["m1"], "round": 1}])
        assert (d.label, d.rationale, d.source) == ("72", "Half of 48 is 24; 48 + 24 = 72.", "human")
    finally:
        r.close()


def test_unreachable_server_is_a_review_error(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "whatever")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = LabelStudioReviewer(url=f"http://127.0.0.1:{port}", api_key_env=KEY_ENV, timeout_s=2, max_retries=0)
    with pytest.raises(ReviewError, match="unreachable"):
        r.submit([review_item(0)])


def test_campaign_round_trip_through_label_studio(ls_env, tmp_path, monkeypatch):
    """Acceptance: low-agreement items land in Label Studio with every teacher's rationale; some are answered
    (one with a corrected rationale); the next round trains on the human labels and the corrected rationale;
    unanswered items stay pending and are not lost."""
    title = f"campaign-{uuid.uuid4().hex[:8]}"
    path = replay_config(tmp_path, extra=f'[review]\nkind = "label_studio"\nurl = "{ls_env.url}"\n'
                                         f'api_key_env = "{KEY_ENV}"\nproject_title = "{title}"\n')
    config = load_config(path)
    campaign = Campaign.open(config)
    try:
        campaign.run(max_rounds=1)
        queued = campaign.store.pending_reviews()
        assert len(queued) >= 3, "the fixture's noisy teachers disagree on several items"
        client = campaign.reviewer.client()
        project = client.projects.get(id=campaign.reviewer.project_id)  # reviewers read what the teachers were asked
        assert project.show_instruction and "Classify the sentiment." in project.expert_instruction
        for row in queued:
            cons = campaign.store.consensus(row["example_id"])
            assert cons["agreement"] < 0.7
            task = client.tasks.get(id=int(row["external_id"]))
            assert task.data["example_id"] == row["example_id"]
            shown = {t["teacher"]: t["rationale"] for t in task.data["teachers"]}
            assert set(shown) == {"a", "b", "c"}
            for vote in cons["votes"]:
                assert shown[vote["teacher"]] == vote["rationale"]
                assert vote["rationale"] is None or vote["rationale"] in task.data["teachers_html"] or \
                    "&" in vote["rationale"] or "<" in vote["rationale"]
        answered, open_ = queued[:2], queued[2:]
        gold = {r["example_id"]: campaign.store.example(r["example_id"]).gold for r in answered}
        answer_task(client, int(answered[0]["external_id"]), gold[answered[0]["example_id"]],
                    "A human wrote this corrected rationale.", lead_time=31.5)
        answer_task(client, int(answered[1]["external_id"]), gold[answered[1]["example_id"]])

        seen_at_training: dict[str, dict] = {}
        original_train = train_step.train

        def spy(env, round_no):
            seen_at_training.update({r["example_id"]: r for r in campaign.store.labeled()})
            return original_train(env, round_no)

        monkeypatch.setattr(train_step, "train", spy)
        campaign.run(max_rounds=1)
        assert [r["round"] for r in campaign.store.rounds()] == [1, 2]

        first, second = (seen_at_training[r["example_id"]] for r in answered)
        assert first["source"] == "human" and first["label"] == gold[answered[0]["example_id"]]
        assert first["rationale"] == "A human wrote this corrected rationale."
        assert second["source"] == "human" and second["rationale"]  # no correction: the teachers' rationale kept
        reviews = campaign.store.reviews(answered[0]["example_id"])
        assert reviews[-1]["seconds_spent"] == pytest.approx(31.5)
        assert reviews[-1]["reviewer"] == ls_env.username

        still = {r["example_id"] for r in campaign.store.pending_reviews()}
        assert {r["example_id"] for r in open_} <= still
        labeled = {r["example_id"] for r in campaign.store.labeled()}
        assert not ({r["example_id"] for r in open_} & labeled)
    finally:
        campaign.close()

    # a later process (new reviewer, same store) still finds the pending items and picks up a late answer
    campaign = Campaign.open(load_config(path))
    try:
        late = open_[0]
        answer_task(campaign.reviewer.client(), int(late["external_id"]), "positive", "late answer")
        assert campaign.pull_reviews(3) >= 1
        row = next(r for r in campaign.store.labeled() if r["example_id"] == late["example_id"])
        assert (row["label"], row["rationale"], row["source"]) == ("positive", "late answer", "human")
    finally:
        campaign.close()
    assert os.environ.get(KEY_ENV) == ls_env.token
    assert ls_env.token.encode() not in config.store_path.read_bytes()  # the key is never stored


def test_items_queued_while_the_server_was_down_are_pushed_later(ls_env, tmp_path, capsys):
    import socket

    from distilloop.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    title = f"push-{uuid.uuid4().hex[:8]}"
    review = (f'[review]\nkind = "label_studio"\nurl = "URL"\napi_key_env = "{KEY_ENV}"\n'
              f'project_title = "{title}"\nmax_retries = 0\ntimeout_s = 5\n')
    path = replay_config(tmp_path, extra=review.replace("URL", f"http://127.0.0.1:{dead}"),
                         rounds="max_rounds = 1\ninitial_size = 30\nbatch_size = 10\nconcurrency = 4")
    c = Campaign.open(load_config(path))
    c.run()
    queued = c.store.pending_reviews()
    c.close()
    assert queued and all(r["external_id"] is None for r in queued)
    path.write_text(path.read_text().replace(f"http://127.0.0.1:{dead}", ls_env.url))  # the server is back
    assert main(["review", "push", str(path)]) == 0
    assert f"pushed {len(queued)} pending item(s)" in capsys.readouterr().out
    assert main(["review", "push", str(path)]) == 0  # nothing left to push, nothing imported twice
    assert "pushed 0" in capsys.readouterr().out
    from distilloop.storage.store import Store

    store = Store.open(load_config(path).store_path)
    rows = store.pending_reviews()
    project = store.get_meta("label_studio_project_id")
    store.close()
    assert all(r["external_id"] for r in rows)
    r = LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_id=project)
    assert len(list(r.client().tasks.list(project=project))) == len(queued)
    answer_task(r.client(), int(rows[0]["external_id"]), "negative", "pulled by hand")
    assert main(["review", "pull", str(path)]) == 0
    assert f"pulled 1 review(s); {len(queued) - 1} still pending" in capsys.readouterr().out
    # the reviewer corrects a slip after the item was taken: the next pull reads it and says so
    [ann] = r.client().annotations.list(id=int(rows[0]["external_id"]))
    r.client().annotations.update(id=ann.id, result=[{"from_name": "label", "to_name": "text", "type": "choices",
                                                      "value": {"choices": ["positive"]}}])
    assert main(["review", "pull", str(path)]) == 0
    out = capsys.readouterr().out
    assert (f"1 review(s) changed in label_studio after their items were taken: 1 label(s) now differ "
            f"({rows[0]['example_id']}: negative -> positive); the next student trains on them") in out
    assert f"pulled 1 review(s); {len(queued) - 1} still pending" in out
    assert main(["review", "pull", str(path)]) == 0
    assert f"pulled 0 review(s); {len(queued) - 1} still pending" in capsys.readouterr().out
    store = Store.open(load_config(path).store_path)
    label = next(x for x in store.labeled() if x["example_id"] == rows[0]["example_id"])
    people = [x for x in store.reviews(rows[0]["example_id"]) if x["source"] == "human"]
    store.close()
    assert (label["label"], label["source"], [x["label"] for x in people]) == ("positive", "human", ["positive"])
    # the reviewer deletes the answer: the item waits for a reviewer again, untrained on, and a new answer decides it
    r.client().annotations.delete(id=ann.id)
    assert main(["review", "pull", str(path)]) == 0
    out = capsys.readouterr().out
    assert (f"1 review(s) deleted in label_studio after their items were taken: 1 item(s) lost every review "
            f"({rows[0]['example_id']}) and wait for a reviewer again, untrained on") in out
    assert f"pulled 1 review(s); {len(queued)} still pending" in out
    answer_task(r.client(), int(rows[0]["external_id"]), "negative", "second thoughts")
    assert main(["review", "pull", str(path)]) == 0
    assert f"pulled 1 review(s); {len(queued) - 1} still pending" in capsys.readouterr().out
    store = Store.open(load_config(path).store_path)
    label = next(x for x in store.labeled() if x["example_id"] == rows[0]["example_id"])
    people = [x["label"] for x in store.reviews(rows[0]["example_id"]) if x["source"] == "human"]
    store.close()
    assert (label["label"], label["rationale"], people) == ("negative", "second thoughts", ["negative"])


def test_items_whose_project_was_deleted_in_label_studio_are_sent_again(ls_env, tmp_path, capsys):
    """The campaign's project deleted in Label Studio (by hand, or the server's data reset): `review pull` failed
    with "HTTP 404 No Task matches the given query" on every try, and the items could never be reviewed. The
    items whose task is gone are queued again, and the next push makes the project anew and sends them."""
    from distilloop.cli import main
    from distilloop.storage.store import Store

    title = f"gone-{uuid.uuid4().hex[:8]}"
    path = replay_config(tmp_path, extra=f'[review]\nkind = "label_studio"\nurl = "{ls_env.url}"\n'
                                         f'api_key_env = "{KEY_ENV}"\nproject_title = "{title}"\n',
                         rounds="max_rounds = 1\ninitial_size = 30\nbatch_size = 10\nconcurrency = 4")
    c = Campaign.open(load_config(path))
    c.run()
    queued = c.store.pending_reviews()
    old = int(c.store.get_meta("label_studio_project_id"))
    client = c.reviewer.client()
    c.close()
    assert queued and all(r["external_id"] for r in queued)
    client.projects.delete(id=old)
    assert main(["review", "pull", str(path)]) == 0
    out = capsys.readouterr()
    assert f"pulled 0 review(s); {len(queued)} still pending" in out.out
    assert f"warning: {len(queued)} item(s) sent for review are no longer in label_studio" in " ".join(out.err.split())
    assert main(["review", "push", str(path)]) == 0
    assert f"pushed {len(queued)} pending item(s)" in capsys.readouterr().out
    store = Store.open(load_config(path).store_path)
    rows, new = store.pending_reviews(), int(store.get_meta("label_studio_project_id"))
    store.close()
    assert new != old and len(list(client.tasks.list(project=new))) == len(queued)
    # a task id that now names another item's task (a reset server numbers its tasks anew): that item's review
    # is never taken for this one
    store = Store.open(load_config(path).store_path)
    store.set_review_external_id(rows[1]["example_id"], "label_studio", rows[0]["external_id"])
    store.close()
    answer_task(client, int(rows[0]["external_id"]), "negative", "after the reset")
    assert main(["review", "pull", str(path)]) == 0
    out = capsys.readouterr()
    assert f"pulled 1 review(s); {len(queued) - 1} still pending" in out.out
    assert "warning: 1 item(s) sent for review are no longer in label_studio" in " ".join(out.err.split())
    store = Store.open(load_config(path).store_path)
    labeled = {r["example_id"]: r for r in store.labeled()}
    assert labeled[rows[0]["example_id"]]["source"] == "human"
    assert labeled.get(rows[1]["example_id"], {}).get("source") != "human"
    assert next(r for r in store.pending_reviews() if r["example_id"] == rows[1]["example_id"])["external_id"] is None
    store.close()
    # a project named in the campaign file that does not exist is said so, not created
    path.write_text(path.read_text().replace(f'project_title = "{title}"', f"project_id = {old}"))
    store = Store.open(load_config(path).store_path)
    store.set_review_external_id(rows[1]["example_id"], "label_studio", None)
    store.close()
    assert main(["review", "push", str(path)]) == 1
    assert f"has no project {old} ([review] project_id)" in capsys.readouterr().err


def test_an_item_re_asked_under_a_new_guideline_is_reviewed_anew(ls_env, tmp_path, capsys):
    """`relabel --include-reviewed` after the guideline changed: an item the teachers still split on went back to
    its old task, whose annotation (made under the old guideline) was taken at once as a new review, counted twice
    in reviewer agreement (kappa 1.0 between a person and herself). It gets a task of its own, waits for a person,
    and the new answer decides it."""
    from distilloop.cli import main
    from distilloop.storage.store import Store

    path = replay_config(tmp_path, extra=f'[review]\nkind = "label_studio"\nurl = "{ls_env.url}"\n'
                                         f'api_key_env = "{KEY_ENV}"\nproject_title = "anew-{uuid.uuid4().hex[:8]}"\n',
                         rounds="max_rounds = 1\ninitial_size = 30\nbatch_size = 10\nconcurrency = 4")
    c = Campaign.open(load_config(path))
    c.run()
    first = c.store.pending_reviews()[0]
    client = c.reviewer.client()
    c.close()
    answer_task(client, int(first["external_id"]), "negative", "under the first guideline")
    assert main(["review", "pull", str(path)]) == 0
    capsys.readouterr()
    path.write_text(path.read_text().replace('task = "Classify the sentiment."',
                                             'task = "Classify the sentiment. Irony counts as negative."'))
    ids = tmp_path / "ids.txt"
    ids.write_text(first["example_id"] + "\n")
    assert main(["relabel", str(path), "--ids", str(ids), "--include-reviewed", "-q"]) == 0
    assert "1 waiting for review" in capsys.readouterr().out
    store = Store.open(load_config(path).store_path)
    [again] = [r for r in store.pending_reviews() if r["example_id"] == first["example_id"]]
    assert again["external_id"] != first["external_id"]  # a task of its own
    assert len([r for r in store.reviews(first["example_id"]) if r["source"] == "human"]) == 1  # not taken twice
    store.close()
    task = client.tasks.get(id=int(again["external_id"]))
    assert task.data["example_id"] == first["example_id"] and not task.annotations
    answer_task(client, int(again["external_id"]), "positive", "read under the new guideline")
    assert main(["review", "pull", str(path)]) == 0
    store = Store.open(load_config(path).store_path)
    label = next(r for r in store.labeled() if r["example_id"] == first["example_id"])
    people = [r["label"] for r in store.reviews(first["example_id"]) if r["source"] == "human"]
    store.close()
    assert (label["label"], label["rationale"], people) == ("positive", "read under the new guideline",
                                                            ["negative", "positive"])
    capsys.readouterr()
    assert main(["review", "status", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kappa"] is None  # one person's two answers are not agreement


def test_two_campaigns_on_one_server_never_share_reviews(ls_env, tmp_path):
    """Two campaigns on the same data and the same Label Studio: each gets its own project by default, and even in
    one shared project each sees only its own tasks and its own reviewers' answers."""
    from distilloop.core.types import Example
    from distilloop.storage.store import Store
    from tests.contracts.reviewer import pending_rows

    stores = [Store.create(tmp_path / f"{n}.db", [Example(f"ex{i}", {"text": "t"}) for i in range(2)], {"name": n})
              for n in ("first", "second")]
    items = [review_item(i) for i in range(2)]
    try:
        a, b = (LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV) for _ in stores)
        a.attach(stores[0])
        b.attach(stores[1])
        assert a.project_title != b.project_title and a.project_title.startswith("distilloop first")
        a.submit(items), b.submit(items)
        assert a.project_id != b.project_id
        shared = f"shared-{uuid.uuid4().hex[:8]}"
        a2, b2 = (LabelStudioReviewer(url=ls_env.url, api_key_env=KEY_ENV, project_title=shared) for _ in stores)
        a2.attach(stores[0])
        b2.attach(stores[1])
        ext_a, ext_b = a2.submit(items), b2.submit(items)
        assert a2.project_id == b2.project_id and set(ext_a.values()).isdisjoint(ext_b.values())
        answer_task(a2.client(), int(ext_a["ex0"]), "negative", "a person of the first campaign")
        rows_b = [{**r, "external_id": ext_b[r["example_id"]]} for r in pending_rows(items)]
        assert b2.collect(rows_b) == []  # the second campaign never receives the first one's human label
        rows_a = [{**r, "external_id": ext_a[r["example_id"]]} for r in pending_rows(items)]
        assert [d.label for d in a2.collect(rows_a)] == ["negative"]
    finally:
        for s in stores:
            s.close()
