"""`distilloop estimate`: expected and upper-bound tokens and dollars before anything is paid."""

import json
import subprocess
import sys

import pytest

from distilloop.loop.config import load_config
from distilloop.loop.estimate import estimate_campaign
from tests.conftest import campaign_toml


def config(tmp_path, teachers, rounds="max_rounds = 3\ninitial_size = 10\nbatch_size = 5", budget="max_usd = 1.0"):
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(name="est", budget=budget, rounds=rounds, extra=f"{teachers}\n"))
    return path


GPT = '[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\nmax_tokens = 100\n'
CLAUDE_BATCH = ('[[teachers]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\nmax_tokens = 100\n'
                'mode = "batch"\n')


def test_next_round_and_campaign_per_teacher(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # no key needed: nothing is sent
    est = estimate_campaign(load_config(config(tmp_path, GPT + CLAUDE_BATCH)))
    assert (est.next_round, est.next_round_items, est.remaining_rounds, est.campaign_items) == (1, 10, 3, 20)
    gpt, claude = est.teachers
    # a typical answer / max_tokens: the label alone (the rationale policy "auto" with a student that reads none)
    assert gpt.per_item.tokens_out == 12 and gpt.per_item_upper.tokens_out == 100
    assert gpt.next_round.tokens_out == 120 and gpt.campaign.tokens_out == 240
    assert gpt.per_item.tokens_in < gpt.per_item_upper.tokens_in
    assert gpt.campaign.usd == pytest.approx(gpt.per_item.usd * 20, rel=1e-6)
    # 4 bytes a token on the rendered prompt
    assert 30 < gpt.per_item.tokens_in < 400
    # the batch teacher is priced at half
    assert claude.mode == "batch"
    live_rate = (claude.per_item.tokens_in * 1.00 + claude.per_item.tokens_out * 5.00) / 1e6
    assert claude.per_item.usd == pytest.approx(live_rate / 2, rel=0.01)
    assert est.total("campaign").usd == pytest.approx(gpt.campaign.usd + claude.campaign.usd)
    assert est.verdict() == "the expected spend fits in the budget"
    assert not (tmp_path / "est.distilloop.db").exists()  # nothing written


def test_a_budget_too_small_is_reported(tmp_path):
    est = estimate_campaign(load_config(config(tmp_path, GPT, budget="max_usd = 0.0001")))
    assert "cap is reached before the campaign ends" in est.verdict()


def test_the_pool_caps_the_remaining_rounds(tmp_path):
    est = estimate_campaign(load_config(config(tmp_path, GPT, rounds="max_rounds = 50\nbatch_size = 40")))
    assert est.campaign_items == est.pool_left and est.remaining_rounds < 50


def test_the_cli_prints_a_table_and_json(tmp_path):
    cfg = config(tmp_path, GPT)
    out = subprocess.run([sys.executable, "-m", "distilloop.cli", "estimate", str(cfg)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "gpt" in out.stdout and "campaign" in out.stdout and "tiktoken" in out.stdout
    js = subprocess.run([sys.executable, "-m", "distilloop.cli", "estimate", "--json", str(cfg)],
                        capture_output=True, text=True, timeout=120)
    data = json.loads(js.stdout)
    assert data["teachers"][0]["teacher"] == "gpt" and data["totals"]["campaign"]["usd"] > 0


def test_an_existing_campaign_is_estimated_from_its_store(tmp_path):
    from distilloop.loop.campaign import Campaign
    from tests.conftest import replay_config

    cfg = load_config(replay_config(tmp_path, rounds="max_rounds = 3\ninitial_size = 20\nbatch_size = 10"))
    c = Campaign.open(cfg)
    c.run(max_rounds=1)
    spent = c.store.spent()
    pool = c.store.count("examples", "split = 'pool'")
    c.close()
    est = estimate_campaign(cfg)
    assert (est.next_round, est.next_round_items, est.remaining_rounds) == (2, 10, 2)
    assert est.spent == spent and est.pool_left == pool - 20
    # the replay teachers' recorded usage is the exact per-item bound where they have the item
    assert all(t.per_item_upper.tokens_in > 0 for t in est.teachers)


def cascade_config(tmp_path, sure: float):
    """Teachers a then b in a cascade; a's recorded answers carry a confidence of ``sure``."""
    import gzip

    from tests.conftest import FIXTURES

    rows = [json.loads(x) for x in gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt")]
    out = []
    for r in rows:
        out.append({**r, "confidence": sure} if r["teacher"] == "a" else r)
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in out))
    teachers = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "gpt-4o-mini"\npath = "{rec}"\n'
                       f'source = "{t}"\n' for t in ("a", "b"))
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(name="casc", rounds="max_rounds = 3\ninitial_size = 20\nbatch_size = 10",
                                  extra=teachers + '[routing]\ncascade = ["a", "b"]\n'))
    return load_config(path)


