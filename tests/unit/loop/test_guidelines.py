"""Guideline versions: editing the task (or a prompt, or the teachers) is a new version the campaign goes on under;
every answer and label records its version; knobs that change no answer change freely; a label added is a new
version, a label removed, the answer kind and the input fields are refused with the reason and the way out."""

import json

import pytest

from distilloop.errors import ConfigError
from distilloop.loop import guidelines
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.testing.fake_api import FakeLLMAPI, serve
from tests.conftest import FIXTURES, campaign_toml, replay_config
from tests.unit.loop.living_helpers import cli, edit, one_line_error

ROUNDS = "max_rounds = 1\ninitial_size = 20\nbatch_size = 20\nconcurrency = 4"
KEY = "sk-guideline-test-key-0123456789"


def run(cfg):
    campaign = Campaign.open(load_config(cfg))
    try:
        return campaign.run(), campaign.store.guidelines()
    finally:
        campaign.close()


def edited_second_round(tmp_path, old, new):
    """A one-round campaign on replay teachers, its file edited (``old`` to ``new``), run for a second round:
    the campaign file, the stop reason and the guideline versions."""
    cfg = replay_config(tmp_path, rounds=ROUNDS)
    assert run(cfg)[0].startswith("max rounds")
    edit(cfg, old, new)
    edit(cfg, "max_rounds = 1", "max_rounds = 2")
    reason, versions = run(cfg)
    assert reason.startswith("max rounds reached (2)")
    return cfg, versions


def test_editing_the_task_is_a_new_guideline_version_and_the_campaign_continues(tmp_path):
    cfg, versions = edited_second_round(tmp_path, 'task = "Classify the sentiment."',
                                        'task = "Is the critic recommending the film?"')
    assert [(v["version"], v["changes"]) for v in versions] == [(1, "first guideline"), (2, "task edited")]
    assert versions[1]["task"] == "Is the critic recommending the film?"
    campaign = Campaign.open(load_config(cfg))
    try:
        store = campaign.store
        round_of = {c["example_id"]: c["round"] for c in store.consensus_rows()}
        states = store.label_states()
        assert {s.guideline for s in states if round_of[s.example_id] == 1} == {1}
        assert {s.guideline for s in states if round_of[s.example_id] == 2} == {2}
        calls = store.calls()
        by_round = {c.round for c in calls}
        assert by_round == {1, 2}
    finally:
        campaign.close()
    status = json.loads(cli("status", "--json", cfg).stdout)
    g = status["guidelines"]
    assert g["current"] == 2 and g["stale_labels"] == 20 and [v["labels"] for v in g["versions"]] == [20, 20]
    text = cli("status", cfg).stdout
    assert "guideline: version 2 (task edited); labels by guideline: v1 20, v2 20; stale: 20" in text
    from distilloop.reports.html import render_html
    from distilloop.storage.store import Store

    store = Store.open(tmp_path / "t.distilloop.db")
    try:
        html = render_html(store)
    finally:
        store.close()
    assert 'id="guidelines-table"' in html and "Guideline version 2; 20 accepted label(s) were made under an older" in html
    assert "<td>guideline version</td><td>2</td>" in html
    out = tmp_path / "x.jsonl"
    assert cli("export", cfg, "-o", out).returncode == 0
    assert sorted({json.loads(x)["provenance"]["guideline"] for x in out.read_text().splitlines()}) == [1, 2]


def test_status_says_an_edited_guideline_before_it_is_recorded(tmp_path):
    """A user edits the task, then asks `status` what that does: it said "version 1 (first guideline); stale: 0",
    as if nothing had changed, until the next run recorded version 2. It now says the edit and what it will do;
    the store is not written (a status never is), and once recorded the line goes."""
    cfg = replay_config(tmp_path, rounds=ROUNDS)
    run(cfg)
    assert "guideline edited" not in cli("status", cfg).stdout
    edit(cfg, 'task = "Classify the sentiment."', 'task = "Is the critic recommending the film?"')
    text = " ".join(cli("status", cfg).stdout.split())
    assert ("guideline edited: the campaign file differs from version 1 (task edited); it becomes version 2 at the "
            "next run or relabel, and the 20 label(s) made so far stale") in text
    g = json.loads(cli("status", "--json", cfg).stdout)["guidelines"]
    assert (g["current"], g["pending"], g["stale_labels"]) == (1, "task edited", 0)
    edit(cfg, "max_rounds = 1", "max_rounds = 2")
    run(cfg)
    g = json.loads(cli("status", "--json", cfg).stdout)["guidelines"]
    assert (g["current"], g["pending"], g["stale_labels"]) == (2, None, 20)


