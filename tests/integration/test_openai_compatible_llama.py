"""The OpenAI-compatible path against a real local server: llama.cpp's `python -m llama_cpp.server` with the
packaged Qwen2.5-Coder-0.5B-Instruct. It has no json_schema response format (HTTP 500): the teacher falls
back to json_object with the schema once and remembers it. Two calls only."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from distilloop.core.types import LabelingItem

pytestmark = [pytest.mark.llm, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip("llama_cpp", reason="the `local` extra is not installed (pip install 'distilloop[local]')")
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python was installed without its [server] extra")
    from distilloop.annotators.models import resolve_model_path
    from distilloop.errors import DistilloopError

    try:
        model = resolve_model_path("qwen2.5-coder-0.5b")
    except DistilloopError as exc:
        pytest.skip(f"the packaged Qwen2.5-Coder-0.5B weights are not available: {exc}")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("llama") / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048",
                             # one thread: llama.cpp's threads spin while they wait for each other, so two
                             # threads on a busy 2-core machine slow it down many times over
                             "--n_threads", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}; see {log.name}")
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready after 120 s; see {log.name}")
            time.sleep(0.5)
        yield url + "/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def test_openai_compatible_teacher_on_llama_cpp_server(llama_server):
    from distilloop.annotators.openai_compatible import OpenAICompatibleTeacher

    t = OpenAICompatibleTeacher(name="qwen-server", model="qwen2.5-coder-0.5b", base_url=llama_server,
                                max_tokens=64, timeout_s=120)
    labels = ("negative", "positive")
    its = [LabelingItem("a", {"text": "A dull, lifeless film with nothing to say; I walked out."}, labels,
                        "Classify the sentiment of the movie review snippet."),
           LabelingItem("b", {"text": "A warm, funny and moving film; I loved every minute."}, labels,
                        "Classify the sentiment of the movie review snippet.")]

    async def main():
        try:
            return [await t.answer(t.render(it), it) for it in its]
        finally:
            await t.aclose()

    answers = asyncio.run(main())
    # the server refused json_schema; json_object with the schema was found on the first call and kept
    assert t.detected_mode == "json_object"
    for it, ans in zip(its, answers):
        assert ans.valid and ans.label in labels and ans.rationale, ans
        est = t.estimate(t.render(it))
        assert 0 < ans.usage.tokens_in <= est.tokens_in and 0 < ans.usage.tokens_out <= 64
        # llama.cpp's server returns top_logprobs: the confidence is the label's normalised probability
        assert ans.confidence_source == "logprobs" and ans.confidence == ans.distribution[ans.label]
        assert abs(sum(ans.distribution.values()) - 1) < 1e-6
    assert [a.label for a in answers] == ["negative", "positive"]