def test_a_cascade_later_tier_is_said_to_be_counted_on_every_item_until_measured(tmp_path):
    from distilloop.loop.campaign import Campaign

    cfg = cascade_config(tmp_path, sure=0.99)
    est = estimate_campaign(cfg)
    a, b = est.teachers
    assert b.campaign.tokens_in == pytest.approx(a.campaign.tokens_in, rel=0.05)  # every item, and said so
    assert len(est.notes) == 1 and est.notes[0].startswith("b: a later tier of the cascade, counted here on every")
    first = a.campaign.tokens_in + a.campaign.tokens_out  # and what the first tier alone would cost
    assert f"so expect less (the first tier alone: {first:,} tokens, ${a.campaign.usd:.4f}, for the campaign" in \
        est.notes[0], est.notes[0]
    c = Campaign.open(cfg)
    c.run(max_rounds=1)
    asked_b = sum(1 for x in c.store.calls() if x.teacher == "b")
    c.close()
    assert asked_b == 0  # a was sure of every item
    est = estimate_campaign(cfg)
    a, b = est.teachers
    assert b.campaign.tokens_in == 0 and b.campaign_upper.tokens_in > 0 and a.campaign.tokens_in > 0
    assert len(est.notes) == 1 and "has not asked about any of its 20 labeled items" in est.notes[0]


def test_items_set_aside_for_a_reference_are_not_left_to_label(tmp_path):
    from distilloop.loop.campaign import Campaign
    from tests.conftest import replay_config

    path = replay_config(tmp_path, rounds="max_rounds = 3\ninitial_size = 20\nbatch_size = 10",
                         extra='[evaluation]\nreference = "teachers"\nheldout_size = 8\n')
    cfg = load_config(path)
    c = Campaign.open(cfg)
    c.run(max_rounds=1)
    pool = c.store.count("examples", "split = 'pool'")
    reserved = len(c.store.reserved_ids())
    c.close()
    assert reserved == 8
    assert estimate_campaign(cfg).pool_left == pool - 20 - 8


def test_the_teachers_held_out_set_is_in_the_forecast_and_out_of_the_per_item_figure(tmp_path):
    """A campaign without gold dev or test rows has the teachers label a held-out set before round 1 (charged to
    round 0). The estimate left it out before the campaign (2 rounds of 20 tickets: 9,224 tokens said, 19,299
    spent), then spread it over round 1's items (the next 2 rounds: 19,299 said, 6,440 spent)."""
    from distilloop.loop.campaign import Campaign
    from tests.conftest import replay_config

    path = replay_config(tmp_path, rounds="max_rounds = 2\ninitial_size = 10\nbatch_size = 10",
                         extra='[evaluation]\nreference = "teachers"\nheldout_size = 12\n')
    cfg = load_config(path)
    before = estimate_campaign(cfg)
    assert before.reference_items == 12 and before.campaign_items == 20
    assert any(n.startswith("before round 1 the teachers label 12 held-out items") for n in before.notes)
    c = Campaign.open(cfg)
    c.run()
    spent = c.store.spent()
    on_reference = sum(s.tokens_in for s in c.store.spend_on_reference("teachers").values())
    c.close()
    assert 0 < on_reference < spent.tokens_in
    # replay teachers: the forecast of every call is its recorded usage, so the whole campaign is forecast closely
    assert before.total("campaign").tokens_in == pytest.approx(spent.tokens_in, rel=0.1)
    cfg.raw["rounds"]["max_rounds"] = 4
    cfg.rounds.max_rounds = 4
    after = estimate_campaign(cfg)
    assert after.reference_items == 0 and not any("held-out" in n for n in after.notes)
    per_round = (spent.tokens_in - on_reference) / 2  # two rounds of 10 items
    assert after.total("next_round").tokens_in == pytest.approx(per_round, rel=0.15)


