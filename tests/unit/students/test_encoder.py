import numpy as np
import pytest

from distilloop.errors import StudentError
from distilloop.students.base import Student
from distilloop.students.encoder import EncoderClassifier, soft_targets
from tests.contracts.student import CLASSES, LABELS, TEXTS

FAST = dict(epochs=2, batch_size=4, lr=3e-3, max_length=24, device="cpu", min_steps=0)



def test_learns_a_separable_task(tiny_bert_dir):
    s = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "epochs": 30, "batch_size": 8}).fit(TEXTS, LABELS, classes=CLASSES)
    assert s.losses_[-1] < s.losses_[0]
    assert np.mean([p == y for p, y in zip(s.predict(TEXTS), LABELS)]) >= 0.75


def test_export_loads_with_transformers(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    s = EncoderClassifier(model=tiny_bert_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES)
    path = s.save(tmp_path / "s")
    m = AutoModelForSequenceClassification.from_pretrained(path / "hf").eval()
    tok = AutoTokenizer.from_pretrained(path / "hf")
    import torch

    with torch.no_grad():
        p = torch.softmax(m(**tok(TEXTS, padding=True, return_tensors="pt")).logits, -1).numpy()
    np.testing.assert_allclose(p, s.predict_proba(TEXTS), atol=1e-5)
    assert m.config.id2label == {0: "pos", 1: "neg"}


def test_warm_start_starts_from_previous_weights(tiny_bert_dir):
    prev = EncoderClassifier(model=tiny_bert_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES)
    # zero warm epochs: the new student is exactly the previous one
    same = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "warm_start_epochs": 0}).fit(
        TEXTS[:6], LABELS[:6], classes=CLASSES, warm_start=prev)
    assert same.warm_started_
    np.testing.assert_allclose(same.predict_proba(TEXTS), prev.predict_proba(TEXTS), atol=1e-6)
    # the previous student is not modified by the warm-started training
    before = prev.predict_proba(TEXTS)
    EncoderClassifier(model=tiny_bert_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES, warm_start=prev)
    np.testing.assert_allclose(prev.predict_proba(TEXTS), before, atol=1e-7)


def test_warm_start_reorders_head_for_new_class_order(tiny_bert_dir):
    prev = EncoderClassifier(model=tiny_bert_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES)
    flipped = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "warm_start_epochs": 0}).fit(
        TEXTS, LABELS, classes=CLASSES[::-1], warm_start=prev)
    np.testing.assert_allclose(flipped.predict_proba(TEXTS), prev.predict_proba(TEXTS)[:, ::-1], atol=1e-6)


def test_warm_start_rejects_other_students(tiny_bert_dir):
    from distilloop.students.tfidf import TfidfLogReg

    prev = TfidfLogReg().fit(TEXTS, LABELS, classes=CLASSES)
    with pytest.raises(StudentError, match="warm_start"):
        EncoderClassifier(model=tiny_bert_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES, warm_start=prev)


def test_soft_labels_move_predictions_toward_the_teacher_distribution(tiny_bert_dir):
    soft = [{"pos": 0.5, "neg": 0.5}] * len(TEXTS)
    hard = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "epochs": 20}).fit(TEXTS, LABELS, classes=CLASSES)
    kd = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "epochs": 20, "kd_weight": 1.0}).fit(
        TEXTS, LABELS, classes=CLASSES, soft_labels=soft)
    # trained only on uniform targets, the KD student stays near 0.5; the hard-label one becomes confident
    assert np.abs(kd.predict_proba(TEXTS) - 0.5).max() < 0.1
    assert np.abs(hard.predict_proba(TEXTS) - 0.5).mean() > np.abs(kd.predict_proba(TEXTS) - 0.5).mean()


def test_soft_targets_renormalise_and_fall_back_to_hard():
    t = soft_targets(["a", "b"], [{"a": 2.0, "b": 2.0}, None], ["a", "b"])
    np.testing.assert_allclose(t, [[0.5, 0.5], [0.0, 1.0]])
    with pytest.raises(StudentError, match="negative"):
        soft_targets(["a"], [{"a": -1.0, "b": 2.0}], ["a", "b"])


def test_rationale_loss_trains_the_tagging_head(tiny_bert_dir):
    rats = ["good means positive", None, "great", None, "bad means negative", None, "awful", None]
    s = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "rationale_weight": 1.0}).fit(
        TEXTS, LABELS, classes=CLASSES, rationales=rats)
    assert s.aux_head_ is not None
    mask = s._rationale_mask(s.tokenizer_(TEXTS[:2], padding=True, return_tensors="pt"), rats[:2])
    toks = s.tokenizer_.convert_ids_to_tokens(s.tokenizer_(TEXTS[:1])["input_ids"][0])
    assert mask[0, toks.index("good")] == 1.0 and mask[0, toks.index("movie")] == 0.0
    assert (mask[1] == -1).all()  # no rationale: not scored
    # the rationale-aware student is a different model from the plain one
    plain = EncoderClassifier(model=tiny_bert_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES)
    assert not np.allclose(plain.predict_proba(TEXTS), s.predict_proba(TEXTS))


def test_bad_params_raise(tiny_bert_dir):
    with pytest.raises(StudentError, match="kd_weight"):
        EncoderClassifier(model=tiny_bert_dir, kd_weight=2.0).fit(TEXTS, LABELS, classes=CLASSES)
    with pytest.raises(StudentError, match="local path"):
        EncoderClassifier(model="/no/such/model").fit(TEXTS, LABELS, classes=CLASSES)


def test_embed_gives_vectors(tiny_bert_dir, tmp_path):
    s = EncoderClassifier(model=tiny_bert_dir, **FAST)
    assert s.embed(TEXTS) is None
    s.fit(TEXTS, LABELS, classes=CLASSES)
    assert s.embed(TEXTS).shape == (len(TEXTS), 32)
    assert Student.load(s.save(tmp_path / "x")).embed(TEXTS).shape == (len(TEXTS), 32)


def test_a_few_labels_train_min_steps_not_a_few_epochs(tiny_bert_dir):
    """3 epochs of a first round's few dozen labels are a dozen steps, which left MiniLM at chance on RT (57.8% from
    96 labels, the majority label; 69.0% with 200 steps): a training, warm-started or not, takes at least ``min_steps``."""
    per_epoch = -(-len(TEXTS) // 4)
    s = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "epochs": 1, "min_steps": 3 * per_epoch + 1}).fit(
        TEXTS, LABELS, classes=CLASSES)
    assert len(s.losses_) == 4 * per_epoch  # whole epochs: 4 reach min_steps
    big = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "epochs": 2, "min_steps": 1}).fit(TEXTS, LABELS, classes=CLASSES)
    assert len(big.losses_) == 2 * per_epoch  # enough steps already: the configured epochs
    warm = EncoderClassifier(model=tiny_bert_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES, warm_start=big)
    assert len(warm.losses_) == per_epoch  # warm_start_epochs = 1
    warm = EncoderClassifier(model=tiny_bert_dir, **{**FAST, "min_steps": 2 * per_epoch}).fit(
        TEXTS, LABELS, classes=CLASSES, warm_start=big)
    assert len(warm.losses_) == 2 * per_epoch  # a warm start on a few labels too
    with pytest.raises(StudentError, match="min_steps must be >= 0"):
        EncoderClassifier(model=tiny_bert_dir, min_steps=-1).fit(TEXTS, LABELS, classes=CLASSES)
