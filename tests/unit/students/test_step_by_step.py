import numpy as np
import pytest

from distilloop.errors import StudentError
from distilloop.students.step_by_step import StepByStepStudent
from tests.conftest import RATIONALES
from tests.contracts.student import CLASSES, LABELS, TEXTS

FAST = dict(epochs=1, batch_size=8, lr=3e-3, device="cpu")



@pytest.fixture
def fitted(tiny_lm_dir):
    return StepByStepStudent(model=tiny_lm_dir, **{**FAST, "epochs": 1}).fit(
        TEXTS, LABELS, classes=CLASSES, rationales=RATIONALES)


def _grads(student, loss):
    student.model_.zero_grad()
    loss.backward()
    return [p.grad.clone() if p.grad is not None else None for p in student.model_.parameters()]


def test_loss_weights_both_tasks_as_configured(fitted):
    import torch

    fitted.model_.eval()  # no dropout: losses are deterministic
    for a in (0.5, 0.3, 0.0):
        total, l_label, l_rat = (x.item() for x in fitted.loss_terms(TEXTS[:4], LABELS[:4], RATIONALES[:4], alpha=a))
        assert l_rat > 0
        assert total == pytest.approx(a * l_label + (1 - a) * l_rat, rel=1e-5)
    # L_rationale is the mean token cross-entropy of the rationale given `explain: <text>`
    one_total, _, one_rat = fitted.loss_terms(TEXTS[:1], LABELS[:1], RATIONALES[:1], alpha=0.0)
    tok = fitted.tokenizer_
    prompt = tok(fitted.explain_prompt(TEXTS[0]), add_special_tokens=False)["input_ids"]
    target = tok(" " + RATIONALES[0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ref = fitted.model_(input_ids=torch.tensor([prompt + target]),
                        labels=torch.tensor([[-100] * len(prompt) + target])).loss
    assert float(one_rat) == pytest.approx(float(ref), rel=1e-5)


def test_alpha_one_ignores_rationales(fitted):
    fitted.model_.eval()
    total, l_label, l_rat = fitted.loss_terms(TEXTS[:4], LABELS[:4], RATIONALES[:4], alpha=1.0)
    assert float(total) == pytest.approx(float(l_label)) and float(l_rat) == 0.0
    g_with = _grads(fitted, total)
    other = ["something else entirely"] * 4
    g_other = _grads(fitted, fitted.loss_terms(TEXTS[:4], LABELS[:4], other, alpha=1.0)[0])
    g_none = _grads(fitted, fitted.loss_terms(TEXTS[:4], LABELS[:4], None, alpha=1.0)[0])
    for a, b, c in zip(g_with, g_other, g_none):
        assert a is not None
        assert np.allclose(a.numpy(), b.numpy()) and np.allclose(a.numpy(), c.numpy())
    # with alpha < 1 the rationale tokens do contribute gradient
    g_half = _grads(fitted, fitted.loss_terms(TEXTS[:4], LABELS[:4], RATIONALES[:4], alpha=0.5)[0])
    g_half_other = _grads(fitted, fitted.loss_terms(TEXTS[:4], LABELS[:4], other, alpha=0.5)[0])
    assert any(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(g_half, g_half_other))


def test_rationales_are_truncated(tiny_lm_dir):
    s = StepByStepStudent(model=tiny_lm_dir, max_rationale_tokens=5, **FAST)
    s.fit(TEXTS, LABELS, classes=CLASSES, rationales=RATIONALES)
    long = " ".join(RATIONALES)
    assert len(s._rationale_target(long, "pos")) == 5 + 1  # 5 tokens and eos


def test_trained_on_rationales_it_explains(tiny_lm_dir):
    texts, labels, rats = [TEXTS[0], TEXTS[4]], [LABELS[0], LABELS[4]], [RATIONALES[0], RATIONALES[4]]
    s = StepByStepStudent(model=tiny_lm_dir, alpha=0.5, epochs=40, batch_size=2, lr=5e-3, device="cpu",
                          answer_after_rationale=True)
    s.fit(texts, labels, classes=CLASSES, rationales=rats)
    assert s.predict(texts) == labels
    for t, r in zip(texts, rats):
        assert s.rationale(t) == r
        assert s.explain(t) == [r]
    dist = s.answer_from(texts[0], [rats[0]])
    assert set(dist) == set(CLASSES) and dist[labels[0]] > 0.5
    # the untrained model does not produce the rationale
    untrained = StepByStepStudent(model=tiny_lm_dir, epochs=1, lr=1e-9, device="cpu").fit(
        texts, labels, classes=CLASSES)
    assert untrained.rationale(texts[0]) != rats[0]


def test_lora_trains_only_adapters_and_saves_merged(tiny_lm_dir, tmp_path):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    s = StepByStepStudent(model=tiny_lm_dir, lora=True, lora_r=2, **FAST).fit(
        TEXTS, LABELS, classes=CLASSES, rationales=RATIONALES)
    trainable = [n for n, p in s.model_.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n in trainable)
    path = s.save(tmp_path / "s")
    m = AutoModelForCausalLM.from_pretrained(path / "hf")
    assert not any("lora" in n for n, _ in m.named_parameters())
    from distilloop.students.base import Student

    np.testing.assert_allclose(Student.load(path).predict_proba(TEXTS), s.predict_proba(TEXTS), atol=1e-4)


def test_warm_start_continues_from_previous(fitted, tiny_lm_dir):
    same = StepByStepStudent(model=tiny_lm_dir, **{**FAST, "warm_start_epochs": 0}).fit(
        TEXTS, LABELS, classes=CLASSES, warm_start=fitted)
    np.testing.assert_allclose(same.predict_proba(TEXTS), fitted.predict_proba(TEXTS), atol=1e-6)


def test_bad_alpha(tiny_lm_dir):
    with pytest.raises(StudentError, match="alpha"):
        StepByStepStudent(model=tiny_lm_dir, alpha=1.5).fit(TEXTS, LABELS, classes=CLASSES)


@pytest.fixture(scope="module")
def tiny_t5_dir(tmp_path_factory):
    from tests.unit.students.tiny_models import tiny_seq2seq

    corpus = [f"predict: {t}\nlabel: pos neg\nexplain: {t}\nrationale: {r}" for t, r in zip(TEXTS, RATIONALES)]
    return str(tiny_seq2seq(tmp_path_factory.mktemp("tiny_t5"), corpus * 3))


def test_seq2seq_model_trains_predicts_and_round_trips(tiny_t5_dir, tmp_path):
    from distilloop.students.base import Student

    s = StepByStepStudent(model=tiny_t5_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES, rationales=RATIONALES)
    assert s._seq2seq
    p = s.predict_proba(TEXTS)
    assert p.shape == (len(TEXTS), 2) and np.allclose(p.sum(1), 1)
    s.model_.eval()
    total, l_label, l_rat = (x.item() for x in s.loss_terms(TEXTS[:4], LABELS[:4], RATIONALES[:4], alpha=0.25))
    assert l_rat > 0 and total == pytest.approx(0.25 * l_label + 0.75 * l_rat, rel=1e-5)
    assert isinstance(s.rationale(TEXTS[0]), str)
    np.testing.assert_allclose(Student.load(s.save(tmp_path / "t5")).predict_proba(TEXTS), p, atol=1e-5)


def test_numeric_answers_are_learned_and_generated(tiny_lm_dir, tmp_path):
    texts, answers = [TEXTS[0], TEXTS[4]], ["72", "-2.5"]
    s = StepByStepStudent(model=tiny_lm_dir, alpha=0.5, epochs=40, batch_size=2, lr=5e-3, device="cpu")
    s.fit(texts, answers, classes=[], rationales=[RATIONALES[0], RATIONALES[4]])
    assert s.numeric and s.predict(texts) == answers  # generated after `predict:`, in canonical form
    with pytest.raises(StudentError, match="answers with numbers"):
        s.predict_proba(texts)
    loaded = StepByStepStudent.load(s.save(tmp_path / "num"))
    assert loaded.numeric and loaded.predict(texts) == answers
    # an untrained model writes no number: the prediction is empty, never a made-up label
    untrained = StepByStepStudent(model=tiny_lm_dir, epochs=1, lr=1e-9, device="cpu").fit(texts, answers, classes=[])
    assert all(p == "" or p.lstrip("-").replace(".", "").isdigit() for p in untrained.predict(texts))


def test_a_classifying_student_refuses_an_empty_label_set():
    from distilloop.students.tfidf import TfidfLogReg

    with pytest.raises(StudentError, match='needs a label set.*kind = "step_by_step"'):
        TfidfLogReg().fit(TEXTS, LABELS, classes=[])


def test_embeddings_are_the_students_own_and_feed_the_diversity_strategies(fitted):
    import numpy as np

    from distilloop.strategies.base import SelectionContext
    from distilloop.strategies.diversity import KMeansSampling

    X = fitted.embed(TEXTS)
    assert X.shape == (len(TEXTS), fitted.model_.config.hidden_size) and np.isfinite(X).all()
    assert np.allclose(X, fitted.embed(TEXTS), atol=1e-5)  # deterministic (eval mode)
    assert np.allclose(X[:2], fitted.embed(TEXTS[:2]), atol=1e-4)  # padding in a batch does not change a row
    assert not np.allclose(X[0], X[4])
    assert StepByStepStudent(model="unused").embed(TEXTS) is None  # not fitted: no representation yet
    ctx = SelectionContext(unlabeled_ids=[f"u{i}" for i in range(len(TEXTS))], unlabeled_texts=list(TEXTS),
                           labeled_ids=[], labeled_texts=[], labeled_y=[], classes=CLASSES,
                           rng=np.random.default_rng(0), student=fitted)
    assert len(set(KMeansSampling().select(ctx, 3).ids)) == 3


def test_predict_writes_the_rationales_it_learned(tiny_lm_dir, tmp_path):
    """`distilloop predict --rationales`: each row has the rationale the student generates, in JSON lines and CSV;
    a student that cannot explain is refused before anything is written."""
    import csv
    import json

    from distilloop.data import DataSpec
    from distilloop.errors import UserInputError
    from distilloop.loop.predict import Served, predict_file
    from distilloop.students.tfidf import TfidfLogReg

    texts, labels, rats = [TEXTS[0], TEXTS[4]], [LABELS[0], LABELS[4]], [RATIONALES[0], RATIONALES[4]]
    s = StepByStepStudent(model=tiny_lm_dir, alpha=0.5, epochs=40, batch_size=2, lr=5e-3, device="cpu",
                          answer_after_rationale=True).fit(texts, labels, classes=CLASSES, rationales=rats)
    data = tmp_path / "new.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    spec = DataSpec(input_fields=("text",))
    served = Served(s, "step_by_step-test")
    assert predict_file(served, data, spec, tmp_path / "p.jsonl", rationales=True) == 2
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [(r["id"], r["label"], r["rationale"]) for r in rows] == [("r0", labels[0], rats[0]), ("r1", labels[1], rats[1])]
    predict_file(served, data, spec, tmp_path / "p.csv", rationales=True)
    with open(tmp_path / "p.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["rationale"] for r in table] == rats and "p(pos)" in table[0]
    predict_file(served, data, spec, tmp_path / "plain.jsonl")  # without the flag: no rationale, as before
    assert all("rationale" not in json.loads(line) for line in (tmp_path / "plain.jsonl").read_text().splitlines())
    linear = Served(TfidfLogReg().fit(TEXTS, LABELS, classes=CLASSES), "tfidf_logreg-test")
    with pytest.raises(UserInputError, match=r"student tfidf_logreg-test \(tfidf_logreg\) writes no rationales: only a "
                                             r"student trained to explain does"):
        predict_file(linear, data, spec, tmp_path / "never.jsonl", rationales=True)
    assert not (tmp_path / "never.jsonl").exists()
