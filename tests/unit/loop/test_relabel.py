"""`distilloop relabel`: chosen labeled items re-asked under the current guideline, every stored answer whose
request is unchanged reused, the rest charged like a round, disagreements reviewed as usual, the changed labels
counted; `--dry-run` lists the items and what they would cost and writes nothing."""

import json

import pytest

from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.loop.relabel import Selectors, plan_relabel, relabel
from distilloop.testing.fake_api import FakeLLMAPI, serve
from tests.conftest import campaign_toml, replay_config, sqlite_count
from tests.unit.loop.living_helpers import cli, edit, one_line_error

KEY = "sk-relabel-test-key-0123456789"
TEACHER_C = ('[[teachers]]\nname = "c"\nkind = "replay"\nmodel = "gpt-4o-mini"\npath = "{path}"\nsource = "c"\n'
             "[routing]")


def paid_hashes(db, where=""):
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute(f"select request_hash from teacher_calls where status = 'ok' {where}")]
    finally:
        con.close()


def test_stale_labels_after_a_teacher_is_added_are_relabeled_reusing_every_unchanged_answer(tmp_path, fixtures):
    cfg = replay_config(tmp_path, teachers=("a", "b"),
                        rounds="max_rounds = 2\ninitial_size = 20\nbatch_size = 20\nconcurrency = 4")
    db = tmp_path / "t.distilloop.db"
    assert cli("run", "-q", cfg).returncode == 0
    old_ids = {r[0] for r in _rows(db, "select example_id from labels")}
    edit(cfg, "[routing]", TEACHER_C.format(path=fixtures / "rt_tiny_replay.jsonl.gz"))
    edit(cfg, "max_rounds = 2", "max_rounds = 3")
    assert cli("run", "-q", cfg).returncode == 0  # round 3 under the new guideline
    # an even split of the two teachers is left to review (the auto reviewer cannot settle it): not a label
    n = len(old_ids)
    assert 30 <= n <= 40 and sqlite_count(db, "select count(*) from labels where guideline = 2") == 20

    calls_before = sqlite_count(db, "select count(*) from teacher_calls")
    dry = cli("relabel", "--stale", "--dry-run", "--json", cfg)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert set(plan["ids"]) == old_ids and plan["guideline"] == 2
    assert (plan["requests"], plan["reused"], plan["to_pay"]) == (3 * n, 2 * n, n)
    assert 0 < plan["expected"]["tokens_in"] <= plan["upper"]["tokens_in"]
    text = cli("relabel", "--stale", "--dry-run", cfg).stdout
    assert f"would re-ask {n} item(s) under guideline 2" in text and f"{3 * n}: {2 * n} answered already" in text
    assert all(i in text for i in old_ids)
    assert sqlite_count(db, "select count(*) from teacher_calls") == calls_before  # a dry run sends nothing
    assert sqlite_count(db, "select count(*) from rounds") == 3

    before = dict(_rows(db, "select example_id, label from labels"))
    paid_before = set(paid_hashes(db))
    out = cli("relabel", "--stale", cfg)
    assert out.returncode == 0, out.stderr
    after = dict(_rows(db, "select example_id, label from labels"))
    changed = sum(before[i] != after[i] for i in old_ids)
    assert f"re-asked {n} item(s) under guideline 2: {changed} label(s) changed" in out.stdout
    assert f"teacher answers: {n} paid, {2 * n} reused from the store" in out.stdout
    relabel_paid = paid_hashes(db, "and round = 4")
    assert len(relabel_paid) == n and not set(relabel_paid) & paid_before  # nothing paid twice
    assert len(paid_hashes(db)) == len(set(paid_hashes(db)))
    assert sqlite_count(db, "select count(*) from labels where guideline = 2") == 20 + n
    assert sqlite_count(db, "select count(*) from rounds where round = 4 and strategy = 'relabel' and "
                            "status = 'done'") == 1
    one_line_error(cli("relabel", "--stale", cfg), "no labeled item matches the selectors")
    # a relabel round does not count towards max_rounds: the campaign is still at 3 rounds of 3
    rerun = cli("run", "-q", cfg)
    assert "max rounds reached (3, not counting 1 relabel round(s))" in rerun.stdout
    assert sqlite_count(db, "select count(*) from rounds") == 4
    # the learning curve keeps what rounds 1-3 did: the relabel round moved their labels' verdicts to round 4,
    # and the table showed 0 labeled and no agreement for them
    table = json.loads(cli("status", "--json", cfg).stdout)["rounds_table"]
    labeled = [r["labeled"] for r in table]
    assert 0 < labeled[0] < labeled[1] < labeled[2] <= labeled[3] == sqlite_count(db, "select count(*) from labels")
    assert all(r["agreement"] is not None for r in table) and table[3]["review"] >= 0
    from distilloop.storage.store import Store

    store = Store.open(db)
    try:  # the report's agreement table: each round's verdicts as it finished
        items = [row.items for row in store.agreement_rows()]
    finally:
        store.close()
    assert items[0] > 0 and items[1] > 0 and items[2] > 0 and items[3] == n
    assert all(r["label_acc"] is not None for r in table)


