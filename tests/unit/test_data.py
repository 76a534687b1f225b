import gzip
import json
import subprocess
import sys

import pytest

from distilloop.core.types import render_input
from distilloop.data import DataSpec, load_examples
from distilloop.errors import DataError


def write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_gz_and_csv(tmp_path):
    gz = tmp_path / "d.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(json.dumps({"id": "1", "text": "good", "label": "pos", "split": "test"}) + "\n")
    ex = load_examples(gz)
    assert ex[0].id == "1" and ex[0].gold == "pos" and ex[0].split == "test"
    csv = tmp_path / "d.csv"
    csv.write_text("id,text,label\n1,good,pos\n2,bad,neg\n")
    assert [e.gold for e in load_examples(csv, labels=["pos", "neg"])] == ["pos", "neg"]


def test_splits_are_assigned_deterministically_and_only_rows_with_gold_are_held_out(tmp_path):
    rows = [{"id": str(i), "text": f"t{i}", **({"label": "pos"} if i < 100 else {})} for i in range(150)]
    p = write(tmp_path / "d.jsonl", rows)
    a = load_examples(p, DataSpec(test_fraction=0.2, dev_fraction=0.1, seed=3))
    b = load_examples(p, DataSpec(test_fraction=0.2, dev_fraction=0.1, seed=3))
    assert [e.split for e in a] == [e.split for e in b]
    assert sum(e.split == "test" for e in a) == 20 and sum(e.split == "dev" for e in a) == 10
    assert all(e.split == "pool" for e in a if e.gold is None)  # a held-out row without gold measures nothing


@pytest.mark.parametrize("rows,match", [
    ([{"id": "1", "label": "pos"}], "no 'text'"),
    ([{"id": "1", "text": "  "}], "'text' .the input field. is empty"),
    ([{"id": "1", "text": "x", "label": "maybe"}], "not in the label set"),
    ([{"id": "1", "text": "x"}, {"id": "1", "text": "y"}], "duplicate id"),
    ([{"id": "1", "text": "x", "split": "holdout"}], "split 'holdout'"),
])
def test_bad_rows_name_the_line_and_the_problem(tmp_path, rows, match):
    p = write(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=match) as exc:
        load_examples(p, labels=["pos", "neg"])
    assert "d.jsonl:" in str(exc.value)


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "d.jsonl"
    bad.write_text('{"id": 1, "text": "x"}\n{oops\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: not valid JSON"):
        load_examples(bad)
    with pytest.raises(DataError, match="not found"):
        load_examples(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="unknown data format"):
        load_examples(write(tmp_path / "d.txt", [{"id": "1"}]))
    (tmp_path / "d.xlsx").write_bytes(b"PK\x03\x04")  # a spreadsheet says how to save it as CSV
    with pytest.raises(DataError, match=r"unknown data format.*\(a spreadsheet: save it as 'CSV UTF-8'"):
        load_examples(tmp_path / "d.xlsx")


def test_multiple_choice_rendering():
    text = render_input({"question": "Where?", "choices": {"A": "here", "B": "there"}})
    assert text == "Where?\n(A) here (B) there"


def test_limits_take_a_seeded_random_sample_not_the_first_rows(tmp_path):
    rows = [{"id": str(i), "text": f"t{i}", "split": "pool"} for i in range(200)]
    p = write(tmp_path / "d.jsonl", rows)
    a = load_examples(p, DataSpec(limits={"pool": 50}, seed=1))
    b = load_examples(p, DataSpec(limits={"pool": 50}, seed=1))
    assert [e.id for e in a] == [e.id for e in b] and len(a) == 50
    assert max(int(e.id) for e in a) > 100  # not the first 50 rows
    assert [int(e.id) for e in a] == sorted(int(e.id) for e in a)  # file order kept


def test_a_gold_label_spelled_with_other_case_or_spaces_is_the_campaign_s_label(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"id": str(i), "text": "t", "label": g}) + "\n"
                         for i, g in enumerate(["positive", "POSITIVE", " Negative ", "negative", None])))
    assert [e.gold for e in load_examples(p, labels=["negative", "positive"])] == \
        ["positive", "positive", "negative", "negative", None]
    with pytest.raises(DataError, match="label 'POSITIVE' is not in the label set"):  # two labels spell it so
        load_examples(p, labels=["negative", "positive", "Positive"])


