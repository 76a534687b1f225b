"""The starter campaign file `distilloop init` writes: the demo's settings (``examples/rt_demo``), measured by
``benchmarks/defaults.py``, filled in for a data file (its input, label and id columns, read off its first row),
and the changes its data call for (numeric answers; held-out splits sized to the file; labels whose gold shares are
skewed). The columns it is filled in with: :mod:`distilloop.cli.columns`."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from distilloop.errors import UserInputError

STARTER = '''# distilloop campaign, written by `distilloop init`. Every key is documented in docs/campaign-file.md.
# The settings are the demo's (examples/rt_demo), which benchmarks/defaults.py measured (docs/benchmarks.md).
[campaign]
name = {name}
labels = {labels}
task = {task}
seed = 0

[data]
path = {path}
input_fields = {fields}
test_fraction = 0.2   # for rows without a "split" field: held out (rows with a gold label only) to report on...
dev_fraction = 0.1    # ...and to choose the student on

[budget]
max_tokens_in = 200000
max_tokens_out = 50000
max_usd = 1.00

[rounds]
max_rounds = 5
initial_size = 20     # first round: before any student exists
batch_size = 20

[strategy]
name = "mixture"      # half random, half k-means: representative batches that cover the pool

[[teachers]]
name = "qwen-1.5b"
kind = "llama_cpp"
model = "qwen2.5-coder-1.5b"
max_tokens = 96

[[teachers]]
name = "qwen-0.5b"
kind = "llama_cpp"
model = "qwen2.5-coder-0.5b"
max_tokens = 96

[routing]
min_agreement = 0.75  # a split between the teachers goes to review
cascade = ["qwen-1.5b", "qwen-0.5b"]   # the stronger teacher first, the second only where it is unsure
cascade_min_confidence = 0.8

[aggregation]
method = "confidence_weighted"
calibrate = "batch"   # remove each teacher's lean toward one label, fitted to the label shares of the dev gold
calibrate_prior = "auto"   # labels (or an audit set) where unequal, else equal shares; or yours: {shares}

[rationales]
policy = "auto"       # rationales only where they are used: a student that learns from them, or a reviewer

[review]
kind = "auto"         # "label_studio" sends the disagreements to people (docs/review.md)

[student]
kind = "embedding_linear"
model = "mpnet"       # all-mpnet-base-v2, a frozen encoder (the mpnet extra)
C = 1.0

[evaluation]
metric = "accuracy"

[stopping]
stabilizing = false   # true: stop once the student's predictions on a fixed stop set stop changing
'''


#: the starter's teachers and cascade, which ``--teachers`` replaces
LOCAL_TEACHERS = STARTER[STARTER.index("[[teachers]]"):STARTER.index("[routing]")]
CASCADE = ('cascade = ["qwen-1.5b", "qwen-0.5b"]   # the stronger teacher first, the second only where it is unsure\n'
           "cascade_min_confidence = 0.8\n")
#: model name prefixes -> the teacher kind that asks them
API_KINDS = (("gpt-", "openai"), ("chatgpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
             ("claude-", "anthropic"))


def with_teachers(text: str, spec: str, numeric: bool) -> tuple[str, list[str]]:
    """The starter with ``--teachers``' models (comma-separated, asked in that order) in place of the local pair:
    a packaged local model or ``.gguf`` file runs in the process, ``gpt-``/``o*`` models on OpenAI, ``claude-`` on
    Anthropic. Returns the text and the notes to print."""
    from distilloop.annotators.models import MODELS
    from distilloop.annotators.pricing import TABLE

    models = [m.strip() for m in spec.split(",") if m.strip()]
    if not models or len(set(models)) != len(models):
        raise UserInputError(f"--teachers: give each model once, comma-separated, e.g. --teachers gpt-4o-mini,"
                             f"claude-haiku-4-5 (got {spec!r})")
    blocks, names, notes, keys = [], [], [], []
    for model in models:
        kind = ("llama_cpp" if model in MODELS or model.endswith(".gguf") else
                next((k for prefix, k in API_KINDS if model.startswith(prefix)), None))
        if kind is None:
            raise UserInputError(f"--teachers: cannot tell which API serves {model!r}: name OpenAI models (gpt-...), "
                                 f"Anthropic ones (claude-...), packaged local ones ({', '.join(MODELS)}) or a .gguf "
                                 "file; for a model on an OpenAI-compatible server, edit the written file (kind = "
                                 "\"openai_compatible\" and base_url: docs/teachers.md)")
        if model.endswith(".gguf") and not Path(model).expanduser().is_file():
            raise UserInputError(f"--teachers: model file not found: {model}; give the path to a .gguf file")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(model).stem if model.endswith(".gguf") else model).strip("-")
        names.append(name)
        lines = [f"name = {toml_value(name)}", f"kind = {toml_value(kind)}", f"model = {toml_value(model)}"]
        if kind == "llama_cpp":
            lines.append("max_tokens = 300\nrationale_max_chars = 700   # room for the working" if numeric
                         else "max_tokens = 96")
        else:
            if numeric:  # the default 256 can cut a worked answer short
                lines.append("max_tokens = 400   # room for the working")
            keys.append("OPENAI_API_KEY" if kind == "openai" else "ANTHROPIC_API_KEY")
            if model not in TABLE:
                lines.append("# price = { input = 0.0, output = 0.0 }   # USD per 1M tokens: give this model's")
                notes.append(f"distilloop has no price for {model!r}: give it in its [[teachers]] entry (price = "
                             "{ input = ..., output = ... }, USD per 1M tokens) before `distilloop run`")
        blocks.append("[[teachers]]\n" + "\n".join(lines) + "\n")
    text = text.replace(LOCAL_TEACHERS if not numeric else LOCAL_TEACHERS.replace(
        "max_tokens = 96\n", "max_tokens = 300\nrationale_max_chars = 700   # room for the working\n"),
        "\n".join(blocks) + "\n", 1)
    if not numeric:
        cascade = (f"cascade = {toml_value(names)}   # in the order given: the next only where those before are "
                   "unsure\ncascade_min_confidence = 0.8\n") if len(names) > 1 else ""
        text = text.replace(CASCADE, cascade, 1)
    if keys:
        notes.append(f"the teachers read their keys from {' and '.join(sorted(set(keys)))} (never from the file); "
                     "`distilloop estimate` gives the cost before anything is paid, `distilloop pilot` tries them on "
                     "30 items. The defaults around them were measured with the local teachers (docs/benchmarks.md)")
    return text, notes


#: the most labels the starter's comment spells out a share table for (a longer one would fill the line)
SHARES_SPELLED = 4


def toml_value(value: object) -> str:
    """A TOML value for a string or a list of strings, written as people type them (``"très bien"``, not
    ``"tr\\u00e8s bien"``): JSON's escapes are TOML's, except DEL, which TOML wants escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def shares_example(labels: list[str]) -> str:
    """An inline TOML table of label shares for the starter's comment: the first label 80%, the rest even; for
    more than ``SHARES_SPELLED`` labels its shape only (a label the table leaves out gets almost no share)."""
    keys = [x if re.fullmatch(r"[A-Za-z0-9_-]+", x) else toml_value(x) for x in labels]
    if len(keys) > SHARES_SPELLED:
        return f"{{ {keys[0]} = 0.3, {keys[1]} = 0.1, ... }}, every label's share"
    return "{ " + ", ".join(f"{k} = {0.8 if i == 0 else round(0.2 / (len(keys) - 1), 3)}" for i, k in enumerate(keys)) + " }"