def _rows(db, sql):
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def flipped(text, labels):
    from distilloop.testing.fake_api.base import default_labeler

    first = default_labeler(text, labels)
    return labels[1 - labels.index(first)]


def test_an_edited_task_relabels_through_fake_servers_and_counts_the_changed_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api = FakeLLMAPI(api_key=KEY)
    with serve(api) as server:
        cfg = tmp_path / "campaign.toml"
        cfg.write_text(campaign_toml(name="fake", rounds="max_rounds = 1\ninitial_size = 16\nconcurrency = 4",
                                     extra=f"""\
[[teachers]]
name = "gpt"
kind = "openai"
model = "gpt-4o-mini"
base_url = "{server.openai_url}"
[[teachers]]
name = "claude"
kind = "anthropic"
model = "claude-haiku-4-5"
base_url = "{server.anthropic_url}"
[routing]
min_agreement = 0.7
"""))
        db = tmp_path / "fake.distilloop.db"
        assert cli("run", "-q", cfg).returncode == 0
        assert api.generations == 32
        edit(cfg, 'task = "Classify the sentiment."', 'task = "Would the critic recommend the film?"')
        api.labeler = flipped  # under the new guideline the model answers the other way
        dry = json.loads(cli("relabel", "--stale", "--dry-run", "--json", cfg).stdout)
        assert len(dry["ids"]) == 16 and dry["reused"] == 0 and dry["to_pay"] == 32 and dry["expected"]["usd"] > 0
        assert dry["guideline"] == 2 and dry["new_guideline"]
        assert api.generations == 32 and sqlite_count(db, "select count(*) from guidelines") == 1  # nothing written
        out = cli("relabel", "--stale", cfg)
        assert out.returncode == 0, out.stderr
        assert "re-asked 16 item(s) under guideline 2: 16 label(s) changed" in out.stdout
        assert "teacher answers: 32 paid, 0 reused" in out.stdout and api.generations == 64
        spent = sqlite_count(db, "select sum(usd) from ledger where round = 2")
        assert spent > 0  # charged like any round
        # the same items again, under the same guideline: every request is unchanged, nothing is paid
        again = cli("relabel", "--round", "2", cfg)
        assert "re-asked 16 item(s) under guideline 2: 0 label(s) changed" in again.stdout
        assert "teacher answers: 0 paid, 32 reused" in again.stdout and api.generations == 64
        assert sqlite_count(db, "select sum(usd) from ledger where round = 3") in (0, None)


