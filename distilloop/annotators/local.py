"""An in-process local LLM teacher on llama.cpp (``llama-cpp-python``), for campaigns with no API key.

The answer is constrained to the prompt's JSON schema by a llama.cpp grammar, so the label is always one of
the label set. The confidence is the model's own probability of its label: after generating, the prefix up
to the label's opening quote is scored once more (the KV cache makes this a few tokens of work) and the
next-token distribution is read at the first token of each label, normalised over the label set (labels
that share a first token are told apart along the answer's label: :meth:`LlamaCppTeacher._label_distribution`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from distilloop._extras import require
from distilloop.annotators.base import Teacher
from distilloop.annotators.models import check_model, resolve_model_path
from distilloop.annotators.parsing import parse_answer
from distilloop.annotators.prompts import Prompt
from distilloop.core.types import LabelingItem, Spend, TeacherAnswer, Usage
from distilloop.errors import InvalidAnswer, TeacherError

_LABEL_VALUE = re.compile(r'"label"\s*:\s*"')
_LOADED: dict[tuple[str, int, int], Any] = {}
_LOCKS: dict[tuple[str, int, int], Any] = {}  # one lock per loaded model, shared by every teacher using it
_LOAD_LOCK = threading.Lock()


def amx_build(system_info: str) -> bool:
    """Whether llama.cpp was compiled with its AMX matrix kernels (``AMX_INT8 = 1`` in its system info)."""
    return re.search(r"AMX_INT8\s*=\s*1", system_info) is not None


@contextmanager
def _without_amx_buffers(llama_cpp: Any) -> Iterator[None]:
    """Load with llama.cpp's extra weight buffers off where its build has the AMX kernels.

    A build compiled natively on an AMX CPU (Sapphire Rapids and later) repacks the weights into AMX buffers,
    and on virtual machines of those CPUs the first decode then dies with a segmentation fault
    (ggml-org/llama.cpp#20824; seen here on a 2-core VM with ``amx_int8``), taking the campaign with it. `make
    setup` compiles llama.cpp without AMX; this covers a build made otherwise (a wheel from pip's cache, an
    install by hand). ``Llama`` takes no such option, so its default model parameters are swapped for the load
    (under ``_LOAD_LOCK``: the only place this process builds a model)."""
    info = llama_cpp.llama_cpp.llama_print_system_info()
    if not amx_build(info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)):
        yield
        return
    module = llama_cpp.llama.llama_cpp
    default = module.llama_model_default_params

    def params() -> Any:
        p = default()
        p.use_extra_bufts = False
        return p

    module.llama_model_default_params = params
    try:
        yield
    finally:
        module.llama_model_default_params = default


@dataclass
class LlamaCppTeacher(Teacher):
    """A GGUF model run by llama.cpp in this process. ``model`` is a packaged alias or a ``.gguf`` path."""

    n_ctx: int = 2048
    n_threads: int | None = None
    seed: int = 0
    rationale_max_chars: int = 200

    kind = "llama_cpp"
    exact_estimate = True
    billed_when_cut = False  # in this process: a call cut off by a stop was never billed

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.context_tokens is None:
            self.context_tokens = self.n_ctx
        check_model(self.model)  # a bad path or alias stops the campaign before anything is written
        self._llm: Any = None
        self._lock: Any = None

    # -- model -------------------------------------------------------------------------------------
    def _key(self) -> tuple[str, int, int]:
        threads = self.n_threads or os.cpu_count() or 1  # llama-cpp-python's default is half the cores
        return str(resolve_model_path(self.model)), self.n_ctx, threads

    def _model_lock(self) -> Any:
        """The lock of the loaded model this teacher uses: teachers on the same model file share one model, and
        llama.cpp's context is not thread-safe, so they share its lock too."""
        if self._lock is None:
            key = self._key()
            with _LOAD_LOCK:
                self._lock = _LOCKS.setdefault(key, threading.RLock())
        return self._lock

    def _load(self) -> Any:
        if self._llm is None:
            llama_cpp = require("llama_cpp", "local", purpose="the llama_cpp teacher")
            key = self._key()
            path, threads = key[0], key[2]
            with _LOAD_LOCK:
                if key not in _LOADED:
                    try:
                        with _without_amx_buffers(llama_cpp):
                            _LOADED[key] = llama_cpp.Llama(model_path=str(path), n_ctx=self.n_ctx,
                                                           n_threads=threads, seed=self.seed, verbose=False)
                    except ValueError as exc:  # a cut download, or a model this llama.cpp cannot read
                        raise TeacherError(f"llama.cpp could not load {path} ({exc}): a truncated file, or a model "
                                           "newer than this llama.cpp; check the file or use another model") from None
                self._llm = _LOADED[key]
            fmt = require("llama_cpp.llama_chat_format", "local")
            meta = self._llm.metadata
            template = meta.get("tokenizer.chat_template")
            if not template:
                raise TeacherError(f"{path} has no chat template in its metadata; use an instruct GGUF model")
            eos = self._llm._model.token_get_text(self._llm.token_eos())
            bos = self._llm._model.token_get_text(self._llm.token_bos()) if self._llm.token_bos() >= 0 else ""
            self._formatter = fmt.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
            self._grammars: dict[str, Any] = {}
        return self._llm

    def _schema(self, prompt: Prompt) -> dict[str, Any]:
        schema = json.loads(json.dumps(prompt.schema))
        props = schema.get("properties", {})
        if "rationale" in props:
            props["rationale"]["maxLength"] = self.rationale_max_chars
        return schema

    def _grammar(self, prompt: Prompt) -> Any:
        """The grammar of the prompt's schema. llama.cpp generates the properties in the order of the schema
        text it is given: a numeric answer keeps the schema's order (the working, then the answer: chain of
        thought), a label answer is built from the key-sorted schema (label, then rationale), the order the
        recorded teacher outputs under data/recorded were made with."""
        schema = self._schema(prompt)
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            grammar_mod = require("llama_cpp.llama_grammar", "local")
            text = json.dumps(schema) if prompt.numeric else key
            self._grammars[key] = grammar_mod.LlamaGrammar.from_json_schema(text, verbose=False)
        return self._grammars[key]

    def _prompt_text(self, prompt: Prompt) -> str:
        return self._formatter(messages=prompt.messages).prompt

    def count_tokens(self, text: str) -> int:
        llm = self._load()
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # -- accounting: the prompt's tokens are counted exactly; the output is capped by max_tokens ----------
    def estimate(self, prompt: Prompt, example_id: str | None = None) -> Spend:
        with self._model_lock():
            tokens_in = self.count_tokens(self._prompt_text_locked(prompt)) + 1
        return Spend(tokens_in, self.max_tokens, self._price.cost(tokens_in, self.max_tokens))

    def prompt_tokens(self, prompt: Prompt) -> int:
        """Counted exactly by the model's tokenizer, chat template included."""
        with self._model_lock():
            return self.count_tokens(self._prompt_text_locked(prompt)) + 1

    def _prompt_text_locked(self, prompt: Prompt) -> str:
        self._load()
        return self._prompt_text(prompt)

    def hash_extra(self) -> Any:
        return {"rationale_max_chars": self.rationale_max_chars, "seed": self.seed}

    # -- answering -----------------------------------------------------------------------------------
    async def answer(self, prompt: Prompt, item: LabelingItem) -> TeacherAnswer:
        return await asyncio.to_thread(self._answer_sync, prompt)

    def _answer_sync(self, prompt: Prompt) -> TeacherAnswer:
        with self._model_lock():
            llm = self._load()
            text = self._prompt_text(prompt)
            started = time.perf_counter()
            try:
                out = llm.create_completion(prompt=text, grammar=self._grammar(prompt), max_tokens=self.max_tokens,
                                            temperature=self.temperature, seed=self.seed)
            except (RuntimeError, ValueError) as exc:
                raise TeacherError(f"llama.cpp failed: {exc}") from exc
            raw = out["choices"][0]["text"]
            usage = Usage(out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"])
            distribution = None if prompt.numeric else self._label_distribution(llm, text, raw, prompt.labels)
            latency = time.perf_counter() - started
        try:
            parsed = parse_answer(raw, prompt.labels, prompt.answer, prompt.extra.get("student_steps"))
        except InvalidAnswer as exc:
            return TeacherAnswer(raw, None, None, None, usage, latency, valid=False, error=str(exc))
        confidence = distribution.get(parsed.label) if distribution else None
        return TeacherAnswer(raw, parsed.label, parsed.rationale, confidence, usage, latency,
                             confidence_source="logprobs" if distribution else None, distribution=distribution)

    def _label_distribution(self, llm: Any, prompt_text: str, raw: str, labels: tuple[str, ...]) -> dict[str, float] | None:
        """The next-token distribution over the labels where the answer's label begins. Labels that begin with
        the same token (banking77's ``card_arrival``, ``card_linking``) are told apart where the answer parts from
        them, one token further on each step (they had no distribution: no confidence, a cascade asking its next
        teacher about every item); a group off the answer's path shares its mass evenly."""
        m = _LABEL_VALUE.search(raw)
        if not m:
            return None
        spelled: dict[str, list[int]] = {}
        for label in labels:
            toks = llm.tokenize(label.encode("utf-8"), add_bos=False, special=False)
            if not toks:
                return None
            spelled[label] = toks
        answer = raw[m.end():].split('"', 1)[0]
        path = spelled.get(answer)
        prefix = llm.tokenize((prompt_text + raw[: m.end()]).encode("utf-8"), add_bos=False, special=True)
        mass, weight = dict.fromkeys(labels, 0.0), 1.0
        for step in range(len(path) if path else 1):
            live = [lab for lab in labels if path is None or spelled[lab][:step] == path[:step]]
            groups: dict[int, list[str]] = {}
            for lab in live:
                if len(spelled[lab]) > step:
                    groups.setdefault(spelled[lab][step], []).append(lab)
            if path is None and len(groups) < len(live):
                return None  # no answer to follow among labels that share a first token
            logits = self._next_logits(llm, prefix + (path[:step] if path else []))
            picked = np.array([logits[t] for t in groups])
            probs = np.exp(picked - picked.max())
            probs /= probs.sum()
            followed = None
            for (tok, group), p in zip(groups.items(), probs):
                if path is not None and tok == path[step] and len(group) > 1:
                    followed = weight * float(p)
                    continue
                for lab in group:
                    mass[lab] += weight * float(p) / len(group)
            if followed is None:
                break
            weight = followed
        else:  # the answer's last token still shared (intent_1 before intent_17's 7): the answer closed there
            if path is not None:
                mass[answer] += weight
        total = sum(mass.values())
        return {label: v / total for label, v in mass.items()} if total > 0 else None

    def _next_logits(self, llm: Any, tokens: list[int]) -> np.ndarray:
        """The model's next-token logits after ``tokens``, reusing the cached tokens they begin with."""
        cached = llm.input_ids[: llm.n_tokens].tolist()
        n = 0
        for a, b in zip(cached, tokens):
            if a != b:
                break
            n += 1
        n = min(n, len(tokens) - 1)
        llm.n_tokens = n
        llm.eval(tokens[n:])
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