def label_list(labels: Sequence[str], most: int = 8) -> str:
    """The labels for a one-line message: every one up to ``most``, else the first and last few and the count."""
    if len(labels) <= most:
        return str(list(labels))
    return f"{len(labels)}: {', '.join(labels[:3])}, ... {', '.join(labels[-2:])}"


def numeric_starter(text: str) -> str:
    """The starter for a campaign whose answers are numbers: no label set, random selection (the other strategies
    need label probabilities), majority votes, a student that generates its answer, room for the working."""
    swaps = [
        ("labels = {labels}\n", 'answer = "number"   # open numeric answers (math word problems): no label set\n'),
        ('name = "mixture"      # half random, half k-means: representative batches that cover the pool\n',
         'name = "random"      # the other strategies need label probabilities\n'),
        ("max_tokens = 96\n", "max_tokens = 300\nrationale_max_chars = 700   # room for the working\n"),
        ('cascade = ["qwen-1.5b", "qwen-0.5b"]   # the stronger teacher first, the second only where it is unsure\n'
         "cascade_min_confidence = 0.8\n", ""),
        ('method = "confidence_weighted"\n', 'method = "majority"\n'),
        (STARTER[STARTER.index('calibrate = "batch"'):STARTER.index("[rationales]")], "\n"),
        ('kind = "embedding_linear"\nmodel = "mpnet"       # all-mpnet-base-v2, a frozen encoder (the mpnet extra)\n'
         "C = 1.0\n", 'kind = "step_by_step"  # generates its answer (a GPU helps: see README)\n'),
    ]
    for old, new in swaps:
        assert old in text, old
        text = text.replace(old, new)
    return text


