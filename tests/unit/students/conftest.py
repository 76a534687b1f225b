import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SENTIMENT = [
    ("a good movie", "pos"), ("great film", "pos"), ("good and great", "pos"), ("the film was great", "pos"),
    ("a bad movie", "neg"), ("awful film", "neg"), ("bad and awful", "neg"), ("the film was awful", "neg"),
]


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.unit.students.tiny_models import tiny_bert

    return str(tiny_bert(tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(scope="session")
def sentiment():
    return [t for t, _ in SENTIMENT], [y for _, y in SENTIMENT]


RATIONALES = ["good is a positive word", "great is praise", "good and great are praise",
              "great is praise", "bad is a negative word", "awful is a complaint", "bad and awful are complaints",
              "awful is a complaint"]


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from tests.unit.students.contract import TEXTS
    from tests.unit.students.tiny_models import tiny_causal_lm

    corpus = [f"predict: {t}\nlabel: pos neg\nexplain: {t}\nrationale: {r}" for t, r in zip(TEXTS, RATIONALES)]
    return str(tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"), corpus * 3))
