"""Rounds are sized on the expected cost, the cap is enforced on every reservation: a tight cap is used, not
wasted; estimates match what a round really costs; one huge row does not halt a campaign; a server that bills
past max_tokens is taken out before it can take the ledger past its cap."""

import asyncio
import json
import re
import shutil

import pytest

from distilloop.annotators.ensemble import Retry, TeacherEnsemble
from distilloop.core.ledger import Budget, Caps
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.loop.estimate import estimate_campaign
from distilloop.storage.store import Store
from distilloop.testing.fake_api import FakeLLMAPI
from tests.conftest import FIXTURES, campaign_toml, replay_config
from tests.unit.annotators.remote_helpers import KEY, items, openai_teacher


def one_round(tmp_path, budget):
    folder = tmp_path / budget.replace(" ", "").replace("=", "")[:20]
    folder.mkdir()
    cfg = load_config(replay_config(folder, budget=budget, rounds="max_rounds = 1\ninitial_size = 40\nconcurrency = 4"))
    c = Campaign.open(cfg)
    reason = c.run()
    out = (reason, c.store.spent(), len(c.store.selection(1)), c.store.count("consensus"))
    c.close()
    return cfg, out


def test_a_cap_just_above_one_rounds_cost_buys_the_whole_round(tmp_path):
    _, (_, cost, _, _) = one_round(tmp_path, "max_usd = 1.0")
    cap = cost.usd * 1.02
    _, (reason, spent, selected, answered) = one_round(tmp_path, f"max_usd = {cap!r}")
    assert selected == 40 and answered == 40  # it bought 6 of 40 when rounds were sized on the upper bound
    assert spent.usd <= cap and spent.usd >= 0.97 * cap


def test_the_estimate_of_a_round_is_what_it_costs(tmp_path):
    cfg = load_config(replay_config(tmp_path, rounds="max_rounds = 2\ninitial_size = 20\nbatch_size = 20"))
    before = estimate_campaign(cfg, sample_size=200)
    c = Campaign.open(cfg)
    c.run(max_rounds=1)
    actual = c.store.spent()
    c.close()
    predicted = before.total("next_round")
    assert predicted.usd == pytest.approx(actual.usd, rel=0.15)  # it was +120% for the replay teachers
    assert predicted.tokens_out == pytest.approx(actual.tokens_out, rel=0.15)