@pytest.mark.parametrize("change", ["prompt", "prompt_options", "add", "remove"])
def test_a_prompt_style_its_options_or_the_teachers_make_a_new_version(tmp_path, change):
    cfg = replay_config(tmp_path, rounds=ROUNDS)
    before = guidelines.guideline_of(load_config(cfg).raw)
    if change == "prompt":
        edit(cfg, 'source = "a"', 'source = "a"\nprompt = "teacher_priming"')
        expect = "teacher a: prompt changed"
    elif change == "prompt_options":
        edit(cfg, 'source = "a"', 'source = "a"\nprompt_options = {examples = []}')
        expect = "teacher a: prompt_options changed"
    elif change == "add":
        edit(cfg, "[routing]", '[[teachers]]\nname = "d"\nkind = "replay"\nmodel = "gpt-4o-mini"\n'
                               f'path = "{tmp_path}/x.jsonl"\nsource = "a"\n[routing]')
        expect = "teacher d added"
    else:
        text = cfg.read_text()
        start = text.index('[[teachers]]\nname = "c"')
        cfg.write_text(text[:start] + text[text.index("[routing]"):])
        expect = "teacher c removed"
    after = guidelines.guideline_of(load_config(cfg).raw)
    assert after.hash != before.hash and guidelines.changes(before, after) == expect


def test_writing_out_a_default_or_changing_a_knob_that_changes_no_answer_is_no_new_version():
    base = {"campaign": {"task": "T"}, "teachers": [
        {"name": "gpt", "kind": "openai", "model": "gpt-4o-mini", "base_url": "http://x/v1"},
        {"name": "r", "kind": "replay", "model": "m", "path": "p.jsonl"}]}
    knobs = {"requests_per_minute": 30, "tokens_per_minute": 1000, "max_concurrency": 2, "timeout_s": 5.0,
             "price": {"input": 1.0, "output": 2.0}, "batch_poll_s": 1.0, "batch_wait_s": 60.0, "mode": "batch",
             "api_key_env": "MY_KEY", "prompt": "zero_shot_rationale", "temperature": 0.0,
             "base_url": "http://gateway/v1", "store": True, "max_tokens_param": "max_completion_tokens"}
    tuned = json.loads(json.dumps(base))
    tuned["teachers"][0].update(knobs)
    tuned["teachers"][1].update(latency_s=0.5, price={"input": 0.0, "output": 0.0})
    assert guidelines.guideline_of(tuned).hash == guidelines.guideline_of(base).hash
    tuned["teachers"][0]["temperature"] = 0.7  # sampling changes the answers
    assert guidelines.guideline_of(tuned).hash != guidelines.guideline_of(base).hash