#: the held-out rows `init` asks of a large file (20% / 10% below 25,000 / 20,000 rows with gold): 5,000 test rows
#: tell two students apart within about 1.4 points (95%), and every held-out row is embedded before round 1 reports
HELD_OUT = {"test": (0.2, 5000), "dev": (0.1, 2000)}


#: the dev rows `init` asks of a small file where its 10% would be fewer: what decisions need
#: (student_warnings.MIN_DECISION_ROWS), from SMALL_FILE rows with gold on (below, 30 rows would be over a fifth of it)
MIN_DEV, SMALL_FILE = 30, 150


def fit_to_data(text: str, golds: Sequence[str | None], numeric: bool, *, dev_named: int = 0,
                texts: Sequence[str] = ()) -> tuple[str, str | None]:
    """The starter's changes a file's gold labels call for: held-out splits of a large file capped at
    ``HELD_OUT``'s rows (the rest stay in the pool), a small file's dev split raised to ``MIN_DEV`` rows with the
    ``dev_named`` rows the file puts there itself, (a label set) the metric of skewed labels, and a student that
    reads the ``texts`` (a sample of the inputs) where the sentence encoder would not."""
    text, unread = readable_student(text, texts)
    n = sum(g is not None for g in golds) - dev_named
    capped = {s: cap / n for s, (share, cap) in HELD_OUT.items() if n * share > cap}
    said = None
    need = MIN_DEV - dev_named
    if SMALL_FILE <= n and n * HELD_OUT["dev"][0] < need:
        share = math.ceil(100 * need / n) / 100
        text = re.sub(r"^dev_fraction = .*$", f"dev_fraction = {share}   # ...and {round(n * share)} rows to choose the "
                      "student on (10% would be too few to tell students apart)", text, count=1, flags=re.M)
        said = (f"note: {n:,} rows with gold: about {round(n * share)} held out as dev ([data] dev_fraction = {share}), "
                f"not 10% ({round(n * HELD_OUT['dev'][0])})" + (f", with the file's {dev_named}" if dev_named else "")
                + f": students are chosen and promoted on them, and fewer than {MIN_DEV} cannot tell a better student "
                "from a luckier one")
    elif 0 < n and n * HELD_OUT["dev"][0] + dev_named < MIN_DEV:  # too few to raise it to MIN_DEV
        said = (f"note: {n:,} rows with gold: the dev split gets about {round(n * HELD_OUT['dev'][0]) + dev_named}, too "
                f"few to choose students on (fewer than {MIN_DEV} cannot tell a better student from a luckier one): "
                "give more rows a gold label (split = \"dev\"), or decide on a held-out set the teachers label "
                "([evaluation] reference = \"teachers\")")
    lines = {"test": '{x}   # about {cap:,} of the {n:,} rows with gold (without a "split" field): held out to report on',
             "dev": "{x}   # ...and about {cap:,} to choose the student on; the rest stay in the pool"}
    if capped:
        for split, share in capped.items():
            text = re.sub(rf"^{split}_fraction = .*$", f"{split}_fraction = " + lines[split].format(
                x=float(f"{share:.2g}"), cap=HELD_OUT[split][1], n=n), text, count=1, flags=re.M)
        said = (f"note: {n:,} rows with gold: {' and '.join(f'about {HELD_OUT[s][1]:,} held out as {s}' for s in capped)}, "
                f"not {' and '.join(f'{100 * HELD_OUT[s][0]:.0f}%' for s in capped)} ([data] test_fraction, "
                "dev_fraction): enough to tell students apart within about 1.4 points, embedded in minutes rather "
                "than hours before the first report; the other rows stay in the pool")
    text, note = (text, None) if numeric else skewed_metric(text, [str(g) for g in golds if g is not None])
    # a small file's dev split is too small whatever its labels (said above); one that names its dev rows chose them
    text, rare = (text, None) if numeric or dev_named or note is None or n < SMALL_FILE else rare_dev(text, golds)
    text, alone = (text, None) if numeric else strong_teacher_alone(text)
    return text, "\n".join(x for x in (said, note, rare, unread, alone) if x) or None