def test_init_s_label_set_takes_spellings_of_one_label_as_one():
    from distilloop.data import merge_spellings

    labels, merged = merge_spellings(["spam", "Spam", " spam ", "HAM", "ham", "ham ", "Ham"])
    assert labels == ["ham", "spam"]  # the most common spelling, stripped
    assert merged == {"Spam": "spam", "HAM": "ham", "Ham": "ham"}
    assert merge_spellings(["A", "a"]) == (["a"], {"A": "a"})  # a tie: the lower-case one


def test_one_empty_field_of_several_is_kept_and_an_all_empty_row_is_not(tmp_path):
    """A ticket without a subject is a ticket: it used to stop `init` and `run` ("row has no 'subject'")."""
    spec = DataSpec(input_fields=("subject", "body"))
    p = write(tmp_path / "t.jsonl", [{"id": "1", "subject": "", "body": "my card is lost"},
                                     {"id": "2", "subject": None, "body": "refund?"},
                                     {"id": "3", "subject": "hello", "body": " "}])
    assert [e.fields for e in load_examples(p, spec)] == [
        {"subject": "", "body": "my card is lost"}, {"subject": "", "body": "refund?"},
        {"subject": "hello", "body": ""}]
    p = write(tmp_path / "e.jsonl", [{"id": "1", "subject": "x", "body": "y"}, {"id": "2", "subject": "", "body": None}])
    with pytest.raises(DataError, match=r"e.jsonl:2: every input field \('subject', 'body'\) is empty"):
        load_examples(p, spec)
    p = write(tmp_path / "m.jsonl", [{"id": "1", "subject": "x"}])  # a field the row lacks: a typo, most often
    with pytest.raises(DataError, match="row has no 'body'"):
        load_examples(p, spec)


def test_a_json_file_is_one_array_of_objects_or_json_lines(tmp_path):
    """`.json` was refused as an unknown format, yet it is what `pandas.to_json(orient="records")` and a Label
    Studio export write (an array), and what `datasets.Dataset.to_json` writes (JSON Lines)."""
    rows = [{"id": "1", "text": "good", "label": "pos"}, {"id": "2", "text": "bad", "label": "neg"}]
    array = tmp_path / "a.json"
    array.write_text("\n" + json.dumps(rows, indent=2))
    lines = tmp_path / "l.json"
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows))
    packed = tmp_path / "a.json.gz"
    with gzip.open(packed, "wt") as f:
        f.write(json.dumps(rows))
    for p in (array, lines, packed):
        assert [(e.id, e.gold) for e in load_examples(p, labels=["pos", "neg"])] == [("1", "pos"), ("2", "neg")]


@pytest.mark.parametrize("text,match", [
    ('[\n{"id": "1", "text": "x"},\n{"id": "2", "text": "y"},\n]', r"a.json:4: not valid JSON"),
    ('[\n{"id": "1", "text": "x"},\n5\n]', r"a.json:3: expected a JSON object in the array, got int"),
    ('[\n{"id": "1", "text": "x"}\n{"id": "2", "text": "y"}\n]', r"a.json:3: expected ',' or the array's closing"),
    ('[{"id": "1", "text": "x"}] [', r"a.json:1: expected ',' or the array's closing"),
    ('[\n{"id": "1",\n "text": ""}\n]', r"a.json:2: 'text' \(the input field\) is empty"),
])
def test_a_bad_json_array_names_the_line(tmp_path, text, match):
    p = tmp_path / "a.json"
    p.write_text(text)
    with pytest.raises(DataError, match=match):
        load_examples(p)


def test_a_semicolon_csv_is_read_by_its_header(tmp_path):
    """A spreadsheet where the comma is the decimal mark writes `;`: the whole line was one column named
    'text;label', and `init` offered it as the input field."""
    p = tmp_path / "d.csv"
    p.write_text('id;text;label\n1;"Schlecht, kaputt";neg\n2;Tolles Produkt;pos\n', encoding="utf-8")
    assert [(e.fields, e.gold) for e in load_examples(p, labels=["pos", "neg"])] == [
        ({"text": "Schlecht, kaputt"}, "neg"), ({"text": "Tolles Produkt"}, "pos")]
    one = tmp_path / "o.csv"  # one column whose texts hold semicolons: still a comma file
    one.write_text("text\nfirst; second\n", encoding="utf-8")
    assert [e.fields for e in load_examples(one)] == [{"text": "first; second"}]