def test_the_estimate_learns_a_remote_teachers_real_usage(tmp_path, monkeypatch):
    """The first round's estimate of an OpenAI teacher rests on a typical answer's length; from then on on what
    the campaign's calls really used, so the next round's estimate is close (it was +43% off)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    api = FakeLLMAPI(api_key=KEY, prompt_cache=False)
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(name="o", rounds="max_rounds = 2\ninitial_size = 20\nbatch_size = 20",
                                  extra='[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\n'
                                        'base_url = "http://fake.test/v1"\n'))
    cfg = load_config(path)
    c = Campaign.open(cfg, teachers=[openai_teacher(api, structured="json_schema")])
    c.run(max_rounds=1)
    first = c.store.spent()
    c.close()
    est = estimate_campaign(cfg, sample_size=200, teachers=[openai_teacher(api, structured="json_schema")])
    c = Campaign.open(cfg, teachers=[openai_teacher(api, structured="json_schema")])
    c.run(max_rounds=1)
    second = c.store.spent().usd - first.usd
    c.close()
    assert est.total("next_round").usd == pytest.approx(second, rel=0.15)


def test_one_huge_row_does_not_halt_the_campaign(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rows = [json.loads(line) for line in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()[:10]]
    rows = [{**r, "split": "pool"} for r in rows] + [{"id": "huge", "text": "word " * 1_000_000, "split": "pool"}]
    rows += [{"id": f"t{i}", "text": "a test row", "label": "positive", "split": "test"} for i in range(5)]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(name="h", data=data, budget="max_usd = 0.5",
                                  rounds="max_rounds = 1\ninitial_size = 11",
                                  extra='[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\n'
                                        'base_url = "http://fake.test/v1"\n'))
    api = FakeLLMAPI(api_key=KEY)
    c = Campaign.open(load_config(path), teachers=[openai_teacher(api, structured="json_schema")])
    reason = c.run()
    assert reason.startswith("max rounds") and "budget" not in reason
    assert c.store.count("consensus") == 10 and "huge" not in c.store.annotated_ids()
    assert c.store.spent().usd < 0.01
    c.close()


def test_a_server_that_bills_past_max_tokens_is_taken_out_at_once(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    api = FakeLLMAPI(api_key=KEY, overbill_tokens=50)
    t = openai_teacher(api, structured="json_schema", max_tokens=20)
    store = Store.memory()
    ens = TeacherEnsemble([t], store, Budget(Caps(tokens_out=200)), concurrency=1, retry=Retry(backoff_s=0))
    res = asyncio.run(ens.annotate(items(6), 1))
    assert "max_tokens" in res.disabled["gpt"] and res.paid_calls == 1
    assert store.spent().tokens_out == 70  # one answer: 20 reserved, 70 billed; no second one


def test_max_tokens_must_be_a_positive_integer(tmp_path):
    from distilloop.errors import ConfigError
    from distilloop.loop.parts import build_teachers

    for bad in ("0", "-5", '"96"'):
        cfg = replay_config(tmp_path, extra="")
        text = cfg.read_text().replace('source = "a"', f'source = "a"\nmax_tokens = {bad}', 1)
        cfg.write_text(text)
        with pytest.raises(ConfigError, match="max_tokens must be"):
            build_teachers(load_config(cfg))
    shutil.rmtree(tmp_path / "t.students", ignore_errors=True)


def test_calls_the_budget_refused_are_said_with_what_became_of_their_items(tmp_path, monkeypatch):
    """A cascade's second tier whose call reserves more than the cap has left (its prompt at a token per byte and
    max_tokens of answer): the calls the budget had no room for are named per teacher in a warning, with the items
    decided without them (their missing answer is dissent); nothing crosses the cap, and the progress bar still
    ends at its total. Before, only a debug log said so, and the tier went unasked round after round in silence."""
    from tests.unit.annotators.remote_helpers import anthropic_teacher

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api = FakeLLMAPI(api_key=KEY, prompt_cache=False, confidence=0.6)  # every item unsure: the cascade asks on
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(
        name="o", budget="max_usd = 0.003", rounds="max_rounds = 1\ninitial_size = 10\nconcurrency = 1",
        extra='[[teachers]]\nname = "gpt"\nkind = "openai"\nmodel = "gpt-4o-mini"\nbase_url = "http://fake.test/v1"\n'
              '[[teachers]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\n'
              'base_url = "http://fake.test"\n[routing]\ncascade = ["gpt", "claude"]\ncascade_min_confidence = 0.8\n'))
    warned: list[str] = []
    progress, steps = counting_progress(warned)
    c = Campaign.open(load_config(path), progress=progress,
                      teachers=[openai_teacher(api, structured="json_schema"), anthropic_teacher(api)])
    try:
        c.run()
        spent = c.store.spent()
        decided = c.store.count("consensus")
        selected = len(c.store.selection(1))
    finally:
        c.close()
    assert spent.usd <= 0.002
    notes = [w for w in warned if "the budget had no room left for" in w]
    assert len(notes) == 1, warned
    refused = re.search(r"round 1: the budget had no room left for (\d+) call\(s\) of claude", notes[0])
    assert refused and int(refused.group(1)) > 0, notes[0]
    partial = re.search(r"(\d+) item\(s\) were decided without those answers", notes[0])
    assert partial and int(partial.group(1)) == int(refused.group(1)), notes[0]  # gpt answered each of them
    assert decided == selected
    assert steps and all(n == total for n, total in steps), steps


def counting_progress(warned: list[str]):
    """A quiet progress whose warnings go to ``warned`` and whose bars record (times advanced, total)."""
    from contextlib import contextmanager

    from distilloop.loop.progress import Progress

    steps: list[tuple[int, int]] = []
    progress = Progress(quiet=True)
    progress.warn = warned.append  # type: ignore[method-assign]

    @contextmanager
    def counting_bar(description, total):
        n = [0]

        def advance(k=1):
            n[0] += k
        yield advance
        steps.append((n[0], total))
    progress.bar = counting_bar  # type: ignore[method-assign]
    return progress, steps


def described_progress():
    """A quiet progress whose bars record (description, times advanced, total), and a function that lists the
    embedding passes among them."""
    progress, steps = counting_progress([])
    described: list[str] = []
    bar = progress.bar
    progress.bar = lambda description, total: described.append(description) or bar(description, total)

    def passes():
        return [(d, *s) for d, s in zip(described, steps, strict=True) if d.startswith("embedding")]
    return progress, passes


def test_a_cascade_round_s_progress_bar_ends_at_its_total(tmp_path):
    """The bar counts every teacher on every item; the questions a cascade's later tiers were spared count as
    done, so it ends at its total (it stopped at 15/30 where the first teacher was sure of every item)."""
    import gzip

    rec = tmp_path / "rec.jsonl.gz"
    with gzip.open(FIXTURES / "rt_tiny_replay.jsonl.gz", "rt") as f, gzip.open(rec, "wt") as g:
        for k, line in enumerate(f):
            r = json.loads(line)
            label = json.loads(r["raw"])["label"]
            other = "negative" if label == "positive" else "positive"
            p = 0.95 if k % 2 else 0.6  # the first teacher sure of half the items
            g.write(json.dumps({**r, "label": label, "rationale": "r", "confidence": p,
                                "distribution": {label: p, other: 1 - p}}) + "\n")
    teachers = "".join(f'[[teachers]]\nname = "{t}"\nkind = "replay"\nmodel = "{t}"\npath = "{rec}"\nsource = "{t}"\n'
                       for t in ("a", "b", "c"))
    path = replay_config(tmp_path, teachers=(), rounds="max_rounds = 1\ninitial_size = 30", extra=teachers)
    path.write_text(path.read_text().replace("[routing]\n", '[routing]\ncascade = ["a", ["b", "c"]]\n'
                                                            "cascade_min_confidence = 0.8\n"))
    progress, steps = counting_progress([])
    c = Campaign.open(load_config(path), progress=progress)
    try:
        c.run()
        later = c.store.db.execute("select count(*) from teacher_calls where teacher != 'a'").fetchone()[0]
    finally:
        c.close()
    assert 0 < later < 2 * 30  # some items settled at the first tier, some did not
    labeling = [(n, total) for n, total in steps if total == 90]
    assert labeling == [(90, 90)], steps


def test_the_last_rounds_of_a_cascade_near_its_cap_spend_what_is_left_in_a_few_rounds(tmp_path, monkeypatch):
    """A $0.02 campaign with a gpt -> claude cascade ran 26 rounds, the last ones of 17, 12, 11 ... 1 item, a student
    trained after each: every teacher was counted on every item when a round was sized (claude, asked about a
    fifth of the items, at 7 times gpt's price), and claude counted on even once its $0.003 bound no longer fitted
    the cap. Rounds are now sized on what each teacher has cost per labeled item, without a teacher the cap can no
    longer call; the campaign stops before a round that could not buy anything."""
    from tests.unit.annotators.remote_helpers import anthropic_teacher

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    rows = [json.loads(line) for line in (FIXTURES / "rt_tiny.jsonl").read_text().splitlines()]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({**r, "split": "pool" if i < 180 else "test"}) for i, r in enumerate(rows)))
    teachers = "".join(f'[[teachers]]\nname = "{n}"\nkind = "{k}"\nmodel = "{m}"\nbase_url = "http://fake.test{v}"\n'
                       for n, k, m, v in [("gpt", "openai", "gpt-4o-mini", "/v1"),
                                          ("claude", "anthropic", "claude-haiku-4-5", "")])
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(name="tail", data=data, budget="max_usd = 0.003",
                                  rounds="max_rounds = 40\ninitial_size = 10\nbatch_size = 20",
                                  extra=teachers + '[routing]\ncascade = ["gpt", "claude"]\ncascade_min_confidence = 0.8\n'
                                        '[student]\nkind = "tfidf_logreg"\n'))
    api = FakeLLMAPI(api_key=KEY)
    c = Campaign.open(load_config(path), teachers=[openai_teacher(api, name="gpt", structured="json_schema"),
                                                    anthropic_teacher(api, name="claude")])
    reason = c.run()
    rounds = c.store.rounds()
    sizes = [r["n_selected"] for r in rounds]
    spent = c.store.spent().usd
    c.close()
    assert reason.startswith("budget spent: what is left does not cover one more call of any teacher"), reason
    assert spent <= 0.003 and sizes[-1] > 0, sizes  # no last round that bought nothing
    assert len(rounds) <= 8, sizes  # 17 rounds before: 10, 18, 14, 12, 10, 8, 7, 6, 5, 4, 3, 2, 2, 2, 1, 1, 1


def test_a_cap_lowered_below_the_spend_says_which_key_and_what_was_spent(tmp_path):
    """A cap lowered after a run stopped the campaign with "budget spent (campaign cap on usd)", and `status` ate
    the brackets of a reason that named "[budget]" (rich markup)."""
    import subprocess
    import sys

    path = replay_config(tmp_path, rounds="max_rounds = 3\ninitial_size = 20\nbatch_size = 20")
    c = Campaign.open(load_config(path))
    c.run(max_rounds=1)
    spent = c.store.spent().tokens_in
    c.close()
    path.write_text(path.read_text().replace("max_tokens_in = 200000", f"max_tokens_in = {spent // 2}"))
    c = Campaign.open(load_config(path))
    reason = c.run()
    c.close()
    assert reason == (f"budget spent: {spent:,} of [budget] max_tokens_in = {spent // 2:,} (below what the campaign "
                      "had spent: it was lowered); raise it for `distilloop run` to go on"), reason
    status = subprocess.run([sys.executable, "-m", "distilloop.cli", "status", str(path)], capture_output=True,
                            text=True, timeout=120)
    assert f"last stop: {reason}" in " ".join(status.stdout.split()), status.stdout


def test_a_round_cap_below_one_call_is_named_by_run_and_estimate(tmp_path):
    """A per-round cap below the smallest call of every teacher stopped the campaign as "budget spent ... raise
    the cap ([budget])" with the campaign cap far from spent, and `estimate` said the spend fitted: no round
    could ask anything, and the key to raise is the round cap."""
    from distilloop.errors import ConfigError

    cfg = load_config(replay_config(tmp_path, budget="max_usd = 1.0\nround_max_tokens_in = 20"))
    est = estimate_campaign(cfg)
    assert est.verdict().startswith("no round can ask anything: [budget] round_max_tokens_in = 20 is below one "
                                    "call of any teacher (the smallest call reserves "), est.verdict()
    c = Campaign.open(cfg)
    with pytest.raises(ConfigError, match=r"round_max_tokens_in = 20 is below one call .* raise it to at least"):
        c.run()
    assert c.store.rounds() == [] and c.store.spent().tokens_in == 0  # nothing started, nothing paid
    c.close()
    # with the campaign's cap too small for a call as well, that cap is the one to raise: no config error
    (tmp_path / "both").mkdir()
    cfg = load_config(replay_config(tmp_path / "both", budget="max_usd = 0.0000001\nround_max_tokens_in = 20"))
    assert estimate_campaign(cfg).blocked is None
    c = Campaign.open(cfg)
    assert c.run().startswith("budget spent: what is left does not cover one more call of any teacher")
    c.close()
    # a round cap that fits a call is not a config error: the round is sized under it
    (tmp_path / "ok").mkdir()
    cfg = load_config(replay_config(tmp_path / "ok", budget="max_usd = 1.0\nround_max_tokens_in = 2000"))
    assert estimate_campaign(cfg).blocked is None
    c = Campaign.open(cfg)
    c.run(max_rounds=1)
    assert 0 < c.store.spent().tokens_in <= 2000
    c.close()
