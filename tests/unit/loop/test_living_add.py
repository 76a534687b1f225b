"""`distilloop add`: new rows join a running campaign's pool as a recorded data version; identical known rows are
skipped and counted; a known id with other content is refused with nothing written; the next round selects
among the new rows."""

import hashlib
import json
import re

from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
from tests.conftest import replay_config, sqlite_count
from tests.unit.loop.living_helpers import cli, edit, one_line_error, split_data, write_jsonl

ROUNDS = "max_rounds = 3\ninitial_size = 20\nbatch_size = 20\nconcurrency = 4"


def test_add_grows_the_pool_skips_known_rows_refuses_changed_ones_and_the_next_round_picks_new_rows(tmp_path):
    part, rest, pool = split_data(tmp_path)
    cfg = replay_config(tmp_path, data=part, rounds=ROUNDS)
    assert cli("run", "-q", cfg).returncode == 0
    db = tmp_path / "t.distilloop.db"
    assert sqlite_count(db, "select count(*) from examples where split = 'pool'") == 60
    assert sqlite_count(db, "select count(*) from consensus") == 60  # the first part's pool is used up

    # a known id with other content: exit 2, the ids named, nothing written
    changed = dict(pool[3], text=pool[3]["text"] + " (edited)")
    bad = write_jsonl(tmp_path / "bad.jsonl", [*pool[60:70], changed])
    one_line_error(cli("add", cfg, bad), rf"1 row\(s\) have the id of a row already in the campaign but other "
                                         rf"content: {pool[3]['id']}; nothing was added")
    assert sqlite_count(db, "select count(*) from examples") == 140
    assert sqlite_count(db, "select count(*) from data_versions") == 1

    added = cli("add", cfg, rest)
    assert added.returncode == 0, added.stderr
    assert "data version 2: added 60 row(s) (pool 60)" in added.stdout and "skipped 10 already" in added.stdout
    assert sqlite_count(db, "select count(*) from examples where split = 'pool'") == 120
    sha = hashlib.sha256(rest.read_bytes()).hexdigest()
    assert sqlite_count(db, f"select count(*) from data_versions where version = 2 and sha256 = '{sha}' and "
                            "n_added = 60 and n_skipped = 10 and n_rows = 70") == 1
    again = cli("add", cfg, rest)
    assert again.returncode == 0 and "nothing new: all 70 row(s)" in again.stdout
    assert sqlite_count(db, "select count(*) from data_versions") == 2

    status = json.loads(cli("status", "--json", cfg).stdout)
    assert [d["n_added"] for d in status["data_versions"]] == [140, 60]

    edit(cfg, "max_rounds = 3", "max_rounds = 4")
    assert cli("run", "-q", cfg).returncode == 0
    campaign = Campaign.open(load_config(cfg))
    try:
        new_ids = {r["id"] for r in pool[60:]}
        picked = campaign.store.selection(4)
        assert len(picked) == 20 and set(picked) <= new_ids
        assert set(campaign.store.data_version_of(picked).values()) == {2}
    finally:
        campaign.close()


def test_added_rows_may_name_their_split_and_the_evaluation_reference_stays_frozen(tmp_path):
    part, _, pool = split_data(tmp_path)
    cfg = replay_config(tmp_path, data=part, rounds="max_rounds = 1\ninitial_size = 20\nconcurrency = 4")
    assert cli("run", "-q", cfg).returncode == 0
    extra_test = write_jsonl(tmp_path / "more_test.jsonl", [dict(r, split="test") for r in pool[60:90]])
    out = cli("add", cfg, extra_test)
    assert out.returncode == 0 and "(test 30)" in out.stdout
    edit(cfg, "max_rounds = 1", "max_rounds = 2")
    assert cli("run", "-q", cfg).returncode == 0
    students = Campaign.open(load_config(cfg))
    try:
        refs = [s["reference"] for s in students.store.students()]
        assert students.store.split_counts()["test"] == 110
        assert refs[0] == refs[1] and refs[1]["n"] == 80  # the 30 new test rows are not in the reference
        # ...they are scored apart (how the student does on the new data), never decided on
        scored = students.store.students()[1]["metrics"]["refs"]
        assert scored["gold:test"]["n"] == 80 and scored["gold:test added"]["n"] == 30
        assert students.store.students()[1]["metrics"]["reference"] != "gold:test added"
        # round 2's student was not promoted: the one kept, scored before the rows came, is scored on them too
        kept = students.store.active_student()
        assert kept["round"] == 1 and kept["metrics"]["refs"]["gold:test added"]["n"] == 30
    finally:
        students.close()
    status = " ".join(cli("status", cfg).stdout.split())
    assert re.search(r"accuracy [\d.]+% on gold:test \(n=80, .*accuracy [\d.]+% on gold:test added \(n=30, ", status)