def test_a_true_false_label_column_gives_the_labels_true_and_false(tmp_path):
    p = write(tmp_path / "d.jsonl", [{"id": "1", "text": "win money now", "label": True},
                                     {"id": "2", "text": "lunch at 1?", "label": False}])
    assert [e.gold for e in load_examples(p, labels=["false", "true"])] == ["true", "false"]
    p = write(tmp_path / "n.jsonl", [{"id": "1", "text": "x", "label": {"a": 1}}])
    with pytest.raises(DataError, match="n.jsonl:1: label must be a string, a number or true/false, got dict"):
        load_examples(p)


def test_several_text_fields_are_rendered_with_their_names():
    """An NLI pair was rendered "A man sleeps.\\nThe man is awake.": the teachers (and the reviewers in Label
    Studio) were asked whether "the hypothesis follows from the premise" without being told which line was
    which. Two or more text fields now come with their names; one field, or a question with its choices, as
    before (the recorded prompts of the benchmarks)."""
    assert render_input({"premise": "A man sleeps.", "hypothesis": "The man is awake."}) == \
        "premise: A man sleeps.\nhypothesis: The man is awake."
    assert render_input({"subject": "", "body": "my card is lost"}) == "body: my card is lost"
    assert render_input({"question": "2+2?"}) == "2+2?" and render_input({"text": "fine"}) == "fine"
    assert render_input({"question": "Where?", "context": "A park.", "choices": {"A": "here"}}) == \
        "question: Where?\ncontext: A park.\nchoices: (A) here"


