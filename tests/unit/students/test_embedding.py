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


def test_a_long_pass_is_saved_as_it_goes_and_an_interrupted_one_keeps_what_it_embedded(tiny_bert_dir, monkeypatch):
    """The pool's first pass (an hour for 200,000 texts with mpnet on a CPU) was written to the campaign's cache
    only at its end: a Ctrl-C at minute 55 lost it all. It is saved every SAVE_EVERY texts now, with the same
    vectors as one call; a pass interrupted after two parts embeds only the rest when run again."""
    from distilloop.students import embedding
    from distilloop.students.base import reporting

    monkeypatch.setattr(embedding, "PROGRESS_MIN", 10)
    monkeypatch.setattr(embedding, "PROGRESS_STEP", 4)
    monkeypatch.setattr(embedding, "SAVE_EVERY", 8)
    texts = [f"review number {i} of a film" for i in range(30)]

    class Cache:
        def __init__(self):
            self.vectors, self.writes = {}, []

        def get_vectors(self, encoder, hashes):
            return {h: self.vectors[h] for h in hashes if h in self.vectors}

        def put_vectors(self, encoder, vectors):
            self.writes.append(len(vectors))
            self.vectors.update(vectors)

    whole = EmbeddingLinear(model=str(tiny_bert_dir))
    with reporting(lambda done, total: None):
        expected = whole.encode(texts)  # no cache: one pass, as before
    embedding._MEMORY.clear()

    cache = Cache()
    student = EmbeddingLinear(model=str(tiny_bert_dir)).attach_cache(cache)
    real, parts = embedding.EmbeddingLinear.encode_uncached, []

    def two_parts_then_ctrl_c(self, texts, *rest, **kw):
        if len(parts) == 2:
            raise KeyboardInterrupt
        parts.append(len(texts))
        return real(self, texts, *rest, **kw)

    monkeypatch.setattr(embedding.EmbeddingLinear, "encode_uncached", two_parts_then_ctrl_c)
    seen = []
    with reporting(lambda done, total: seen.append((done, total))):
        try:
            student.encode(texts)
        except KeyboardInterrupt:
            pass
    assert parts == [8, 8] and cache.writes == [8, 8] and seen[-1] == (16, 30)  # saved part by part
    embedding._MEMORY.clear()  # a new process
    monkeypatch.setattr(embedding.EmbeddingLinear, "encode_uncached", real)
    again = EmbeddingLinear(model=str(tiny_bert_dir)).attach_cache(cache)
    with reporting(lambda done, total: seen.append((done, total))):
        vectors = again.encode(texts)
    assert cache.writes == [8, 8, 8, 6] and again.n_encoded_ == 14  # only the rest
    assert np.array_equal(vectors, expected)  # the same vectors to the last bit