def test_add_checks_rows_like_the_campaign_data_and_needs_a_data_file(tmp_path):
    part, _, pool = split_data(tmp_path)
    cfg = replay_config(tmp_path, data=part, rounds="max_rounds = 1\ninitial_size = 10\nconcurrency = 4")
    assert cli("run", "-q", cfg).returncode == 0
    bad = write_jsonl(tmp_path / "bad.jsonl", [dict(pool[70], label="neutral")])
    one_line_error(cli("add", cfg, bad), "label 'neutral' is not in the label set")
    one_line_error(cli("add", cfg), r"name the data file: `distilloop add \[CONFIG\] DATA`")
    assert sqlite_count(tmp_path / "t.distilloop.db", "select count(*) from examples") == 140


def test_a_second_file_without_ids_is_refused_with_the_fix(tmp_path):
    """Rows without ids are known by their line: the first such file joins (row-1...), the second one's lines
    are taken by the first's rows; the refusal says the file has no ids, not that rows changed."""
    part, _, pool = split_data(tmp_path)
    cfg = replay_config(tmp_path, data=part, rounds="max_rounds = 1\ninitial_size = 10\nbatch_size = 10")
    assert cli("run", "-q", cfg).returncode == 0
    db = tmp_path / "t.distilloop.db"

    def without_ids(name, rows):
        return write_jsonl(tmp_path / name, [{k: v for k, v in r.items() if k != "id"} for r in rows])

    first = cli("add", cfg, without_ids("a.jsonl", pool[60:65]))
    assert first.returncode == 0 and "added 5 row(s)" in first.stdout, first.stderr
    # said when it joins, not only when the next file collides
    assert "has no 'id' column: its rows are known by their line (row-<line>) in exports and predictions, and a " \
           "later file without ids would collide with them" in " ".join(first.stdout.split())
    one_line_error(cli("add", cfg, without_ids("b.jsonl", pool[65:70])),
                   r"b.jsonl has no 'id' column, so its rows are known by their line .*5 of those ids are taken.*"
                   r"give every row a value in column 'id' that no row of the campaign has")
    assert sqlite_count(db, "select count(*) from examples where id like 'row-%'") == 5


def test_a_file_whose_columns_differ_in_case_is_refused_naming_them(tmp_path):
    """A file of new rows headed "ID,Text,Label,Split" for a campaign of id/text/label/split: its ids were ignored
    (rows joined as row-<line>), its split and gold too, without a word; now refused, naming each column, before
    anything is written."""
    part, _, pool = split_data(tmp_path)
    cfg = replay_config(tmp_path, data=part, rounds="max_rounds = 1\ninitial_size = 10\nbatch_size = 10")
    assert cli("run", "-q", cfg).returncode == 0
    rows = [{"ID": r["id"], "text": r["text"], "Label": r["label"], "split": "test"} for r in pool[60:65]]
    one_line_error(cli("add", cfg, write_jsonl(tmp_path / "caps.jsonl", rows)),
                   r"caps.jsonl: column 'Label' is 'label' in the campaign, column 'ID' is 'id' in the campaign "
                   r"\(the \[data\] field names\); rename the column\(s\) to match, case included: nothing was added")
    assert sqlite_count(tmp_path / "t.distilloop.db", "select count(*) from examples") == 140


def test_rows_appended_to_the_campaigns_data_file_are_pointed_to_add(tmp_path):
    """Rows appended to the data file a campaign was created from were ignored without a word, and `run` said
    the pool was used up; `run` now says the file changed and how to add them, until they are added."""
    part, _, pool = split_data(tmp_path)
    cfg = replay_config(tmp_path, data=part, rounds=ROUNDS)
    first = cli("run", cfg)
    assert first.returncode == 0 and "has changed since the campaign read it" not in first.stderr
    with part.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in pool[60:70]))
    edit(cfg, "max_rounds = 3", "max_rounds = 4")
    said = " ".join(cli("run", cfg).stderr.split())
    assert "part.jsonl has changed since the campaign read it: the pool is the campaign's own, so rows added to " \
           "the file are not in it; `distilloop add" in said
    assert cli("add", cfg, part).returncode == 0
    edit(cfg, "max_rounds = 4", "max_rounds = 5")
    after = cli("run", cfg)
    assert after.returncode == 0 and "has changed since" not in after.stderr