def test_a_parquet_file_is_read_as_json_would_give_its_rows(tmp_path, monkeypatch):
    """A data set from the Hugging Face hub (or pandas' to_parquet) was "unknown data format". Parquet is read in
    batches; its multiple-choice column in the hub's shape ({"label": [...], "text": [...]}) is the choices."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"id": f"q{i}", "question": f"Where {i}?", "choices": {"label": ["A", "B"], "text": ["here", "there"]},
             "answerKey": "AB"[i % 2]} for i in range(10)]
    path = tmp_path / "cqa.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    spec = DataSpec(input_fields=("question", "choices"), label_field="answerKey")
    monkeypatch.setattr("distilloop.formats.PARQUET_BATCH", 3)  # read in batches of 3
    examples = load_examples(path, spec)
    assert [e.id for e in examples] == [f"q{i}" for i in range(10)]
    assert examples[1].fields == {"question": "Where 1?", "choices": {"A": "here", "B": "there"}}
    assert examples[1].gold == "B" and render_input(examples[1].fields) == "Where 1?\n(A) here (B) there"
    (tmp_path / "bad.parquet").write_text("id,text\n1,x\n")
    with pytest.raises(DataError, match=r"bad.parquet: not a readable Parquet file"):
        load_examples(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="data file not found"):
        load_examples(tmp_path / "none.parquet")


def test_a_hub_parquets_class_codes_are_read_as_their_names(tmp_path):
    """A hub export (`datasets`' to_parquet) keeps a ClassLabel column as codes 0, 1 and the names in the file's
    metadata: init made a campaign asking the teachers for "0" or "1", and the hub's -1 ("no label", a test split)
    was a label. The rows are read with the names, -1 as no label; a column that is not a ClassLabel is untouched."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{"id": str(i), "text": f"t{i}", "label": code, "stars": code}
                                  for i, code in enumerate([0, 1, -1, 1])])
    hub = {"info": {"features": {"text": {"dtype": "string", "_type": "Value"},
                                 "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}}}}
    path = tmp_path / "train.parquet"
    pq.write_table(table.replace_schema_metadata({"huggingface": json.dumps(hub)}), path)
    from distilloop.formats import rows

    read = [r for _, r in rows(path)]
    assert [r["label"] for r in read] == ["neg", "pos", None, "pos"] and [r["stars"] for r in read] == [0, 1, -1, 1]
    examples = load_examples(path, DataSpec(test_fraction=0))
    assert [e.gold for e in examples] == ["neg", "pos", None, "pos"]
    pq.write_table(table.replace_schema_metadata({"huggingface": "not json"}), path)  # unreadable: left as codes
    assert [r["label"] for _, r in rows(path)] == [0, 1, -1, 1]


def test_a_windows_1252_csv_names_its_line_and_how_to_convert_it(tmp_path):
    """Excel's plain "CSV" on Windows is cp1252: the error was Python's codec message with a byte offset into a
    read buffer; it names the line now and the conversion (for a gzipped file, through zcat)."""
    p = tmp_path / "avis.csv"
    p.write_bytes("id,text,label\n1,fine,pos\n2,café très bon,pos\n".encode("cp1252"))
    with pytest.raises(DataError, match=r"avis.csv:3: not UTF-8 \(byte 0xe9 there is not valid UTF-8; .*save the "
                                        r"file as UTF-8 \(Excel: 'CSV UTF-8'\), or convert it: iconv -f cp1252 -t "
                                        r"utf-8 avis.csv > utf8-avis.csv"):
        load_examples(p)
    z = tmp_path / "avis.csv.gz"
    z.write_bytes(gzip.compress(p.read_bytes()))
    with pytest.raises(DataError, match=r"avis.csv.gz:3: .*zcat avis.csv.gz \| iconv -f cp1252 -t utf-8 \| gzip"):
        load_examples(z)
    p.write_bytes(p.read_bytes().decode("cp1252").encode("utf-8"))
    assert load_examples(p)[1].text == "café très bon"


def test_a_csv_with_a_space_after_each_comma_is_read_by_its_names(tmp_path):
    """"id, text, label" (a hand-written or exported CSV) had columns " text" and " label": init found no text
    column, and a quoted cell after a space ( "great, really") was split at its comma."""
    p = tmp_path / "sp.csv"
    p.write_text('id, text, label\n1, "great, really", pos\n2, awful, neg\n')
    examples = load_examples(p, DataSpec(test_fraction=0))
    assert [(e.id, e.fields, e.gold) for e in examples] == [("1", {"text": "great, really"}, "pos"),
                                                             ("2", {"text": "awful"}, "neg")]


def test_a_spreadsheets_unnamed_empty_columns_are_left_out(tmp_path):
    """"id,text,label,," (Excel's trailing empty columns) was refused: "the header names a column twice". They are
    left out while empty; a value under a column without a name is refused, naming the column."""
    p = tmp_path / "ex.csv"
    p.write_text("id,text,label,,\n1,great,pos,,\n2,awful,neg, ,\n")
    assert [(e.fields, e.gold) for e in load_examples(p, DataSpec(test_fraction=0))] == [
        ({"text": "great"}, "pos"), ({"text": "awful"}, "neg")]
    p.write_text("id,text,,label\n1,great,x,pos\n")
    with pytest.raises(DataError, match=r"ex.csv:2: column 3 has a value \('x'\) but no name in the header"):
        load_examples(p)
    # pandas' df.to_csv() (index=True, its default) writes the index first under no name: it was refused as
    # "column 1 has a value ('0') but no name"; it is not read. A first unnamed column of text still is refused.
    p.write_text(",id,text,label\n0,a1,great,pos\n1,a2,awful,neg\n7,a3,fine,pos\n")
    assert [(e.id, e.text) for e in load_examples(p, DataSpec(test_fraction=0))] == [
        ("a1", "great"), ("a2", "awful"), ("a3", "fine")]
    p.write_text(",id,label\ngreat film,a1,pos\n")
    with pytest.raises(DataError, match=r"ex.csv:2: column 1 has a value \('great film'\) but no name"):
        load_examples(p, DataSpec(input_fields=("id",)))


def test_a_tsv_whose_quotes_are_text_keeps_them_and_a_stray_csv_quote_names_its_line(tmp_path):
    """A TSV written without quoting (GLUE's, many tools'): '"Wow" he said' lost its quotes, and a cell opening
    a quote it never closed took the rows after it into one cell (three rows became one, silently). Such a TSV
    is read with its quotes as text; a TSV that quotes as CSV does (pandas) is read as before; in a CSV a stray
    quote is refused naming the line where it opens."""
    tsv = tmp_path / "glue.tsv"
    tsv.write_text('id\ttext\tlabel\n1\t"Wow" he said\tpos\n2\t"bad start\tneg\n3\tthe best" film\tpos\n4\tok\tneg\n')
    assert [e.text for e in load_examples(tsv, DataSpec(test_fraction=0))] == [
        '"Wow" he said', '"bad start', 'the best" film', "ok"]
    quoted = tmp_path / "pandas.tsv"
    quoted.write_text('id\ttext\tlabel\n1\t"He said ""hi""\tthen\n left"\tpos\n2\tplain\tneg\n')
    assert [e.text for e in load_examples(quoted, DataSpec(test_fraction=0))] == ['He said "hi"\tthen\n left',
                                                                                 "plain"]
    csv = tmp_path / "d.csv"
    csv.write_text('id,text,label\n1,"Wow he said,pos\n2,bye,neg\n3,the best" film,pos\n4,ok,neg\n')
    with pytest.raises(DataError, match=r"d.csv:2: a quote opens a cell there and runs to line 4 and closes before"):
        load_examples(csv)
    csv.write_text('id,text,label\n1,ok,pos\n2,"Wow" he said,neg\n')
    with pytest.raises(DataError, match=r"d.csv:3: a quote opens a cell there and closes before the cell ends"):
        load_examples(csv)
    csv.write_text('id,text,label\n1,ok,pos\n2,"never closed,neg\n')
    with pytest.raises(DataError, match=r"d.csv:3: a quote opens a cell there and never closes"):
        load_examples(csv)
    csv.write_text('id,text,label\n1,He said "hi" ok,pos\n')  # a quote inside an unquoted cell is text
    assert load_examples(csv, DataSpec(test_fraction=0))[0].text == 'He said "hi" ok'


def test_the_hubs_split_names_are_the_pool_and_the_dev_split(tmp_path):
    """A hub or scikit-learn export's split column says train/validation/test: every row was refused ("split 'train'
    is not one of pool, dev, test"). A train split is the pool to label, a validation split the dev split."""
    rows = [{"id": str(i), "text": f"t{i}", "label": "pos", "split": s}
            for i, s in enumerate(["train", "validation", "test", "Train", " VAL ", "dev", "pool", "", "unsupervised"])]
    examples = load_examples(write(tmp_path / "hub.jsonl", rows), DataSpec(test_fraction=0, dev_fraction=0))
    # IMDB's third split, "unsupervised", is rows without labels: the pool
    assert [e.split for e in examples] == ["pool", "dev", "test", "pool", "dev", "dev", "pool", "pool", "pool"]
    with pytest.raises(DataError, match=r"hub.jsonl:1: split 'holdout' is not one of pool, dev, test \(or train or unlabeled: the pool, validation: the dev split\)"):
        load_examples(write(tmp_path / "hub.jsonl", [{"id": "1", "text": "t", "split": "holdout"}]))


def test_a_nested_object_is_read_by_dotted_field_names(tmp_path):
    """An API dump's {"review": {"title": ..., "body": ...}} was refused ("must be text ... write it as a
    string"): the user had to flatten the file. A dotted input field reads into the object; naming the object
    itself says which dotted names to use."""
    rows = [{"id": "1", "review": {"title": "Bad", "body": "awful"}, "label": "neg"},
            {"id": "2", "review": {"title": "Good", "body": "fine"}, "label": "pos"}]
    p = write(tmp_path / "api.jsonl", rows)
    examples = load_examples(p, DataSpec(input_fields=("review.title", "review.body"), test_fraction=0))
    assert examples[0].text == "review.title: Bad\nreview.body: awful" and examples[1].gold == "pos"
    with pytest.raises(DataError, match=r"api.jsonl:1: input field 'review' is an object .*input_fields = "
                                        r'\["review.title", "review.body"\]'):
        load_examples(p, DataSpec(input_fields=("review",)))
    with pytest.raises(DataError, match=r"api.jsonl:1: row has no 'review.stars'"):
        load_examples(p, DataSpec(input_fields=("review.stars",)))
    nested = write(tmp_path / "meta.jsonl", [{"meta": {"id": "a", "gold": "pos", "split": "test"}, "text": "fine"}])
    [e] = load_examples(nested, DataSpec(id_field="meta.id", label_field="meta.gold", split_field="meta.split"))
    assert (e.id, e.gold, e.split) == ("a", "pos", "test")


@pytest.mark.parametrize("orient", ["columns", "index", "split", "table", "records"])
def test_a_json_file_in_any_shape_pandas_writes_is_read_by_rows(tmp_path, orient):
    """`df.to_json("data.json")` writes pandas' default, column by column ({"text": {"0": ...}}): read as JSON Lines
    it was one row whose text was an object ("name the parts with dotted fields: text.0, text.1"); the index
    and split shapes were "several columns that could be inputs (0, 1, 2)". Each shape is read as its rows, an
    index of one's own as their ids."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text": ["good film", "bad film", "fine"], "label": ["pos", "neg", "pos"]})
    p = tmp_path / "frame.json"
    frame.to_json(p, orient=orient)
    examples = load_examples(p, DataSpec(test_fraction=0))
    assert [(e.text, e.gold) for e in examples] == [("good film", "pos"), ("bad film", "neg"), ("fine", "pos")]
    frame.index = ["a", "b", "c"]
    if orient in ("columns", "index"):
        frame.to_json(p, orient=orient, indent=2)
        assert [e.id for e in load_examples(p, DataSpec(test_fraction=0))] == ["a", "b", "c"]


def test_a_json_object_wrapping_the_rows_is_read_as_its_rows(tmp_path):
    """`{"version": "1.0", "data": [...]}` (an API's or a hand-written export) was read as one row ("several
    columns that could be inputs (version, data)"), and `{"train": [...], "test": [...]}` as one row of two
    columns; the rows of the one list, or of each split's list as that split, are read."""
    rows = [{"id": str(i), "text": f"film {i}", "label": "pos" if i % 2 else "neg"} for i in range(6)]
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"version": "1.0", "count": 6, "data": rows}, indent=2))
    assert [(e.id, e.gold) for e in load_examples(wrapped, DataSpec(test_fraction=0))] == \
        [(r["id"], r["label"]) for r in rows]
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": rows[:4], "validation": rows[4:5], "test": rows[5:]}))
    assert [e.split for e in load_examples(splits, DataSpec())] == ["pool"] * 4 + ["dev", "test"]
    grouped = tmp_path / "grouped.json"
    grouped.write_text(json.dumps({"neg": rows[::2], "pos": rows[1::2]}))
    with pytest.raises(DataError, match=r"grouped.json: one JSON object holding lists of rows under neg, pos, not "
                                        r"split names .*: write the rows as one JSON array, or JSON Lines"):
        load_examples(grouped, DataSpec())
    one = tmp_path / "one.json"  # one object that is one row stays one row
    one.write_text(json.dumps({"id": "x", "text": "film", "tags": [{"a": 1}], "label": "pos"}))
    assert [e.id for e in load_examples(one, DataSpec(test_fraction=0))] == ["x"]


def test_the_held_out_splits_hold_each_label_in_its_share(tmp_path):
    """Stratified: a file 5% one label (30 of 600 rows) gives a 10% dev split 3 of them and a 20% test split 6,
    whatever the seed; a random draw gave the test split 1 to 11 and the dev split 0 to 5 over these seeds. The
    splits keep their sizes."""
    data = tmp_path / "skewed.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "text": f"row {i}", "label": "rare" if i % 20 == 0 else "common"})
                            + "\n" for i in range(600)))
    for seed in range(10):
        rows = load_examples(data, DataSpec(test_fraction=0.2, dev_fraction=0.1, seed=seed))
        held = [(e.split, e.gold) for e in rows]
        assert (held.count(("test", "rare")), held.count(("dev", "rare"))) == (6, 3)
        assert sum(s == "test" for s, _ in held) == 120 and sum(s == "dev" for s, _ in held) == 60