def test_selectors_narrow_each_other_and_reviewed_labels_are_kept_unless_asked(tmp_path):
    cfg = replay_config(tmp_path, extra='[review]\nkind = "simulated"',
                        rounds="max_rounds = 2\ninitial_size = 30\nbatch_size = 30\nconcurrency = 4")
    campaign = Campaign.open(load_config(cfg))
    try:
        campaign.run()
        states = {s.example_id: s for s in campaign.store.label_states()}
        reviewed = {i for i, s in states.items() if s.source == "simulated"}
        assert reviewed and len(states) == 60
        low = {i for i, s in states.items() if s.agreement is not None and s.agreement < 0.7}
        plan = plan_relabel(campaign, Selectors(below_agreement=0.7))
        assert set(plan.ids) == low - reviewed and set(plan.kept_reviewed) == low & reviewed
        plan = plan_relabel(campaign, Selectors(below_agreement=0.7, include_reviewed=True))
        assert set(plan.ids) == low and plan.kept_reviewed == []
        round2 = {i for i, s in states.items() if s.round == 2}
        plan = plan_relabel(campaign, Selectors(round=2, ids=sorted(round2)[:5] + ["rt-02169"]))
        assert set(plan.ids) == set(sorted(round2)[:5]) - reviewed
        with pytest.raises(Exception, match="choose the items"):
            plan_relabel(campaign, Selectors())
        with pytest.raises(Exception, match="not in this campaign: nope"):
            plan_relabel(campaign, Selectors(ids=["nope"]))
        # a round that made no label (a typo, a round not run): said, not "would re-ask 0 item(s)"
        with pytest.raises(Exception, match=r"relabel --round 9: no label of this campaign was made in round 9 "
                                            r"\(its labels come from round\(s\) 1-2\)"):
            plan_relabel(campaign, Selectors(round=9))
        # the items of one label (a new label splits it): those labeled "negative" now, narrowed by the others
        negative = {i for i, s in states.items() if s.label == "negative"}
        plan = plan_relabel(campaign, Selectors(labels=["negative"]))
        assert negative and set(plan.ids) == negative - reviewed and set(plan.kept_reviewed) == negative & reviewed
        plan = plan_relabel(campaign, Selectors(labels=["negative"], round=2))
        assert set(plan.ids) == {i for i in negative - reviewed if states[i].round == 2}
        with pytest.raises(Exception, match=r"relabel --label: 'neg' is not a label of this campaign \(negative, "
                                            r"positive\)"):
            plan_relabel(campaign, Selectors(labels=["neg"]))
        plan = plan_relabel(campaign, Selectors(round=1, include_reviewed=True))
        result = relabel(campaign, plan)
        # the guideline did not change: every request is unchanged, nothing is paid, the same verdicts come back
        # (the simulated reviewer answers the routed items again with their gold labels)
        assert result.paid_calls == 0 and result.reused == 3 * len(plan.ids) and result.asked == len(plan.ids)
        assert result.changed == [] and result.in_review == 0 and result.unchanged == len(plan.ids)
        assert campaign.store.rounds()[-1]["strategy"] == "relabel"
    finally:
        campaign.close()


#: what the relabel round (3) paid for its own items: not the held-out set labeled again before them
RELABELED_ITEMS_TOKENS_IN = (
    "select sum(l.tokens_in) from ledger l join teacher_calls t on t.id = l.call_id where l.round = 3 and "
    "t.example_id not in (select example_id from reference_labels where reference = 'teachers')")


def cascade_campaign(tmp_path):
    """Two rounds of a campaign on 120 recorded RT items, the strong teacher first in a cascade: its file and
    store."""
    from tests.unit.loop.test_references import config, recorded_pool

    data = recorded_pool(tmp_path, gold=True)
    data.write_text("".join(data.read_text().splitlines(keepends=True)[:120]))
    cfg = config(tmp_path, data, rounds=2)
    edit(cfg, "min_agreement = 0.5", 'min_agreement = 0.5\ncascade = ["qwen-1.5b", "qwen-0.5b"]\n'
                                     "cascade_min_confidence = 0.8")
    assert cli("run", "-q", cfg).returncode == 0
    return cfg, tmp_path / "nogold.distilloop.db"