def test_the_cli_says_why_nothing_is_left(tmp_path):
    from distilloop.loop.campaign import Campaign
    from tests.conftest import replay_config

    path = replay_config(tmp_path, rounds="max_rounds = 1\ninitial_size = 20")
    c = Campaign.open(load_config(path))
    c.run()
    c.close()
    out = subprocess.run([sys.executable, "-m", "distilloop.cli", "estimate", str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    said = " ".join(out.stdout.split())
    assert "nothing left to estimate: the campaign has run its 1 round(s)," in said
    assert "raise [rounds] max_rounds for more" in said


def test_the_items_that_fit_a_tight_cap_count_each_call_s_reservation(tmp_path, monkeypatch):
    """A call is sent only while the cap has room for its upper bound: on a cap a few calls wide, the estimate
    said about 10 items fit where the campaign bought 5 (it counted the cap at the expected cost per item). It
    now keeps the last call's reservation aside, and what a campaign on the fake API buys is what it said."""
    import re

    from distilloop.testing.fake_api import FakeLLMAPI
    from distilloop.testing.fake_api.http import serve

    key = "sk-estimate-test-key-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with serve(FakeLLMAPI(api_key=key, prompt_cache=False)) as server:
        gpt = (f'[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\nmax_tokens = 100\n'
               f'base_url = "{server.openai_url}"\n')
        rounds = "max_rounds = 1\ninitial_size = 20\nconcurrency = 1"
        t = estimate_campaign(load_config(config(tmp_path, gpt, rounds=rounds))).teachers[0]
        cap = t.per_item_upper.usd + 4.5 * t.per_item.usd  # the last call's reservation and 4.5 calls' worth
        cfg = config(tmp_path, gpt, rounds=rounds, budget=f"max_usd = {cap:.8f}")
        said = estimate_campaign(load_config(cfg)).verdict()
        fit = int(re.search(r"about (\d+) of 20 items fit", said)[1])
        assert fit == 5 and "room for its upper bound" in said
        run = subprocess.run([sys.executable, "-m", "distilloop.cli", "run", "-q", str(cfg)], capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    import sqlite3

    bought = sqlite3.connect(tmp_path / "est.distilloop.db").execute(
        "select count(*) from teacher_calls where status = 'ok'").fetchone()[0]
    assert abs(bought - fit) <= 1, (bought, fit)
    assert int(cap // t.per_item.usd) >= 2 * bought  # the cap over the expected cost per item: twice too many


def test_a_teacher_new_to_the_campaign_is_counted_on_its_own_rounds(tmp_path):
    """A later tier swapped in mid-campaign (b replaced by c) was said to be "not asked about any of its labeled
    items (the teachers before it were sure)" and counted at nothing, though b had been asked about every one;
    after a round with it, its spend was spread over every round's items. Now it is new until measured, then
    measured over the rounds it was in."""
    from distilloop.loop.campaign import Campaign

    cfg = cascade_config(tmp_path, sure=0.5)  # a is never sure: b is asked about every item
    c = Campaign.open(cfg)
    c.run(max_rounds=1)
    c.close()
    path = cfg.path
    path.write_text(path.read_text().replace('name = "b"', 'name = "c"').replace('source = "b"', 'source = "c"')
                    .replace('cascade = ["a", "b"]', 'cascade = ["a", "c"]'))
    cfg = load_config(path)
    est = estimate_campaign(cfg)
    a, new = est.teachers
    assert new.teacher == "c" and new.campaign.tokens_in == pytest.approx(a.campaign.tokens_in, rel=0.05)
    assert est.notes == ["c: a later tier of the cascade new to the campaign, counted here on every item until a "
                         "round measures how often the teachers before it are unsure"]
    c = Campaign.open(cfg)
    c.run(max_rounds=1)  # the second round: 10 items, c asked about each
    paid = sum(x.tokens_in for x in c.store.calls() if x.teacher == "c")
    asked = sum(1 for x in c.store.calls() if x.teacher == "c")
    c.close()
    assert asked == 10 and paid > 0
    est = estimate_campaign(cfg)
    new = est.teachers[1]
    assert new.per_item.tokens_in == pytest.approx(paid / 10, rel=0.01) and not est.notes


def test_a_cascades_later_tier_does_not_hold_back_the_first(tmp_path, monkeypatch):
    """On a cap smaller than one call of the cascade's second teacher (claude: its reservation 10 times gpt's), the
    estimate kept claude's reservation aside for the last item and said "about 6 items fit"; the campaign then
    labeled 109 there, gpt alone once claude's reservation no longer fitted. The first tier's is kept aside now,
    and the campaign on the fake API buys at least what the estimate says."""
    import re

    from distilloop.testing.fake_api import FakeLLMAPI
    from distilloop.testing.fake_api.http import serve

    key = "sk-estimate-test-key-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    with serve(FakeLLMAPI(api_key=key, prompt_cache=False)) as server:
        teachers = (f'[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\nmax_tokens = 100\n'
                    f'base_url = "{server.openai_url}"\n'
                    f'[[teachers]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\n'
                    f'max_tokens = 100\nbase_url = "{server.anthropic_url}"\n'
                    '[routing]\ncascade = ["gpt", "claude"]\ncascade_min_confidence = 0.8\n')
        rounds = "max_rounds = 2\ninitial_size = 20\nbatch_size = 20\nconcurrency = 1"
        gpt, claude = estimate_campaign(load_config(config(tmp_path, teachers, rounds=rounds))).teachers
        assert claude.per_item_upper.usd > 3 * gpt.per_item_upper.usd
        cap = claude.per_item_upper.usd * 0.9  # claude's reservation never fits
        cfg = config(tmp_path, teachers, rounds=rounds, budget=f"max_usd = {cap:.8f}")
        said = estimate_campaign(load_config(cfg)).verdict()
        found = re.search(r"about (\d+) of 40 items fit", said)
        fit = int(found[1]) if found else 40
        assert fit >= 5 and (not found or f"upper bound, ${gpt.per_item_upper.usd:,.4f}" in said), said
        run = subprocess.run([sys.executable, "-m", "distilloop.cli", "run", "-q", str(cfg)], capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    import sqlite3

    labeled = sqlite3.connect(tmp_path / "est.distilloop.db").execute("select count(*) from labels").fetchone()[0]
    assert labeled >= fit, (labeled, fit)


def test_the_verdict_counts_the_end_of_the_budget_at_the_first_tiers_cost():
    """Once what is left no longer fits a later tier's reservation, `run` asks the first tier alone: the estimate
    counted every item at the cascade's cost to the end and said "about 80 items fit" where a $0.02 campaign then
    labeled 167 (the last $0.0030 bought gpt's answers at $0.00003 each)."""
    from distilloop.core.ledger import Caps
    from distilloop.core.types import Spend
    from distilloop.loop.estimate import CampaignEstimate, TeacherEstimate

    def teacher(name, per, upper):
        return TeacherEstimate(name, "m", "live", Spend(100, 10, per), Spend(1000, 256, upper), Spend(), Spend(),
                               Spend(100_000, 10_000, per * 2000), Spend())

    est = CampaignEstimate("c", 3, 50, 40, 2000, 2000, Spend(0, 0, 0.0092), Caps(usd=0.02),
                           [teacher("gpt", 0.000028, 0.00027), teacher("claude", 0.000106, 0.0030)],
                           later_tiers=["claude"])
    said = est.verdict()
    # (0.0108 - 0.0030) / 0.000134 = 58 with both, then (0.0030 - 0.00027) / 0.000028 + 1 = 98 with gpt alone
    assert "about 156 of 2000 items fit" in said and "the last $0.0030 buys gpt's answers alone" in said, said
    est.later_tiers = []  # no cascade: every item at both teachers' cost, the largest reservation kept aside
    assert "about 59 of 2000 items fit" in est.verdict() and "buys" not in est.verdict()
    est.later_tiers, est.campaign_items = ["claude"], 150  # all of them fit, the last ones with gpt alone
    assert est.verdict().startswith("the campaign's 150 items fit, the last of them answered by gpt alone")
