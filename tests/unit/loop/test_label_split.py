"""A label that splits another ("refund" out of "billing"), the flow docs/living-campaigns.md gives: add it to
`[campaign] labels`, then `distilloop relabel --stale --label billing`. With a teacher that reports logprobs and
calibration fitted to the dev gold's class shares (what `init` writes), the relabel made no "refund" at all and
moved most billing items to other labels: the gold, made before the label existed, gave it a 0% share, and the
relabeled items (all labeled "billing") were fitted as if they were a sample of the pool."""

import json
import random
import re

from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from distilloop.loop.relabel import Selectors, plan_relabel, relabel
from distilloop.testing.fake_api import FakeLLMAPI, serve
from tests.unit.loop.living_helpers import edit

KEY = "sk-split-test-key-0123456789"
TEXTS = {
    "billing": ["My invoice for {n} shows the wrong plan price.", "Why was my card billed on day {n}?",
                "I need a VAT invoice for order {n}."],
    "refund": ["I was charged twice for order {n}, I want my money back.", "Please return the {n} dollars you took "
               "after I cancelled, money back now."],
    "bug": ["The app crashes when I open screen {n}.", "Saving fails with error {n}."],
    "how_to": ["How do I add user {n} to my team?", "Where is setting {n} in the menu?"],
}
OLD = ["billing", "bug", "how_to"]


class Teacher(FakeLLMAPI):
    """The fake teacher: right about every ticket, and "refund" where the label set offers it, surer of some
    than of others (one request at a time: its confidence is set for the answer being made)."""

    def answer(self, text, labels):
        true = next(lab for lab, forms in TEXTS.items() if any(text.startswith(f.split("{n}")[0]) for f in forms))
        self.confidence = 0.4 + 0.5 * (int(re.search(r"\d+", text).group()) % 7) / 6
        return true if true in labels else "billing"


def tickets(path, n=280, seed=3):
    rng = random.Random(seed)
    shares = {"billing": 0.3, "refund": 0.2, "bug": 0.4, "how_to": 0.1}
    rows = []
    for i in range(n):
        true = rng.choices(list(shares), weights=list(shares.values()))[0]
        split = "dev" if i < 80 else "test" if i < 120 else "pool"
        rows.append({"id": f"t{i}", "split": split, "text": rng.choice(TEXTS[true]).format(n=i),
                     "label": true if true in OLD else "billing", "true": true})  # the gold predates "refund"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {r["id"]: r["true"] for r in rows}


def test_a_label_split_out_of_another_is_found_by_the_relabel(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    truth = tickets(tmp_path / "tickets.jsonl")
    api = Teacher(api_key=KEY)
    api.labeler = api.answer
    with serve(api) as server:
        cfg = tmp_path / "campaign.toml"
        cfg.write_text(f"""
[campaign]
name = "split"
labels = {json.dumps(OLD)}
task = "Classify the support ticket."
[data]
path = "tickets.jsonl"
[budget]
max_usd = 1.0
[rounds]
max_rounds = 2
initial_size = 40
batch_size = 40
concurrency = 1
[strategy]
name = "random"
[[teachers]]
name = "gpt"
kind = "openai"
model = "gpt-4o-mini"
base_url = "{server.openai_url}"
[routing]
min_agreement = 0.0
[aggregation]
method = "confidence_weighted"
calibrate = "batch"
calibrate_prior = "auto"
[student]
kind = "tfidf_logreg"
""")
        campaign = Campaign.open(load_config(cfg))
        try:
            campaign.run()
        finally:
            campaign.close()
        edit(cfg, json.dumps(OLD), json.dumps([*OLD, "refund"]))
        campaign = Campaign.open(load_config(cfg))
        try:
            plan = plan_relabel(campaign, Selectors(stale=True, labels=["billing"]))
            relabel(campaign, plan)
            after = campaign.store.accepted_labels(plan.ids)
        finally:
            campaign.close()
        edit(cfg, "max_rounds = 2", "max_rounds = 3")  # a round under the new label set
        campaign = Campaign.open(load_config(cfg))
        try:
            campaign.run()
            store = campaign.store
            third = {r["example_id"]: r["label"] for r in store.labeled() if r["round"] == 4}
            used = store.get_meta("calibration_prior")
        finally:
            campaign.close()
    refunds = [i for i in plan.ids if truth[i] == "refund"]
    billing = [i for i in plan.ids if truth[i] == "billing"]
    assert len(refunds) >= 5 and len(billing) >= 5
    # the teacher says "refund" to every refund ticket and "billing" to the others: the labels say so too
    assert [after[i] for i in refunds] == ["refund"] * len(refunds)
    assert [after[i] for i in billing] == ["billing"] * len(billing)
    # the next round: the gold (which never says "refund") gives the shares of the other labels, and refund keeps
    # the teacher's own; fitted to a 0% share, no refund ticket was called one
    assert used["open"] == ["refund"]
    assert len(third) == 40 and sum(truth[i] == "refund" for i in third) >= 3
    assert all(third[i] == truth[i] for i in third if truth[i] in ("refund", "billing"))
    # the gold (made before "refund") scores a student wrong wherever it says it: `status` says so, and how to judge
    from distilloop.cli import main

    capsys.readouterr()
    assert main(["status", str(cfg)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("no gold label of dev or test says 'refund', added to the labels after those 120 were made: `label acc` "
            "and the students' scores count it wrong wherever it is said, and promotion favours students that never "
            "say it; to judge students under the new labels, [evaluation] reference = \"teachers\"") in out
    assert "how_to 9%; 'refund' at the teachers' own share" in out  # the calibration line