def test_a_cascade_campaigns_relabel_expects_its_later_tier_on_the_share_of_items_it_was_asked(tmp_path):
    cfg, db = cascade_campaign(tmp_path)
    weak = sqlite_count(db, "select count(distinct example_id) from teacher_calls where teacher = 'qwen-0.5b' "
                            "and round > 0")
    labeled = sqlite_count(db, "select count(*) from labels")
    assert 0 < weak < labeled  # the cascade asked the weak teacher about some items only
    edit(cfg, 'task = "Classify', 'task = "Read the snippet closely. Classify')
    plan = json.loads(cli("relabel", "--stale", "--dry-run", "--json", cfg).stdout)
    assert plan["requests"] == 2 * len(plan["ids"])  # at most: every teacher on every item
    reach = plan["reach"]["qwen-0.5b"]
    assert 0 < reach < 1 and "qwen-1.5b" not in plan["reach"]
    text = cli("relabel", "--stale", "--dry-run", cfg).stdout
    assert f"the cascade asks qwen-0.5b about {reach:.0%}" in " ".join(text.split())
    assert plan["heldout"] > 0  # the edited task: the held-out set is labeled again first, apart from this cost
    assert cli("relabel", "--stale", cfg).returncode == 0
    spent = sqlite_count(db, RELABELED_ITEMS_TOKENS_IN)
    # the forecast counts the weak teacher on its share of the items: near what the relabel paid, where counting
    # it on every item would overshoot by the tokens of the items it was not asked about
    assert abs(plan["expected"]["tokens_in"] - spent) <= 0.15 * spent, (plan["expected"], spent)
    assert plan["upper"]["tokens_in"] > 1.3 * spent


def test_a_cascade_relabel_of_doubtful_items_expects_the_later_tier_where_their_verdicts_went(tmp_path):
    """The items a relabel re-asks are rarely a sample of the campaign's: doubtful ones (low agreement) are the
    ones the cascade took to its later tier. The forecast counts each item as far as its last verdict went, not
    the campaign-wide share (which undershot the relabel's cost)."""
    cfg, db = cascade_campaign(tmp_path)
    edit(cfg, 'task = "Classify', 'task = "Read the snippet closely. Classify')
    overall = json.loads(cli("relabel", "--stale", "--dry-run", "--json", cfg).stdout)["reach"]["qwen-0.5b"]
    plan = json.loads(cli("relabel", "--stale", "--below-agreement", "0.95", "--dry-run", "--json", cfg).stdout)
    doubtful = sqlite_count(db, "select count(*) from consensus where agreement < 0.95 and tiers_asked = 2")
    assert plan["reach"]["qwen-0.5b"] == pytest.approx(doubtful / len(plan["ids"]))
    assert plan["reach"]["qwen-0.5b"] > overall  # the doubtful items went further than the campaign's average
    assert cli("relabel", "--stale", "--below-agreement", "0.95", cfg).returncode == 0
    spent = sqlite_count(db, RELABELED_ITEMS_TOKENS_IN)
    assert abs(plan["expected"]["tokens_in"] - spent) <= 0.15 * spent, (plan["expected"], spent)


def test_status_says_a_cascade_s_reliability_rests_on_the_items_its_first_teacher_was_unsure_of(tmp_path):
    """With a cascade only the items the first teacher was unsure of have two answers: the per-class rates come
    from them, and are low where that teacher is surest (it settled those items alone); status says so."""
    cfg, _ = cascade_campaign(tmp_path)
    out = " ".join(cli("status", cfg).stdout.split())
    assert "teacher reliability per class (dawid_skene over" in out
    assert "(with the cascade these are the items qwen-1.5b was unsure of, not a sample of the pool" in out