#: the starter's second local teacher, which a label set of more than two labels leaves out
WEAK_TEACHER = LOCAL_TEACHERS[LOCAL_TEACHERS.index('[[teachers]]\nname = "qwen-0.5b"'):]


def strong_teacher_alone(text: str) -> tuple[str, str | None]:
    """``text`` with the 1.5B local teacher alone where the label set has more than two labels: there the 0.5B
    one is near chance, and the cascade asked it about most items (under 0.8 confidence with five labels). On the
    recorded CommonsenseQA answers the labels were 56.0% right at 297 tokens an item with both, 65.3% at 154 alone
    (``benchmarks/multiclass_teachers.py``); on a 5-label ticket file 82.0% and 93.0%. Unchanged where the file
    names its teachers (``--teachers``) or has two labels (Rotten Tomatoes: 85.4% with both, 86.1% alone)."""
    import tomllib

    m = re.search(r"^labels = .*$", text, flags=re.M)
    labels = tomllib.loads(m.group(0))["labels"] if m else []
    if len(labels) <= 2 or LOCAL_TEACHERS not in text or CASCADE not in text:
        return text, None
    text = text.replace(WEAK_TEACHER, "", 1).replace(CASCADE, "", 1)
    text = text.replace('max_tokens = 96\n', 'max_tokens = 96   # alone: with more than two labels the 0.5B teacher '
                        'is near chance (benchmarks/multiclass_teachers.py)\n', 1)
    text = text.replace("min_agreement = 0.75  # a split between the teachers goes to review",
                        "min_agreement = 0.75  # an item the teacher is unsure of goes to review", 1)
    return text, (f"note: {len(labels)} labels: the 1.5B local teacher alone, without the 0.5B one, which is near "
                  "chance beyond two labels (on CommonsenseQA's five: 65.3% of labels right alone, 56.0% with both, "
                  "at twice the tokens; benchmarks/multiclass_teachers.py); `--teachers` names others")


#: the largest dev share `init` takes to give a skewed file's rarest label the dev rows that macro-F1 decisions
#: need (``MIN_RARE_ROWS``: with fewer, `run` warns they rest on a handful of it)
MAX_DEV_SHARE = 0.3


def rare_dev(text: str, golds: Sequence[str | None]) -> tuple[str, str | None]:
    """``text`` (deciding on macro-F1: skewed gold labels) with a dev share that holds ``MIN_RARE_ROWS`` rows of
    the rarest label (when it is under half its even share, as the warning judges it), up to ``MAX_DEV_SHARE``;
    past that, a note. On a 91%-negative file the 10% dev split held 11 positive rows, and students were promoted
    on a dev macro-F1 that rose while the test's fell."""
    from distilloop.loop.student_warnings import MIN_RARE_ROWS, rare_label

    m = re.search(r"^dev_fraction = ([0-9.]+)", text, flags=re.M)
    counts = Counter(g for g in golds if g is not None)
    share = float(m.group(1)) if m else 0.0
    found = rare_label(counts, sorted(counts), share) if m and len(counts) >= 2 else None
    if found is None:
        return text, None
    label, k = found
    need = math.ceil(100 * MIN_RARE_ROWS / k) / 100
    if need > MAX_DEV_SHARE:
        return text, (f"note: {k} rows of {label!r} have gold, so the dev split gets about {round(k * share)} of them: "
                      f"macro-F1 decisions rest on a handful; gold dev rows of {label!r} (split = \"dev\") make "
                      "them firmer")
    text = re.sub(r"^dev_fraction = .*$", f"dev_fraction = {need}   # ...and about {round(k * need)} rows of {label!r} "
                  "(the rarest label) to choose the student on", text, count=1, flags=re.M)
    return text, (f"note: the dev split is {100 * need:.0f}% of the rows with gold ([data] dev_fraction), not "
                  f"{100 * share:.0f}%: about {round(k * need)} rows of {label!r} rather than {round(k * share)}; "
                  "fewer make the macro-F1 that chooses the student swing by points with each row")


#: the starter's student, which `readable_student` replaces
EMBEDDING_STUDENT = STARTER[STARTER.index('kind = "embedding_linear"'):STARTER.index("\n[evaluation]")]