def test_a_renamed_campaign_is_told_of_the_store_that_holds_its_labels(tmp_path):
    """Renaming [campaign] name starts a new store beside the old one: every label paid again, the budget anew,
    without a word. `run` now names the store that holds a campaign on the same data file and how to go on with
    it; an unrelated store beside it, or an existing campaign, gets no note."""
    cfg = replay_config(tmp_path, rounds="max_rounds = 1\ninitial_size = 20\nbatch_size = 20")
    (tmp_path / "other.db").write_bytes(b"not a database at all" * 10)
    first = cli("run", cfg)
    assert first.returncode == 0 and "a new campaign starts" not in first.stderr
    again = cli("run", cfg)
    assert "a new campaign starts" not in again.stderr
    edit(cfg, 'name = "t"', 'name = "t2"')
    said = " ".join(cli("run", cfg).stderr.split())
    assert ("warning: a new campaign starts in t2.distilloop.db, while t.distilloop.db (20 labels) beside it holds a "
            'campaign on this same data file; to go on with that one (its labels and budget), set [campaign] store = '
            '"t.distilloop.db"') in said
    edit(cfg, 'name = "t2"', 'name = "t4"')  # two stores beside it: both named, in the plural
    said = " ".join(cli("run", cfg).stderr.split())
    assert ("while t.distilloop.db (20 labels), t2.distilloop.db (20 labels) beside it hold campaigns on this same "
            "data file; to go on with one of them") in said or \
           ("while t2.distilloop.db (20 labels), t.distilloop.db (20 labels) beside it hold campaigns on this same "
            "data file; to go on with one of them") in said, said
    edit(cfg, 'name = "t4"', 'name = "t3"\nstore = "t.distilloop.db"')
    assert "a new campaign starts" not in cli("run", cfg).stderr


def test_run_after_add_on_a_campaign_that_ran_its_rounds_says_why_nothing_ran(tmp_path):
    """New rows added to a campaign that had run all its rounds: `run` ran nothing and said only "max rounds
    reached (1)", as if the new rows were not there."""
    import os

    part, rest, _ = split_data(tmp_path)
    cfg = replay_config(tmp_path, data=part, rounds="max_rounds = 1\ninitial_size = 20\nbatch_size = 20")
    killed = cli("run", "-q", cfg, env={**os.environ, "DISTILLOOP_FAILPOINT": "trained:1"})
    assert killed.returncode != 0
    first = cli("run", cfg)  # the killed round, resumed and finished: a round ran
    assert first.returncode == 0 and "resuming round 1" in first.stderr and "no round ran" not in first.stderr
    assert cli("add", cfg, rest).returncode == 0
    said = " ".join(cli("run", cfg).stderr.split())
    assert re.search(r"warning: no round ran: the campaign has run its \[rounds\] max_rounds = 1 and \d+ pool row\(s\) "
                     r"are unlabeled; raise max_rounds", said), said
    edit(cfg, "max_rounds = 1", "max_rounds = 2")
    after = cli("run", cfg)
    assert after.returncode == 0 and "no round ran" not in after.stderr


def test_add_notes_test_rows_whose_input_is_a_pool_rows(tmp_path):
    """Evaluation rows added by `add` (split = "test") that repeat a pool row's input were taken without a word: the
    student would be judged on items it may train on."""
    part, _, pool = split_data(tmp_path)
    cfg = replay_config(tmp_path, data=part, rounds="max_rounds = 1\ninitial_size = 10\nbatch_size = 10")
    assert cli("run", "-q", cfg).returncode == 0
    rows = [{"id": "new-test-1", "text": pool[0]["text"], "label": pool[0]["label"], "split": "test"},
            {"id": "new-test-2", "text": "an input no pool row has", "label": pool[1]["label"], "split": "test"}]
    proc = cli("add", cfg, write_jsonl(tmp_path / "more.jsonl", rows))
    assert proc.returncode == 0, proc.stderr
    assert "note: 1 test row(s) have the same input as a pool row" in " ".join(proc.stdout.split())