def test_a_server_moved_or_a_replica_added_is_no_new_version(tmp_path, monkeypatch):
    """Moving a teacher to another server, or adding a replica to its base_urls for throughput, was a new guideline
    version ("teacher gpt: base_url changed") and every earlier label stale; `model` names what answers. A store
    whose versions were recorded with the server in them is not given a new version for it either."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with serve(FakeLLMAPI(api_key=KEY)) as one, serve(FakeLLMAPI(api_key=KEY)) as two:
        cfg = tmp_path / "campaign.toml"
        cfg.write_text(campaign_toml(
            name="moved", rounds="max_rounds = 1\ninitial_size = 10\nbatch_size = 10",
            extra=f'[[teachers]]\nname = "gpt"\nkind = "openai_compatible"\nmodel = "qwen"\n'
                  f'base_url = "{one.openai_url}"\napi_key_env = "OPENAI_API_KEY"\n'))
        assert run(cfg)[0].startswith("max rounds")
        edit(cfg, f'base_url = "{one.openai_url}"', f'base_urls = ["{one.openai_url}", "{two.openai_url}"]')
        edit(cfg, "max_rounds = 1", "max_rounds = 2")
        reason, versions = run(cfg)
        assert reason.startswith("max rounds reached (2)") and [v["version"] for v in versions] == [1]
        # a version recorded by an earlier distilloop, the server among its settings
        from distilloop.storage.store import Store

        store = Store.open(load_config(cfg).store_path)
        store.db.execute("update guidelines set teachers = ?",
                         [json.dumps({"gpt": {"kind": "openai_compatible", "model": "qwen", "base_url": "x"}})])
        store.db.conn.commit()
        store.close()
        edit(cfg, "max_rounds = 2", "max_rounds = 3")
        reason, versions = run(cfg)
        assert reason.startswith("max rounds reached (3)") and [v["version"] for v in versions] == [1]
        edit(cfg, 'model = "qwen"', 'model = "qwen-2"')  # other weights: a new version
        edit(cfg, "max_rounds = 3", "max_rounds = 4")
        reason, versions = run(cfg)
        assert [v["changes"] for v in versions] == ["first guideline", "teacher gpt: model changed"]


def test_rate_limits_prices_and_latency_change_between_runs_without_blocking_the_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with serve(FakeLLMAPI(api_key=KEY)) as server:
        cfg = tmp_path / "campaign.toml"
        teachers = (f'[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\n'
                    f'base_url = "{server.openai_url}"\nrequests_per_minute = 600\n'
                    'price = {input = 0.15, output = 0.6}\n'
                    f'[[teachers]]\nname = "r"\nkind = "replay"\nmodel = "gpt-4o-mini"\n'
                    f'path = "{FIXTURES / "rt_tiny_replay.jsonl.gz"}"\nsource = "a"\nlatency_s = 0.0\n')
        cfg.write_text(campaign_toml(name="knobs", rounds="max_rounds = 1\ninitial_size = 10\nbatch_size = 10",
                                     extra=teachers))
        assert run(cfg)[0].startswith("max rounds")
        edit(cfg, "requests_per_minute = 600", "requests_per_minute = 30\ntimeout_s = 10.0")
        edit(cfg, "price = {input = 0.15, output = 0.6}", "price = {input = 0.3, output = 1.2}")
        edit(cfg, "latency_s = 0.0", "latency_s = 0.01")
        edit(cfg, "max_rounds = 1", "max_rounds = 2")
        reason, versions = run(cfg)
    assert reason.startswith("max rounds reached (2)") and [v["version"] for v in versions] == [1]


@pytest.mark.parametrize("old,new,match", [
    ('labels = ["negative", "positive"]', 'labels = ["neg", "pos"]',
     r"campaign.labels: 'negative', 'positive' removed from \['negative', 'positive'\], but a running campaign can "
     r"gain labels, never lose one .*put it back, or start a new campaign"),
    ('labels = ["negative", "positive"]', 'labels = ["positive", "mixed"]', r"campaign.labels: 'negative' removed"),
    ('task = "Classify the sentiment."', 'task = "Classify the sentiment."\nanswer = "number"\nlabels = []',
     r"campaign.answer: changed from 'label' to 'number'"),
    ("[data]", '[data]\ninput_fields = ["question"]', r"data.input_fields: changed from \['text'\] to \['question'\]"),
])
def test_what_a_running_campaign_is_made_of_cannot_change(tmp_path, old, new, match):
    cfg = replay_config(tmp_path, rounds=ROUNDS)
    assert run(cfg)[0].startswith("max rounds")
    text = cfg.read_text()
    if "answer" in new:
        text = text.replace('labels = ["negative", "positive"]\n', "")
    cfg.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError):
        Campaign.open(load_config(cfg))
    one_line_error(cli("run", cfg), match)


def test_a_label_added_to_a_running_campaign_is_a_new_guideline_version(tmp_path):
    """A revised guideline with a new category ("mixed" beside negative and positive) was refused: the label set
    was fixed at the start. It is now a new version; the next rounds ask with the new label set and train on
    it, the earlier labels are stale (relabel re-asks them), and a label that is gone is still refused."""
    cfg, versions = edited_second_round(tmp_path, 'labels = ["negative", "positive"]',
                                        'labels = ["negative", "positive", "mixed"]')
    assert [(v["version"], v["changes"]) for v in versions] == [(1, "first guideline"), (2, "labels added: mixed")]
    campaign = Campaign.open(load_config(cfg))
    try:
        store = campaign.store
        assert store.get_meta("labels") == ["negative", "positive", "mixed"]
        from distilloop.students.base import Student

        newest = store.students()[-1]
        assert newest["round"] == 2
        assert Student.load(newest["path"]).classes_ == ["negative", "positive", "mixed"]  # it can answer "mixed"
        round_of = {c["example_id"]: c["round"] for c in store.consensus_rows()}
        assert {s.guideline for s in store.label_states() if round_of[s.example_id] == 2} == {2}
    finally:
        campaign.close()
    text = " ".join(cli("status", cfg).stdout.split())
    assert "guideline: version 2 (labels added: mixed); labels by guideline: v1 20, v2 20; stale: 20" in text
    dry = cli("relabel", "--stale", "--dry-run", cfg)
    assert dry.returncode == 0 and "20" in dry.stdout, dry.stderr
    again = run(cfg)[1]  # the same file again: no new version
    assert [v["version"] for v in again] == [1, 2]
    edit(cfg, 'labels = ["negative", "positive", "mixed"]', 'labels = ["negative", "positive"]')
    one_line_error(cli("run", cfg), r"campaign.labels: 'mixed' removed from \['negative', 'positive', 'mixed'\]")


def test_the_teachers_held_out_set_is_labeled_again_when_the_label_set_grows(tmp_path):
    """Without gold, students are judged on a held-out set the teachers labeled: labeled with the first label set,
    it can never say "mixed", so a student that learnt the new label would be judged wrong wherever it uses it.
    It is asked again before the next round (charged to that round, not to the past rounds' figures), and the
    active student is scored again on the new labels before any comparison."""
    cfg = replay_config(tmp_path, rounds=ROUNDS, extra='[evaluation]\nreference = "teachers"\nheldout_size = 12\n')
    assert run(cfg)[0].startswith("max rounds")
    before = json.loads(cli("status", "--json", cfg).stdout)["rounds_table"][0]
    edit(cfg, 'labels = ["negative", "positive"]', 'labels = ["negative", "positive", "mixed"]')
    edit(cfg, "max_rounds = 1", "max_rounds = 2")
    proc = cli("run", cfg)
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "the label set grew (mixed): the teachers label the 12 held-out items again" in said
    status = json.loads(cli("status", "--json", cfg).stdout)
    assert status["rounds_table"][0]["tokens_in"] == before["tokens_in"]  # round 1 as it was
    campaign = Campaign.open(load_config(cfg))
    try:
        store = campaign.store
        held = set(store.reference_ids("teachers"))
        assert len(held) == 12 and set(store.reference_labels("teachers")) == held
        assert {c.round for c in store.calls() if c.example_id in held} == {0, 2}  # asked at the start, then again
        assert store.get_meta("heldout_labels") == ["negative", "positive", "mixed"]
        from distilloop.loop import references

        ref = references.available(store, campaign.env.examples)["teachers"]
        newest = store.students()[-1]
        assert newest["metrics"]["refs"]["teachers"]["labels_sha"] == references.labels_sha(ref)
    finally:
        campaign.close()
    again = cli("run", cfg)  # nothing grew since: not asked a third time
    assert again.returncode == 0 and "held-out items again" not in again.stderr


def test_the_teachers_held_out_set_is_labeled_again_under_an_edited_task(tmp_path):
    """A campaign without gold judges its students on a held-out set the teachers labeled; after the task was
    edited (a revised guideline) that set kept the old guideline's labels, so students trained on the new labels
    were judged by the old ones. It is labeled again before the next round, in the estimate first."""
    from distilloop.loop.estimate import estimate_campaign

    cfg = replay_config(tmp_path, rounds=ROUNDS, extra='[evaluation]\nreference = "teachers"\nheldout_size = 12\n')
    assert run(cfg)[0].startswith("max rounds")
    edit(cfg, 'task = "Classify the sentiment."', 'task = "Is the critic recommending the film?"')
    edit(cfg, "max_rounds = 1", "max_rounds = 2")
    assert estimate_campaign(load_config(cfg)).reference_items == 12
    proc = cli("run", cfg)
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert ("the guideline changed (version 2: task edited): the teachers label the 12 held-out items again "
            "(answers whose request is unchanged are reused)") in said
    campaign = Campaign.open(load_config(cfg))
    try:
        held = set(campaign.store.reference_ids("teachers"))
        assert {c.round for c in campaign.store.calls() if c.example_id in held} == {0, 2}
        assert campaign.store.get_meta("heldout_guideline") == 2
    finally:
        campaign.close()
    assert estimate_campaign(load_config(cfg)).reference_items == 0
    edit(cfg, "max_rounds = 2", "max_rounds = 3")
    again = cli("run", cfg)  # the same guideline: not asked a third time
    assert again.returncode == 0 and "held-out items again" not in again.stderr


def test_a_relabel_after_an_edited_task_labels_the_held_out_set_first(tmp_path):
    """`relabel --stale` (the documented next step after an edit) trains a student and decides on it, on the
    held-out set: that set is labeled under the new guideline first (charged to the relabel round), and the dry
    run says so."""
    cfg = replay_config(tmp_path, rounds=ROUNDS, extra='[evaluation]\nreference = "teachers"\nheldout_size = 12\n')
    assert run(cfg)[0].startswith("max rounds")
    edit(cfg, 'task = "Classify the sentiment."', 'task = "Is the critic recommending the film?"')
    dry = cli("relabel", "--stale", "--dry-run", cfg)
    assert dry.returncode == 0, dry.stderr
    assert "first, the teachers label the 12 items of the held-out set again" in " ".join(dry.stdout.split())
    done = cli("relabel", "--stale", "-q", cfg)
    assert done.returncode == 0, done.stderr
    campaign = Campaign.open(load_config(cfg))
    try:
        held = set(campaign.store.reference_ids("teachers"))
        relabel_round = campaign.store.rounds()[-1]
        assert relabel_round["strategy"] == "relabel" and relabel_round["round"] == 2
        assert {c.round for c in campaign.store.calls() if c.example_id in held} == {0, 2}
        assert campaign.store.get_meta("heldout_guideline") == 2
    finally:
        campaign.close()
    after = cli("relabel", "--label", "negative", "--dry-run", cfg)  # labeled under this guideline now: not again
    assert after.returncode == 0 and "would re-ask" in after.stdout and "held-out set again" not in after.stdout


def test_a_copy_of_the_campaign_file_beside_it_does_not_take_over_its_store(tmp_path):
    """`cp campaign.toml variant.toml` to try another setting keeps [campaign] name, so the copy named the first
    campaign's store: `run variant.toml` went on with that campaign under the variant's teachers (a new guideline
    version in it), and `status variant.toml` showed it as the variant's. Every command refuses the copy with the
    way out; a campaign file that was renamed (the first one gone) takes its campaign over."""
    cfg = replay_config(tmp_path, teachers=("a", "b"), rounds=ROUNDS)
    assert run(cfg)[0]
    variant = tmp_path / "variant.toml"
    variant.write_text(cfg.read_text().replace('source = "b"', 'source = "c"'))
    message = (r"t\.distilloop\.db is the store of .*campaign\.toml, and variant\.toml names it too \(a copy keeps "
               r"\[campaign\] name = 't'\), so it would run or report that campaign as its own\. Give variant\.toml a "
               r"name of its own for a new campaign, or move campaign\.toml away if this file takes that campaign over")
    for command in (("run",), ("status",), ("estimate",), ("export", "-o", tmp_path / "x.jsonl")):
        one_line_error(cli(*command, variant), message)
    with pytest.raises(ConfigError, match=message):
        Campaign.open(load_config(variant))
    assert not (tmp_path / "x.jsonl").exists()
    assert cli("status", cfg).returncode == 0  # the campaign's own file still works
    chosen = tmp_path / "chosen.toml"  # a file that names the store itself means it (what a note advises)
    chosen.write_text(variant.read_text().replace('name = "t"', 'name = "t"\nstore = "t.distilloop.db"'))
    assert cli("status", chosen).returncode == 0
    own = tmp_path / "own.toml"  # the way out: a name of its own is a new campaign
    own.write_text(variant.read_text().replace('name = "t"', 'name = "t-variant"'))
    assert cli("run", "-q", own).returncode == 0 and (tmp_path / "t-variant.distilloop.db").exists()
    cfg.rename(tmp_path / "renamed.toml")  # a renamed file takes its campaign over
    assert cli("status", variant).returncode == 0
    assert cli("run", "-q", variant).returncode == 0
    (tmp_path / "renamed.toml").rename(cfg)  # now the first file is the copy
    one_line_error(cli("status", cfg), r"is the store of .*variant\.toml, and campaign\.toml names it too")