def readable_student(text: str, texts: Sequence[str]) -> tuple[str, str | None]:
    """``text`` with a student that can read ``texts``: where the starter's sentence encoder would read too many
    of their letters as ``[UNK]`` (Chinese, Thai, Korean...), TF-IDF over word and character n-grams, which reads
    any script. Returns the text and a note (None: unchanged)."""
    from distilloop.students.hf_common import MPNET, UNREADABLE, encoder_vocab, unknown_share

    vocab = encoder_vocab(MPNET)
    share = unknown_share(texts, vocab) if vocab is not None and EMBEDDING_STUDENT in text else None
    if share is None or share < UNREADABLE:
        return text, None
    student = ('kind = "tfidf_logreg"  # word and character n-grams: any script (the packaged sentence encoders '
               f'read {100 * share:.0f}% of these texts as [UNK])\n')
    return text.replace(EMBEDDING_STUDENT, student, 1), (
        f"note: the packaged sentence encoders read {100 * share:.0f}% of the texts' letters as unknown ([UNK]: a "
        "script their vocabulary does not hold): the student is tfidf_logreg, word and character n-grams, which "
        "reads any script; a multilingual encoder of your own goes in [student] kind = \"embedding_linear\" with "
        "model = \"/path/to/model\"")


#: the share of the most common gold label from which `init` writes ``metric = "macro_f1"``
SKEWED = 0.7
#: gold labels needed to call the shares skewed
MIN_GOLD = 30


def skewed_metric(text: str, gold: Sequence[str]) -> tuple[str, str | None]:
    """``text`` deciding on macro-F1 when the file's gold labels are skewed (the most common at least ``SKEWED``):
    decided on accuracy, a student on a 90%-positive pool answered the majority label almost always (macro-F1 52%;
    on macro-F1 71%, ``benchmarks/skewed_pool.py``). Returns the text and a note for the user (None: unchanged).
    A file without any gold label gets a note on what calibration then assumes (every label equally common)."""
    if not gold and 'calibrate = "batch"' in text:
        return text, ("note: the file has no gold labels, so calibration takes every label as equally common: where "
                      "one is rare (spam, fraud, a 90/10 split), give the shares you expect in [aggregation] "
                      "calibrate_prior (its comment shows how) or set calibrate = \"none\"; on pools 80-90% one "
                      "label, equal shares made 9-27 points fewer labels right than no calibration "
                      "(benchmarks/prior_without_gold.py)")
    if len(gold) < MIN_GOLD:
        return text, None
    label, n = Counter(gold).most_common(1)[0]
    share = n / len(gold)
    if share < SKEWED:
        return text, None
    why = f"{100 * share:.0f}% of the gold labels are {label!r}"
    text = text.replace('metric = "accuracy"\n', 'metric = "macro_f1"   # ' + why + ": accuracy would favor a student "
                        "answering the majority label; macro-F1 weighs every label\n", 1)
    return text, (f"note: {why}: the student is decided on macro-F1 ([evaluation] metric), and calibration fits the "
                  "teachers to the dev split's label shares where it has gold labels ([aggregation] calibrate_prior)")


#: a gold label of this many rows or fewer, spelled like one at least ``TYPO_RATIO`` times as common, is said
TYPO_ROWS, TYPO_RATIO = 3, 20


def typo_labels(golds: Sequence[tuple[str, str]]) -> str | None:
    """A note on labels that look like a misspelling of a common one (``golds``: each row's id and gold label):
    'postive' on 1 row of a file whose 293 others say 'positive' became a third label the teachers were offered."""
    import difflib

    counts = Counter(g for _, g in golds)
    said = []
    for label, n in sorted(counts.items()):
        if n > TYPO_ROWS:
            continue
        like = [m for m, k in counts.most_common() if k >= TYPO_RATIO * n and
                difflib.SequenceMatcher(None, label.lower(), m.lower()).ratio() >= 0.8]
        if like:
            ids = [i for i, g in golds if g == label]
            said.append(f"{label!r} is the gold label of {n} row(s) ({', '.join(ids)}) and {like[0]!r} of "
                        f"{counts[like[0]]}")
    return None if not said else (
        "note: " + "; ".join(said) + ": a typo? Every label is offered to the teachers; fix those rows and run init "
        "again, unless it is a label of its own")


def untested_note(rows: Sequence[tuple[str | None, str | None]]) -> str | None:
    """A note on a test split without gold labels beside a dev split with some (``rows``: each row's split and
    gold label): the student would be reported on the split that chooses it."""
    test = [gold for split, gold in rows if split == "test"]
    if not test or any(g is not None for g in test) or not any(g is not None for s, g in rows if s == "dev"):
        return None
    return (f"note: the test split's {len(test)} rows have no gold label (a hub test split's -1): the student will "
            "be reported on the dev split, which also chooses it; give some gold rows split = \"test\" for an "
            "unbiased figure")
