"""A small transformers encoder fine-tuned end to end with a classification head.

Options:
- soft-label knowledge distillation (Hinton et al., 2015, "Distilling the Knowledge in a Neural Network"):
  with ``kd_weight > 0`` and ``soft_labels`` given, the loss is
  ``(1 - kd_weight) * CE(p, y) + kd_weight * T^2 * KL(q || p_T)`` where ``q`` is the ensemble's label
  distribution (from logprobs or votes) and ``p_T`` the student's distribution at temperature ``T``.
- a rationale-aware auxiliary loss (``rationale_weight > 0``): extractive rationale supervision in the
  spirit of annotator rationales (Zaidan et al., 2007) and ERASER (DeYoung et al., ACL 2020). A linear
  token-tagging head on the encoder's last hidden states is trained with binary cross-entropy to mark the
  input tokens whose word occurs in the teacher's free-text rationale (lower-cased word overlap). The
  shared encoder thus learns which parts of the input the teacher pointed at; the tagging head is
  only used in training. Examples without a rationale do not contribute to this loss.
- warm start (``fit(..., warm_start=previous)``): the encoder and head start from the previous round's
  weights and train ``warm_start_epochs`` epochs instead of ``epochs``, the incremental refresh of a
  campaign.
- ``min_steps``: a training (from scratch or warm-started) takes at least this many optimiser steps, more epochs
  where the labels are few. A campaign's first rounds have a few dozen labels: 3 epochs of 96 are 18 steps, which
  left MiniLM answering the majority label (57.8% of 500 Rotten Tomatoes test rows, from 96 gold labels or 300),
  where 200 steps gave 69.0% and 75.8% (``benchmarks/encoder_steps.py``).

Saved students keep a ``hf/`` folder that ``transformers.AutoModelForSequenceClassification`` and
``AutoTokenizer`` load directly (``id2label`` holds the classes).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from distilloop._extras import require
from distilloop.errors import StudentError
from distilloop.students.base import Student
from distilloop.students.hf_common import MINILM, device, generator, offline_env, resolve_model

log = logging.getLogger(__name__)
_WORD = re.compile(r"\w+")


def soft_targets(labels: Sequence[str], soft_labels: Sequence[Mapping[str, float] | None] | None,
                 classes: Sequence[str]) -> np.ndarray:
    """Rows of label distributions in ``classes`` order: the soft label where given (renormalised over
    the label set), else the one-hot hard label."""
    out = np.zeros((len(labels), len(classes)))
    for i, y in enumerate(labels):
        q = soft_labels[i] if soft_labels is not None else None
        row = np.array([float(q.get(c, 0.0)) for c in classes]) if q else None
        if row is None or row.sum() <= 0 or (row < 0).any():
            if row is not None and (row < 0).any():
                raise StudentError(f"soft label {q} has a negative probability; expected a distribution")
            out[i, classes.index(y)] = 1.0
        else:
            out[i] = row / row.sum()
    return out


class EncoderClassifier(Student):
    """Fine-tunes a small encoder (default: the packaged all-MiniLM-L6-v2) with a classification head."""

    kind = "encoder"
    uses_rationales = True
    uses_soft_labels = True
    supports_warm_start = True
    provides = frozenset({"probabilities", "embeddings"})

    def __init__(self, model: str = MINILM, epochs: int = 3, warm_start_epochs: int = 1, batch_size: int = 16,
                 lr: float = 5e-5, weight_decay: float = 0.01, warmup_ratio: float = 0.1, max_length: int = 128,
                 kd_weight: float = 0.0, temperature: float = 1.0, rationale_weight: float = 0.0,
                 device: str = "auto", seed: int = 0, min_steps: int = 200) -> None:
        self.model = model
        self.epochs = epochs
        self.min_steps = min_steps
        self.warm_start_epochs = warm_start_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.max_length = max_length
        self.kd_weight = kd_weight
        self.temperature = temperature
        self.rationale_weight = rationale_weight
        self.device = device
        self.seed = seed

    @property
    def needs_rationales(self) -> bool:
        return self.rationale_weight > 0  # the auxiliary rationale loss is its only use of them

    def _check_params(self) -> None:
        for name in ("epochs", "batch_size", "max_length"):
            if int(getattr(self, name)) < 1:
                raise StudentError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warm_start_epochs < 0 or self.min_steps < 0:
            raise StudentError(f"warm_start_epochs and min_steps must be >= 0, got {self.warm_start_epochs} and "
                               f"{self.min_steps}")
        if not 0.0 <= self.kd_weight <= 1.0:
            raise StudentError(f"kd_weight must be in [0, 1], got {self.kd_weight}")
        if self.temperature <= 0 or self.rationale_weight < 0:
            raise StudentError(f"temperature must be > 0 and rationale_weight >= 0, got {self.temperature} "
                               f"and {self.rationale_weight}")
        resolve_model(self.model, MINILM)  # a model that cannot be found is named now, not at the first fit

    # -- training ----------------------------------------------------------------------------------
    def _build(self, classes: list[str], warm: EncoderClassifier | None):
        torch = require("torch", "hf", purpose="EncoderClassifier")
        transformers = require("transformers", "hf", purpose="EncoderClassifier")
        offline_env()
        dev = device(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if warm is not None:
                import copy

                model = copy.deepcopy(warm.model_).cpu()
                tokenizer = warm.tokenizer_
                if list(warm.classes_) != classes:
                    model = self._remap_head(model, list(warm.classes_), classes)
                aux = copy.deepcopy(warm.aux_head_).cpu() if getattr(warm, "aux_head_", None) is not None else None
            else:
                path = resolve_model(self.model, MINILM)
                tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
                model = transformers.AutoModelForSequenceClassification.from_pretrained(
                    str(path), num_labels=len(classes), id2label=dict(enumerate(classes)),
                    label2id={c: i for i, c in enumerate(classes)})
                aux = None
            if self.rationale_weight > 0 and aux is None:
                aux = torch.nn.Linear(model.config.hidden_size, 1)
        return model.to(dev), tokenizer, (aux.to(dev) if aux is not None else None), dev

    @staticmethod
    def _remap_head(model, old: list[str], new: list[str]):
        """Keep the rows of classes both label sets share; new classes start from zero weights."""
        torch = require("torch", "hf")
        head = model.classifier if hasattr(model, "classifier") else None
        if head is None or not isinstance(head, torch.nn.Linear):
            raise StudentError(f"cannot warm start across label sets {old} -> {new} for this model head; "
                               "train from scratch (no warm_start)")
        lin = torch.nn.Linear(head.in_features, len(new))
        with torch.no_grad():
            lin.weight.zero_()
            lin.bias.zero_()
            for j, c in enumerate(new):
                if c in old:
                    lin.weight[j] = head.weight[old.index(c)]
                    lin.bias[j] = head.bias[old.index(c)]
        model.classifier = lin
        model.config.num_labels = len(new)
        model.config.id2label = dict(enumerate(new))
        model.config.label2id = {c: i for i, c in enumerate(new)}
        return model

    def _rationale_mask(self, enc, rationales: list[str | None]):
        """1 where an input token's word occurs in the rationale, 0 elsewhere, -1 where not scored."""
        torch = require("torch", "hf")
        ids = enc["input_ids"]
        mask = torch.full(ids.shape, -1.0)
        for i, r in enumerate(rationales):
            if not r:
                continue
            words = {w.lower() for w in _WORD.findall(r)}
            toks = self.tokenizer_.convert_ids_to_tokens(ids[i].tolist())
            special = set(self.tokenizer_.all_special_tokens)
            for t, tok in enumerate(toks):
                if tok in special:
                    continue
                piece = tok.removeprefix("##").removeprefix("Ġ").removeprefix("▁").lower()
                mask[i, t] = float(bool(piece) and any(piece in w for w in words if len(piece) > 2 or piece == w))
        return mask

    def _fit(self, texts: list[str], labels: list[str], *, rationales: Sequence[str | None] | None,
             soft_labels: Sequence[Mapping[str, float] | None] | None, warm_start: Student | None) -> None:
        torch = require("torch", "hf", purpose="EncoderClassifier")
        transformers = require("transformers", "hf")
        warm = None
        if warm_start is not None:
            if not isinstance(warm_start, EncoderClassifier) or not warm_start.is_fitted():
                raise StudentError(f"warm_start must be a fitted EncoderClassifier, got {type(warm_start).__name__}")
            warm = warm_start
        self.model_, self.tokenizer_, self.aux_head_, dev = self._build(self.classes_, warm)
        self.warm_started_ = warm is not None
        per_epoch = math.ceil(len(texts) / self.batch_size)
        epochs = max(self.warm_start_epochs if warm is not None else self.epochs, math.ceil(self.min_steps / per_epoch))
        targets = torch.tensor(soft_targets(labels, soft_labels if self.kd_weight > 0 else None, self.classes_),
                               dtype=torch.float32)
        hard = torch.tensor([self.classes_.index(y) for y in labels])
        rats = list(rationales) if rationales is not None else [None] * len(texts)
        params = list(self.model_.parameters()) + (list(self.aux_head_.parameters()) if self.aux_head_ else [])
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        steps = max(1, epochs * math.ceil(len(texts) / self.batch_size))
        sched = transformers.get_linear_schedule_with_warmup(opt, int(self.warmup_ratio * steps), steps)
        g = generator(self.seed)
        self.model_.train()
        self.losses_: list[float] = []
        for _ in range(epochs):
            order = torch.randperm(len(texts), generator=g).tolist()
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer_([texts[i] for i in idx], padding=True, truncation=True,
                                      max_length=self.max_length, return_tensors="pt")
                out = self.model_(**{k: v.to(dev) for k, v in enc.items()},
                                  output_hidden_states=self.aux_head_ is not None)
                loss = self._loss(out, hard[idx].to(dev), targets[idx].to(dev))
                if self.aux_head_ is not None and self.rationale_weight > 0:
                    m = self._rationale_mask(enc, [rats[i] for i in idx]).to(dev)
                    scored = m >= 0
                    if scored.any():
                        logit = self.aux_head_(out.hidden_states[-1]).squeeze(-1)
                        aux = torch.nn.functional.binary_cross_entropy_with_logits(logit[scored], m[scored])
                        loss = loss + self.rationale_weight * aux
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                self.losses_.append(float(loss.detach()))
        self.model_.eval()

    def _loss(self, out, hard, targets):
        torch = require("torch", "hf")
        F = torch.nn.functional
        logits = out.logits
        loss = F.cross_entropy(logits, hard)
        if self.kd_weight > 0:
            T = self.temperature
            kl = F.kl_div(F.log_softmax(logits / T, dim=-1), targets, reduction="batchmean") * T * T
            loss = (1 - self.kd_weight) * loss + self.kd_weight * kl
        return loss

    # -- inference ---------------------------------------------------------------------------------
    def _forward(self, texts: Sequence[str], hidden: bool = False):
        torch = require("torch", "hf")
        if not self.is_fitted():
            raise StudentError("this EncoderClassifier is not fitted yet; call fit() first")
        dev = next(self.model_.parameters()).device
        outs = []
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                enc = self.tokenizer_(list(texts[start:start + 64]), padding=True, truncation=True,
                                      max_length=self.max_length, return_tensors="pt").to(dev)
                if hidden:
                    h = self.model_.base_model(**enc).last_hidden_state
                    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                    outs.append(((h * m).sum(1) / m.sum(1).clamp(min=1)).cpu().numpy())
                else:
                    outs.append(torch.softmax(self.model_(**enc).logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, 0 if hidden else len(self.classes_)))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._forward(list(texts))

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        return self._forward(list(texts), hidden=True) if self.is_fitted() else None

    # -- persistence -------------------------------------------------------------------------------
    def _save(self, path: Path) -> None:
        self.model_.save_pretrained(path / "hf")
        self.tokenizer_.save_pretrained(path / "hf")

    def _load(self, path: Path) -> None:
        transformers = require("transformers", "hf", purpose="EncoderClassifier")
        offline_env()
        self.tokenizer_ = transformers.AutoTokenizer.from_pretrained(str(path / "hf"))
        self.model_ = transformers.AutoModelForSequenceClassification.from_pretrained(str(path / "hf"))
        self.model_.to(device(self.device)).eval()
        self.aux_head_ = None
