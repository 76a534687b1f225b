"""Training the top blocks only (``train_layers``): the frozen blocks keep their weights, their cached outputs give
the same losses and scores as a full forward pass, and a student whose frozen blocks differ never reads them."""

import numpy as np
import pytest

from distilloop.errors import StudentError
from distilloop.students import top_layers
from distilloop.students.step_by_step import StepByStepStudent
from tests.conftest import RATIONALES
from tests.contracts.student import CLASSES, LABELS, TEXTS

FAST = dict(epochs=1, batch_size=8, lr=3e-3, device="cpu")


@pytest.fixture
def cache():
    top_layers.CACHE.clear()
    yield top_layers.CACHE
    top_layers.CACHE.clear()


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_only_the_top_blocks_change(tiny_lm_dir, cache):
    from transformers import AutoModelForCausalLM

    w0 = _weights(AutoModelForCausalLM.from_pretrained(tiny_lm_dir))
    s = StepByStepStudent(model=tiny_lm_dir, train_layers=1, **FAST).fit(TEXTS, LABELS, classes=CLASSES,
                                                                         rationales=RATIONALES)
    w1 = _weights(s.model_)
    changed = {n for n in w0 if not np.allclose(w0[n].numpy(), w1[n].numpy())}
    assert changed and all(n.startswith(("model.layers.1.", "model.norm")) for n in changed)
    assert {n for n, p in s.model_.named_parameters() if p.requires_grad} == {
        n for n in w0 if n.startswith(("model.layers.1.", "model.norm"))}


def test_cached_frozen_outputs_give_the_losses_and_scores_of_a_full_pass(tiny_lm_dir, cache, monkeypatch):
    s = StepByStepStudent(model=tiny_lm_dir, train_layers=1, **FAST).fit(TEXTS, LABELS, classes=CLASSES,
                                                                         rationales=RATIONALES)
    assert s._split() == 1 and cache.misses > 0
    s.model_.eval()
    cached = [float(x.detach()) for x in s.loss_terms(TEXTS, LABELS, RATIONALES, alpha=0.3)]
    p_cached = s.predict_proba(TEXTS)
    hits = cache.hits
    s.predict_proba(TEXTS)
    assert cache.hits > hits  # the test items' frozen outputs are read back, not computed again
    monkeypatch.setattr(top_layers, "FAST_TYPES", frozenset())  # the plain forward pass, logits everywhere
    plain = [float(x.detach()) for x in s.loss_terms(TEXTS, LABELS, RATIONALES, alpha=0.3)]
    np.testing.assert_allclose(cached, plain, rtol=1e-5)
    np.testing.assert_allclose(p_cached, s.predict_proba(TEXTS), atol=1e-5)


def test_training_from_the_cache_matches_training_without_it(tiny_lm_dir, cache, monkeypatch):
    fast = StepByStepStudent(model=tiny_lm_dir, train_layers=1, **FAST).fit(TEXTS, LABELS, classes=CLASSES,
                                                                            rationales=RATIONALES)
    monkeypatch.setattr(top_layers, "FAST_TYPES", frozenset())
    plain = StepByStepStudent(model=tiny_lm_dir, train_layers=1, **FAST).fit(TEXTS, LABELS, classes=CLASSES,
                                                                             rationales=RATIONALES)
    np.testing.assert_allclose([x[0] for x in fast.losses_], [x[0] for x in plain.losses_], rtol=1e-4)
    np.testing.assert_allclose(fast.predict_proba(TEXTS), plain.predict_proba(TEXTS), atol=1e-4)


def test_a_student_whose_frozen_blocks_differ_does_not_read_their_cache(tiny_lm_dir, cache):
    top = StepByStepStudent(model=tiny_lm_dir, train_layers=1, **FAST).fit(TEXTS, LABELS, classes=CLASSES)
    full = StepByStepStudent(model=tiny_lm_dir, **FAST).fit(TEXTS, LABELS, classes=CLASSES)
    # warm-started from a student trained in full: its block 0 is not the pretrained one
    warm = StepByStepStudent(model=tiny_lm_dir, train_layers=1, **FAST).fit(TEXTS, LABELS, classes=CLASSES,
                                                                            warm_start=full)
    assert warm._prefix_key(1) != top._prefix_key(1)
    # the same frozen weights, warm-started from the top-trained student: its cache entries are shared
    again = StepByStepStudent(model=tiny_lm_dir, train_layers=1, **FAST).fit(TEXTS, LABELS, classes=CLASSES,
                                                                             warm_start=top)
    assert again._prefix_key(1) == top._prefix_key(1)
    for s in (warm, again):
        s.model_.eval()
        got = float(s.loss_terms(TEXTS, LABELS, None, alpha=1.0)[0])
        s.train_layers = 0
        assert got == pytest.approx(float(s.loss_terms(TEXTS, LABELS, None, alpha=1.0)[0]), rel=1e-5)


def test_lora_adapters_go_on_the_top_blocks_only(tiny_lm_dir, cache, tmp_path):
    pytest.importorskip("peft")
    from distilloop.students.base import Student

    s = StepByStepStudent(model=tiny_lm_dir, train_layers=1, lora=True, lora_r=2, **FAST).fit(
        TEXTS, LABELS, classes=CLASSES, rationales=RATIONALES)
    trainable = [n for n, p in s.model_.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n and ".layers.1." in n for n in trainable)
    np.testing.assert_allclose(Student.load(s.save(tmp_path / "s")).predict_proba(TEXTS), s.predict_proba(TEXTS),
                               atol=1e-4)


def test_the_cache_forgets_the_least_recently_used_rows_past_its_size():
    torch = pytest.importorskip("torch")
    c = top_layers.PrefixCache(max_bytes=3 * 4 * 8)
    for i in range(5):
        c.put((i,), torch.zeros(2, 4))
    assert c.get((0,)) is None and c.get((1,)) is None and c.get((4,)) is not None and c.bytes <= 96


def test_bad_train_layers(tiny_lm_dir):
    with pytest.raises(StudentError, match="train_layers must be >= 0"):
        StepByStepStudent(model=tiny_lm_dir, train_layers=-1).fit(TEXTS, LABELS, classes=CLASSES)