def test_rows_with_the_same_input_are_held_out_together_and_a_leak_is_said(tmp_path):
    """Support tickets repeat ("Cancel my plan" many times): the test split drawn row by row took copies of pool
    rows, and the student was judged on items it had trained on. Rows with the same input are now held out
    together or not at all (and never when a row the file puts in the pool has it); splits the file names that
    leak are said."""
    from collections import defaultdict

    from distilloop.data import held_out_in_pool

    rows = [{"id": str(i), "text": f"ticket {i % 25}", "label": "ab"[i % 25 % 2]} for i in range(100)]
    rows.append({"id": "p", "text": "ticket 3", "label": "b", "split": "pool"})  # named pool: its copies stay
    examples = load_examples(write(tmp_path / "t.jsonl", rows), DataSpec(test_fraction=0.2, dev_fraction=0.1))
    splits = defaultdict(set)
    for e in examples:
        splits[e.text].add(e.split)
    assert all(len(s) == 1 for s in splits.values()) and splits["ticket 3"] == {"pool"}
    assert {e.split for e in examples} == {"pool", "dev", "test"} and held_out_in_pool(examples) is None
    assert sum(e.split == "test" for e in examples) == 20  # whole groups of 4 make up the fraction
    rows = [{"id": "1", "text": "same", "label": "a", "split": "test"}, {"id": "2", "text": "same", "label": "a"},
            {"id": "3", "text": "other", "label": "b"}]
    named = load_examples(write(tmp_path / "n.jsonl", [{**r, "split": r.get("split", "pool")} for r in rows]),
                          DataSpec(test_fraction=0))
    assert held_out_in_pool(named).startswith("1 test row(s) have the same input as a pool row")


