"""The TF-IDF student's analyzer remembers each text's n-grams; its features are scikit-learn's own."""

import pickle

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from distilloop.students import tfidf
from distilloop.students.base import Student
from distilloop.students.tfidf import NgramAnalyzer, TfidfLogReg

TEXTS = ["A gorgeous, witty film.", "Dull, flat and far too long.", "Not bad at all!", "Crème brûlée, Naïve ART"]


def test_the_features_are_scikit_learns_own():
    for analyzer, ngrams in (("word", (1, 2)), ("char_wb", (2, 5))):
        ours = TfidfVectorizer(analyzer=NgramAnalyzer(analyzer, ngrams), sublinear_tf=True).fit(TEXTS[:3])
        theirs = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True).fit(TEXTS[:3])
        assert ours.vocabulary_ == theirs.vocabulary_
        assert np.allclose(ours.transform(TEXTS).toarray(), theirs.transform(TEXTS).toarray())


def test_a_text_is_analysed_once_and_the_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(tfidf, "_MEMO", {})
    monkeypatch.setattr(tfidf, "_MEMO_SIZE", {})
    monkeypatch.setattr(tfidf, "MEMO_NGRAMS", 9)  # n-grams, however long the texts
    analyze = NgramAnalyzer("word", (1, 1))
    first = analyze(TEXTS[0])
    assert analyze(TEXTS[0]) is first and first == ["gorgeous", "witty", "film"]
    analyze(TEXTS[1])  # 3 + 6 n-grams: remembered
    analyze(TEXTS[2])  # past the bound: answered, not remembered
    assert list(tfidf._MEMO[("word", 1, 1)]) == TEXTS[:2] and tfidf._MEMO_SIZE[("word", 1, 1)] == 9
    assert analyze(TEXTS[2]) == ["not", "bad", "at", "all"]


def test_a_saved_student_predicts_the_same_after_loading(tmp_path):
    student = TfidfLogReg(C=4.0)
    student.fit(TEXTS * 3, ["pos", "neg", "pos", "neg"] * 3, classes=["neg", "pos"])
    restored = pickle.loads(pickle.dumps(student.vectorizer_))
    assert np.allclose(restored.transform(TEXTS).toarray(), student.vectorizer_.transform(TEXTS).toarray())
    loaded = Student.load(student.save(tmp_path / "s"))
    assert np.allclose(loaded.predict_proba(TEXTS), student.predict_proba(TEXTS))
