"""What a campaign's student and the rows it is judged on can warn of (part of :mod:`distilloop.loop.diagnostics`,
which gathers every warning):

- a student at or below the majority-class baseline of its reference, with advice that depends on the student;
- an encoder student that reads most of the texts' letters as ``[UNK]``;
- students chosen on a reference of a handful of rows, or, on macro-F1, on a handful of a rare label's rows;
- a test split without gold labels (the student then reported on the split that chooses it);
- labels added to a running campaign that no gold label says (students are scored wrong wherever they say them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from distilloop.core.answers import AnswerSpace
from distilloop.loop.references import DESCRIBE, baseline_key, decision_score
from distilloop.storage.store import Store

#: labels per class, and reference items, below which a student at the majority baseline is not called out: a
#: few labels or a few reference items cannot tell a weak student from an unlucky one
WEAK_MIN_PER_CLASS, WEAK_MIN_REFERENCE = 10, 20


def weak_student(store: Store, metric: str, student: Any = None, n_classes: int = 2,
                 space: AnswerSpace | None = None) -> list[str]:
    """The active student no better than the majority label. The advice depends on the student (``student``: the
    campaign's ``[student]`` component): a TF-IDF or MiniLM student can move to the mpnet one; one that already is a
    frozen-embedding linear model on mpnet may not be able to read the task at all (which choice a letter names,
    a number in a word problem) and needs a student that reads the text. On lopsided data whose labels hold a
    handful of one label (``space``: the label set), more of those come first."""
    active = store.active_student()
    if active is None:
        return []
    m = active["metrics"]
    ref = m.get("reference")
    score = decision_score(m, metric)
    scored = (m.get("refs") or {}).get(ref) or {}
    base = scored.get(baseline_key(metric))
    if score is None or base is None or score > base + 0.01:
        return []
    if (active.get("n_train") or 0) < WEAK_MIN_PER_CLASS * max(2, n_classes) or \
            (scored.get("n") or 0) < WEAK_MIN_REFERENCE:
        return []
    kind = getattr(student, "kind", None)
    params = getattr(student, "params", None) or {}
    labels = space.labels if space is not None and space.has_label_set else ()
    counts = Counter(r["label"] for r in store.labeled()) if labels else Counter()
    rare, k = min(((label, counts.get(label, 0)) for label in labels), key=lambda c: c[1], default=(None, 0))
    if rare is not None and k < WEAK_MIN_PER_CLASS:  # lopsided data: the student has next to nothing to learn from
        advice = (f"its {sum(counts.values())} labels hold {k} {rare!r}: label more items until every label has "
                  f"{WEAK_MIN_PER_CLASS} or more (a student learns little of a label from a handful)")
    elif kind == "step_by_step":  # the classifiers suggested below cannot answer numbers, and it already reads
        advice = ("label more items (a student that generates its answer learns from hundreds, not dozens), train "
                  "more of it (epochs, train_layers, a GPU), or a larger base model (model, docs/students.md)")
    elif kind == "embedding_linear" and params.get("model") == "mpnet":
        advice = ("label more items, or use a student that reads the text itself (kind = \"encoder\" or "
                  "\"step_by_step\", docs/students.md): a linear model on frozen sentence embeddings cannot tell, "
                  "e.g., which choice a letter names")
    else:
        advice = ("label more items, use a stronger student (e.g. kind = \"embedding_linear\" with "
                  "model = \"mpnet\")")
    common = "label" if n_classes else "answer"  # no label set: numbers
    return [f"the active student ({metric} {score:.3f} on {ref}) does no better than always answering the most "
            f"common {common} (baseline {base:.3f}): {advice}, or check the {common}s (`distilloop status`)"]


#: the students that read their input through a WordPiece encoder (their ``model``, MiniLM by default)
ENCODER_STUDENTS = ("embedding_linear", "encoder")


def unreadable_texts(store: Store, student: Any) -> list[str]:
    """A student whose encoder knows too few of the texts' characters to read them: the packaged encoders read
    Chinese, Thai, Korean or Hindi mostly as ``[UNK]``, and such a student stays near chance whatever it is fed."""
    if student is None or getattr(student, "kind", None) not in ENCODER_STUDENTS:
        return []
    from distilloop.core.types import render_input
    from distilloop.students.hf_common import UNREADABLE, encoder_vocab, unknown_share

    vocab = encoder_vocab(student.params.get("model"))
    texts = [render_input(r["fields"]) for r in store.labeled()[:300]]
    share = unknown_share(texts, vocab) if vocab is not None and len(texts) >= 10 else None
    if share is None or share < UNREADABLE:
        return []
    model = student.params.get("model") or "minilm"
    return [f"the student's encoder ({model}) reads {100 * share:.0f}% of the labeled texts' letters as unknown "
            "([UNK]: a script its vocabulary does not hold, e.g. Chinese or Thai): it cannot learn from them. Use "
            "[student] kind = \"tfidf_logreg\" (word and character n-grams, any script), or a multilingual encoder "
            "of your own in [student] model = \"/path/to/model\""]


#: decision-reference rows below which promotion is said to rest on too few items (at 30, a 95% interval on an
#: accuracy near 80% is still about +-15 points)
MIN_DECISION_ROWS = 30


def small_reference(store: Store, metric: str) -> list[str]:
    """Students promoted and tuned on a reference of a handful of rows: each decision is a coin flip."""
    active = store.active_student()
    if active is None:
        return []
    m = active["metrics"]
    ref = m.get("reference")
    scored = (m.get("refs") or {}).get(ref) or {}
    n = scored.get("n") or 0
    if not ref or not n or n >= MIN_DECISION_ROWS:
        return []
    ci = (f" (the active student's {metric} there: 95% interval {100 * scored['ci_low']:.0f}%-"
          f"{100 * scored['ci_high']:.0f}%)" if scored.get("ci_low") is not None and metric == "accuracy" else "")
    by_hand = ("gold dev rows labeled by hand (`distilloop add` a file of them with split = \"dev\": they become "
               "the reference)")
    fix = {"teachers": f"{by_hand}, or in a new campaign a larger [evaluation] heldout_size",
           "audit": f"{by_hand}, or in a new campaign a larger [evaluation] audit_size"}.get(
        ref, "more gold dev rows (rows with split = \"dev\", or a larger [data] dev_fraction), or [evaluation] "
             "reference = \"teachers\" with heldout_size (a held-out set the teachers label)")
    return [f"students are chosen and promoted on {ref}, which has {n} row(s){ci}: too few to tell a better student "
            f"from a luckier one. Give the decisions at least {MIN_DECISION_ROWS}: {fix}"]


#: rows of a label in a gold reference below which macro-F1 decisions on it are said to rest on too few of it
MIN_RARE_ROWS = 20


def rare_label(counts: Counter[str], labels: Sequence[str], share: float = 1.0) -> tuple[str, int] | None:
    """The rarest of ``labels`` and its rows, when a ``share`` of its ``counts`` would hold fewer than
    ``MIN_RARE_ROWS`` of it and it is under half its even share (many balanced labels of a handful of rows each
    average out); else None."""
    n = sum(counts.values())
    label, k = min(((lab, counts.get(lab, 0)) for lab in labels), key=lambda c: (c[1], c[0]), default=("", 0))
    if not labels or k * share >= MIN_RARE_ROWS or k >= n / len(labels) / 2:
        return None
    return label, k


def rare_in_reference(store: Store, metric: str, space: AnswerSpace) -> list[str]:
    """Students decided on macro-F1 over a gold split that holds a handful of a rare label: half a binary
    campaign's macro-F1 is that label's F1, which one row moves by points. On a 91%-negative file (11 positive dev
    rows) the dev macro-F1 rose round by round (56% to 69%) while the test's fell (68% to 60%). A label is rare
    here when it has fewer than ``MIN_RARE_ROWS`` rows and under half its even share (many balanced labels of a
    handful of rows each average out)."""
    active = store.active_student()
    if metric != "macro_f1" or active is None or not space.has_label_set:
        return []
    ref = active["metrics"].get("reference")
    split = {"gold:dev": "dev", "gold:test": "test"}.get(ref or "")
    counts = Counter(store.gold_labels(split).values()) if split else Counter()
    n = sum(counts.values())
    if n < MIN_DECISION_ROWS:  # small_reference says so
        return []
    found = rare_label(counts, space.labels)
    if found is None:
        return []
    label, k = found
    return [f"students are chosen on macro-F1 over {ref}, which holds {k} row(s) of {label!r} among {n}: each one "
            f"moves that label's F1 by points, so a rise there may not hold on new data. Give it {MIN_RARE_ROWS} or "
            f"more: gold dev rows of {label!r} (`distilloop add` a file of them with split = \"dev\"), or a larger "
            "[data] dev_fraction in a new campaign"]


def gold_before_labels(store: Store, space: AnswerSpace) -> list[str]:
    """Labels added to a running campaign that no gold label says: the gold was made before them, so a student
    that learnt one is scored wrong wherever it says it. After "refund" was split out of "billing", the relabel's
    student was "not promoted (it regresses)" on a dev split whose gold called every refund ticket billing."""
    from distilloop.loop.guidelines import first_labels

    first = first_labels(store)
    added = [x for x in space.labels if first and x not in first] if space.has_label_set else []
    gold = {**store.gold_labels("dev"), **store.gold_labels("test")}  # what students are scored on
    missing = [x for x in added if x not in set(gold.values())]
    active = store.active_student()
    if not missing or not gold or active is None:
        return []
    ref = active["metrics"].get("reference") or "gold:dev"
    by_gold = ref.startswith("gold:")
    fix = ("; to judge students under the new labels, [evaluation] reference = \"teachers\" (a held-out set the "
           "teachers label under the current guideline) or an audit set ([evaluation] audit_size, with a reviewer)"
           if by_gold else f" (decisions use {DESCRIBE.get(ref, ref)})")
    return [f"no gold label of dev or test says {', '.join(map(repr, missing))}, added to the labels after those "
            f"{len(gold)} were made: `label acc` and the students' scores count it wrong wherever it is said"
            + (", and promotion favours students that never say it" if by_gold else "") + fix]


def test_without_gold(store: Store) -> list[str]:
    """A test split whose rows have no gold label (a hub DatasetDict's test split, its labels -1): the student is
    then reported on the split it is chosen on (the dev split), an optimistic figure, and nothing says so."""
    active = store.active_student()
    gold = store.gold_counts()
    if active is None or gold.get("test", 0) or not gold.get("dev", 0):  # no gold anywhere: nothing to hold out
        return []
    n_test = store.split_counts().get("test", 0)
    what = (f"the test split's {n_test} row(s) have no gold label (a hub test split's -1)" if n_test else
            "no row is in the test split")
    return [f"{what}, so the student is reported on gold:dev, what it is also chosen on: an optimistic figure. For "
            "an unbiased one, give some rows with a gold label split = \"test\" (e.g. a part of the train split)"]