def test_a_hugging_face_dataset_saved_to_disk_is_read_with_its_splits(tmp_path):
    """`ds.save_to_disk(folder)` (and distilloop's own `export --format hf`) writes a folder of Arrow shards: it was
    "cannot be read ([Errno 21] Is a directory)", an .arrow shard "unknown data format". A DatasetDict's splits are
    the rows' splits (train the pool, test the test split), its ClassLabel codes their names, and a folder has a
    sha256 of its own (a data version)."""
    datasets = pytest.importorskip("datasets")
    from distilloop.data import file_sha256

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}, features=features),
        "test": datasets.Dataset.from_dict({"text": ["c", "d"], "label": [1, -1]}, features=features)})
    dd.save_to_disk(str(tmp_path / "dd"))
    examples = load_examples(tmp_path / "dd", DataSpec(test_fraction=0))
    assert [(e.id, e.text, e.gold, e.split) for e in examples] == [
        ("row-1", "a", "neg", "pool"), ("row-2", "b", "pos", "pool"), ("row-3", "c", "pos", "test"),
        ("row-4", "d", None, "test")]
    shard = next((tmp_path / "dd" / "train").glob("*.arrow"))
    assert [(e.text, e.gold) for e in load_examples(shard, DataSpec(test_fraction=0))] == [("a", "neg"), ("b", "pos")]
    before = file_sha256(tmp_path / "dd")
    dd["train"].save_to_disk(str(tmp_path / "one"))  # a Dataset folder, no splits
    assert [e.split for e in load_examples(tmp_path / "one", DataSpec(test_fraction=0))] == ["pool", "pool"]
    assert file_sha256(tmp_path / "dd") == before != file_sha256(tmp_path / "one")
    pa = pytest.importorskip("pyarrow")  # the Arrow file format (pyarrow's own), not only the stream datasets writes
    table = pa.table({"id": ["a", "b"], "text": ["x", "y"], "label": ["pos", "neg"]})
    with pa.OSFile(str(tmp_path / "f.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    assert [(e.id, e.gold) for e in load_examples(tmp_path / "f.arrow", DataSpec(test_fraction=0))] == [
        ("a", "pos"), ("b", "neg")]
    (tmp_path / "bad.arrow").write_text("not arrow")
    with pytest.raises(DataError, match=r"bad.arrow: not a readable Arrow file"):
        load_examples(tmp_path / "bad.arrow")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: a folder, not a Hugging Face dataset saved to disk .*\(it holds none\)"):
        load_examples(tmp_path / "empty")
    (tmp_path / "parts").mkdir()  # a data set in shards: one is the campaign's data, the others come with `add`
    for name in ("b.jsonl", "a.jsonl"):
        (tmp_path / "parts" / name).write_text('{"id": "x", "text": "t"}\n')
    with pytest.raises(DataError, match=r"parts: a folder, .*name a data file \(a.jsonl, b.jsonl\), and add the "
                                        r"others with `distilloop add`"):
        load_examples(tmp_path / "parts")


def test_a_list_label_is_one_label_or_refused_as_multi_label(tmp_path):
    """A multi-label export's ["x", "y"] was "label must be a string, a number or true/false, got list": the user
    could not tell that a row can have only one label. A one-element list is that label, an empty one none, and
    two or more are refused saying so."""
    p = write(tmp_path / "ml.jsonl", [{"id": "1", "text": "a", "label": ["x"]}, {"id": "2", "text": "b", "label": []},
                                      {"id": "3", "text": "c", "label": "y"}])
    assert [e.gold for e in load_examples(p, DataSpec(test_fraction=0))] == ["x", None, "y"]
    p = write(tmp_path / "ml.jsonl", [{"id": "1", "text": "a", "label": ["x", "y"]}])
    with pytest.raises(DataError, match=r"ml.jsonl:1: label is a list \(\['x', 'y'\]\): .* multi-label rows are not"):
        load_examples(p)


def test_a_label_studio_json_export_is_read_as_its_tasks_fields_and_answers(tmp_path):
    """Label Studio's JSON export nests each row ({"id", "data": {...}, "annotations": [...]}, the keys as a real
    1.x server exports them): init said "several that could be inputs (data, annotations, predictions)". Its tasks
    are read as their data fields, the task id, and the first annotation not cancelled, by control name."""
    def task(i, data, annotations=(), **extra):
        return {"id": i, "annotations": list(annotations), "drafts": [], "predictions": [], "data": data, "meta": {},
                "created_at": "2026-12-05T12:00:23Z", "updated_at": "2026-12-05T12:00:24Z", "inner_id": i,
                "total_annotations": len(annotations), "cancelled_annotations": 0, "total_predictions": 0,
                "comment_count": 0, "unresolved_comment_count": 0, "last_comment_updated_at": None, "project": 1,
                "updated_by": 1, "comment_authors": [], "allow_skip": True, **extra}

    def annotation(*result, cancelled=False):
        return {"id": 1, "completed_by": 1, "result": list(result), "was_cancelled": cancelled, "ground_truth": False}

    choice = lambda v: {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [v]}}  # noqa: E731
    why = {"from_name": "why", "to_name": "text", "type": "textarea", "value": {"text": ["the tone", "throughout"]}}
    tasks = [task(1, {"text": "awful"}, [annotation(choice("Negative"), why)]),
             task(2, {"text": "fine", "ref": "r2"}, [annotation(cancelled=True), annotation(choice("Positive"))]),
             task(3, {"text": "meh", "id": "own-3"}, [annotation(cancelled=True)]),
             task(4, {"text": "so so"}, predictions=[{"result": [choice("Positive")]}], agreement=None)]  # a newer key
    array = tmp_path / "project-1-at-2026-12-05.json"
    array.write_text(json.dumps(tasks, indent=2))
    spec = DataSpec(label_field="sentiment", rationale_field="why", test_fraction=0)
    examples = load_examples(array, spec)
    assert [(e.id, e.text, e.gold) for e in examples] == [("1", "awful", "Negative"), ("2", "fine", "Positive"),
                                                          ("own-3", "meh", None), ("4", "so so", None)]
    assert examples[0].gold_rationale == "the tone\nthroughout"
    lines = write(tmp_path / "tasks.jsonl", tasks)  # the same tasks one a line
    assert [(e.id, e.gold) for e in load_examples(lines, spec)] == [(e.id, e.gold) for e in examples]
    # a row with keys a task does not have is not a task: read as it is
    odd = write(tmp_path / "odd.jsonl", [{"id": "1", "data": {"text": "x"}, "text": "plain", "label": "pos"}])
    assert [(e.text, e.gold) for e in load_examples(odd, DataSpec(test_fraction=0))] == [("plain", "pos")]
    # two choices in one control: the reader's multi-label refusal, not a silent first pick
    two = tmp_path / "two.json"
    two.write_text(json.dumps([task(1, {"text": "x"}, [annotation({**choice("Negative"), "value": {
        "choices": ["Negative", "Positive"]}})])]))
    with pytest.raises(DataError, match="multi-label rows are not supported"):
        load_examples(two, spec)
    out = subprocess.run([sys.executable, "-m", "distilloop.cli", "init", str(array), "--out",
                          str(tmp_path / "c.toml")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'label_field = "sentiment"' in (tmp_path / "c.toml").read_text()
