import numpy as np

from distilloop.storage.store import Store
from distilloop.students.embedding import EmbeddingLinear
from tests.contracts.student import CLASSES, LABELS, TEXTS


def test_embeddings_are_cached_in_the_store_by_text_hash(tiny_bert_dir):
    store = Store.memory()
    a = EmbeddingLinear(model=tiny_bert_dir).attach_cache(store)
    a.fit(TEXTS, LABELS, classes=CLASSES)
    assert a.n_encoded_ >= 0
    assert store.vector_count(a.embedding_key) == len(set(TEXTS))
    # a fresh process would have an empty memory cache: clear it and check the store answers
    from distilloop.students import embedding

    embedding._MEMORY.clear()
    b = a.clone()
    b.fit(TEXTS, LABELS, classes=CLASSES)
    assert b.n_encoded_ == 0  # nothing re-embedded
    np.testing.assert_allclose(b.predict_proba(TEXTS), a.predict_proba(TEXTS), atol=1e-6)


def test_soft_labels_change_the_fit(tiny_bert_dir):
    hard = EmbeddingLinear(model=tiny_bert_dir, C=10.0).fit(TEXTS, LABELS, classes=CLASSES)
    soft = [{"pos": 0.5, "neg": 0.5}] * len(TEXTS)
    kd = EmbeddingLinear(model=tiny_bert_dir, C=10.0).fit(TEXTS, LABELS, classes=CLASSES, soft_labels=soft)
    # uniform targets for every example: the head predicts ~0.5 everywhere, unlike the hard-label fit
    assert np.abs(kd.predict_proba(TEXTS) - 0.5).max() < 0.05
    assert np.abs(hard.predict_proba(TEXTS) - 0.5).mean() > 0.05


def test_single_class_predicts_it(tiny_bert_dir):
    s = EmbeddingLinear(model=tiny_bert_dir).fit(TEXTS[:2], LABELS[:2], classes=CLASSES)
    np.testing.assert_allclose(s.predict_proba(TEXTS[:3]), [[1, 0]] * 3)


def test_variants_are_the_configured_C_first_then_a_third_and_three_times_it(tiny_bert_dir):
    store = Store.memory()
    s = EmbeddingLinear(model=tiny_bert_dir, C=3.0, tune_class_weight=False).attach_cache(store)
    variants = s.variants()
    assert [p for p, _ in variants] == [{"C": 3.0}, {"C": 1.0}, {"C": 9.0}]
    assert [v.C for _, v in variants] == [3.0, 1.0, 9.0]
    assert all(v._cache is store and not hasattr(v, "head_") for _, v in variants)  # fresh, on the same cache
    assert s.C == 3.0  # the configured student is left as it was
    fixed = EmbeddingLinear(model=tiny_bert_dir, C=3.0, tune_C=False, tune_class_weight=False).variants()
    assert [(p, v.C) for p, v in fixed] == [({}, 3.0)]


def test_C_and_the_class_weight_are_chosen_together_the_configured_pair_first(tiny_bert_dir):
    s = EmbeddingLinear(model=tiny_bert_dir, C=3.0, class_weight="balanced")
    first = s.variants()
    assert [p for p, _ in first] == [{"C": C, "class_weight": w} for w in ("balanced", "none") for C in (3.0, 1.0, 9.0)]
    assert [(v.C, v.class_weight) for _, v in first] == [(p["C"], p["class_weight"]) for p, _ in first]
    assert not any(hasattr(v, "head_") for _, v in first)
    assert s.variants(chosen={"C": 1.0, "class_weight": "balanced"}) == []  # nothing more around the winner
    only = EmbeddingLinear(model=tiny_bert_dir, tune_C=False)
    assert [p for p, _ in only.variants()] == [{"class_weight": "none"}, {"class_weight": "balanced"}]
    fixed = EmbeddingLinear(model=tiny_bert_dir, tune_class_weight=False)
    assert fixed.variants(chosen={"C": 1.0}) == []


def test_balanced_class_weight_evens_out_a_lopsided_sample(tiny_bert_dir):
    # nine "pos" for one "neg": unweighted, the intercept leans to "pos" everywhere; balanced, "neg" counts as much
    texts = [f"{w} review number {i}" for i, w in enumerate(["fine"] * 9 + ["awful"])]
    labels = ["pos"] * 9 + ["neg"]
    none = EmbeddingLinear(model=tiny_bert_dir, C=0.1).fit(texts, labels, classes=CLASSES)
    balanced = EmbeddingLinear(model=tiny_bert_dir, C=0.1, class_weight="balanced").fit(texts, labels,
                                                                                          classes=CLASSES)
    neg = CLASSES.index("neg")
    assert balanced.predict_proba(texts)[:, neg].mean() > none.predict_proba(texts)[:, neg].mean() + 0.1
    assert abs(balanced.predict_proba(texts)[:, neg].mean() - 0.5) < 0.1
    # the same with soft labels: the mass of each class, not the count of rows, is evened out
    soft = [{"pos": 0.9, "neg": 0.1}] * 9 + [{"pos": 0.1, "neg": 0.9}]
    s = EmbeddingLinear(model=tiny_bert_dir, C=0.1, class_weight="balanced").fit(texts, labels, classes=CLASSES,
                                                                                soft_labels=soft)
    assert abs(s.predict_proba(texts)[:, neg].mean() - 0.5) < 0.1


def test_tune_C_must_be_a_boolean(tiny_bert_dir):
    import pytest

    from distilloop.errors import StudentError

    with pytest.raises(StudentError, match="tune_C must be true or false, got 'yes'"):
        EmbeddingLinear(model=tiny_bert_dir, tune_C="yes").fit(TEXTS, LABELS, classes=CLASSES)
    with pytest.raises(StudentError, match="tune_class_weight must be true or false, got 1"):
        EmbeddingLinear(model=tiny_bert_dir, tune_class_weight=1).fit(TEXTS, LABELS, classes=CLASSES)
    with pytest.raises(StudentError, match="class_weight must be one of 'none', 'balanced', got 'equal'"):
        EmbeddingLinear(model=tiny_bert_dir, class_weight="equal").fit(TEXTS, LABELS, classes=CLASSES)
