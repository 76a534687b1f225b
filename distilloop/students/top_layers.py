"""Fine-tuning only the top layers of a causal LM, and the frozen layers' outputs computed once.

Partial fine-tuning (training the last ``n`` transformer blocks, fully or with LoRA adapters on them only:
Hu et al. 2022, "LoRA", whose ``layers_to_transform`` restriction peft implements) leaves the embeddings and the
bottom blocks at their pretrained weights. Their output for a token sequence then never changes while the
student trains, so it is computed once per sequence and kept (:class:`PrefixCache`): every later epoch, every
benchmark setting and every evaluation of the same test items runs only the top ``n`` blocks. The cache is
keyed by a fingerprint of the frozen weights, so a student whose bottom blocks differ (trained in full, or
warm-started from one that was) never reads another's entries. The result is exact: the same losses and
scores as a full forward pass, up to float rounding (``tests/unit/students/test_top_layers.py``).

Both paths also compute the vocabulary logits only where a target token is scored (the output layer of a
small LM is a large part of its cost: 28M of SmolLM2-135M's 135M parameters), instead of at every position.

Only decoder stacks that pass ``inputs_embeds`` straight to their first block and apply no transformation to
the logits take the fast path (:data:`FAST_TYPES`); others run the plain forward pass, with the same results.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from distilloop._extras import require

#: model types whose decoder feeds ``inputs_embeds`` to block 0 unchanged and whose head is a plain linear map
FAST_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def _base(model: Any) -> Any:
    """The transformers model under a peft wrapper (adapters injected in place), else the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decoder_and_head(model: Any) -> tuple[Any, Any] | None:
    """``(decoder stack, output layer)`` of a causal LM that can take the fast path, else None."""
    base = _base(model)
    if getattr(base.config, "model_type", None) not in FAST_TYPES or getattr(base.config, "is_encoder_decoder", False):
        return None
    decoder = getattr(base, "model", None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if decoder is None or head is None or not hasattr(decoder, "layers"):
        return None
    return decoder, head


def _parts(model: Any) -> tuple[Any, Any]:
    parts = decoder_and_head(model)
    if parts is None:
        from distilloop.errors import StudentError

        raise StudentError(f"a {type(_base(model)).__name__} cannot take the fast path (model types: "
                           f"{', '.join(sorted(FAST_TYPES))})")
    return parts


def n_layers(model: Any) -> int | None:
    return getattr(_base(model).config, "num_hidden_layers", None)


def block_linears(model: Any) -> list[str]:
    """The names of the linear maps inside a transformer block (for LoRA on chosen blocks only)."""
    torch = require("torch", "hf")
    layers = getattr(getattr(_base(model), "model", None), "layers", None)
    if layers is None:
        from distilloop.errors import StudentError

        raise StudentError(f"train_layers: cannot find the transformer blocks of a {type(_base(model)).__name__}; "
                           "use train_layers = 0 (every layer) with this model")
    return sorted({n.rsplit(".", 1)[-1] for n, m in layers[-1].named_modules() if isinstance(m, torch.nn.Linear)})


def freeze_below(model: Any, n_train: int) -> None:
    """Train only the top ``n_train`` blocks and the final norm: everything else keeps its weights."""
    parts = decoder_and_head(model)
    base = _base(model)
    layers = parts[0].layers if parts else getattr(getattr(base, "model", None), "layers", None)
    if layers is None:
        from distilloop.errors import StudentError

        raise StudentError(f"train_layers: cannot find the transformer blocks of a {type(base).__name__}; "
                           "use train_layers = 0 (every layer) with this model")
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[-n_train:]:
        for p in layer.parameters():
            p.requires_grad_(True)
    norm = getattr(getattr(base, "model", None), "norm", None)
    if norm is not None:
        for p in norm.parameters():
            p.requires_grad_(True)


def fingerprint(model: Any, split: int) -> tuple[float, ...]:
    """A cheap identity of the embeddings and blocks below ``split`` (sums of their weights)."""
    torch = require("torch", "hf")
    decoder, _ = _parts(model)
    mods = [decoder.embed_tokens, *list(decoder.layers)[:split]]
    with torch.no_grad():
        return tuple(float(sum(p.detach().double().sum() for p in m.parameters())) for m in mods)


class PrefixCache:
    """The frozen blocks' output per token sequence, least recently used first out past ``max_bytes``."""

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self.max_bytes = max_bytes
        self._rows: OrderedDict[tuple, Any] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> Any:
        row = self._rows.get(key)
        if row is not None:
            self._rows.move_to_end(key)
            self.hits += 1
        return row

    def put(self, key: tuple, row: Any) -> None:
        self.misses += 1
        self._rows[key] = row
        self.bytes += row.numel() * row.element_size()
        while self.bytes > self.max_bytes and len(self._rows) > 1:
            _, old = self._rows.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()

    def clear(self) -> None:
        self._rows.clear()
        self.bytes = 0


CACHE = PrefixCache()


class _Stop(Exception):
    pass


@contextlib.contextmanager
def _only_layers(decoder: Any, start: int) -> Iterator[None]:
    """Let the decoder's own forward run blocks ``start..`` only (its masks and rotary embeddings unchanged)."""
    torch = require("torch", "hf")
    full = decoder.layers
    decoder.layers = torch.nn.ModuleList(list(full)[start:])
    try:
        yield
    finally:
        decoder.layers = full


def _pad(rows: Sequence[Sequence[int]], pad: int, dev: Any) -> tuple[Any, Any]:
    torch = require("torch", "hf")
    n = max(map(len, rows))
    ids = torch.tensor([list(r) + [pad] * (n - len(r)) for r in rows], device=dev)
    att = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows], device=dev)
    return ids, att


def bottom_states(model: Any, rows: Sequence[Sequence[int]], split: int, key: tuple, pad: int,
                  cache: PrefixCache = CACHE, batch: int = 32) -> list[Any]:
    """The output of the blocks below ``split`` for each row (``[len(row), hidden]``), from the cache or computed
    (without gradients) by running the decoder up to that block."""
    torch = require("torch", "hf")
    decoder, _ = _parts(model)
    dev = next(model.parameters()).device
    out: list[Any] = [cache.get((key, split, tuple(r))) for r in rows]
    todo = sorted({tuple(r) for r, o in zip(rows, out) if o is None}, key=len)
    if todo:
        captured: list[Any] = []

        def grab(_module: Any, _args: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)
            raise _Stop

        hook = decoder.layers[split - 1].register_forward_hook(grab)
        try:
            with torch.no_grad():
                for s in range(0, len(todo), batch):
                    chunk = todo[s:s + batch]
                    ids, att = _pad(chunk, pad, dev)
                    captured.clear()
                    with contextlib.suppress(_Stop):
                        decoder(input_ids=ids, attention_mask=att)
                    for r, h in zip(chunk, captured[0]):
                        cache.put((key, split, r), h[:len(r)].detach().clone())
        finally:
            hook.remove()
        out = [cache.get((key, split, tuple(r))) for r in rows]
    return out


def hidden(model: Any, rows: Sequence[Sequence[int]], pad: int, *, split: int = 0, key: tuple | None = None,
           cache: PrefixCache = CACHE) -> tuple[Any, Any]:
    """The final hidden states (after the last norm) of right-padded ``rows``, and the attention mask; with
    ``split > 0`` the blocks below it are read from the cache (see the module doc)."""
    torch = require("torch", "hf")
    decoder, _ = _parts(model)
    dev = next(model.parameters()).device
    ids, att = _pad(rows, pad, dev)
    if split <= 0:
        return decoder(input_ids=ids, attention_mask=att).last_hidden_state, att
    states = bottom_states(model, rows, split, key or (), pad, cache)
    h = torch.zeros(len(rows), ids.shape[1], states[0].shape[-1], dtype=states[0].dtype, device=dev)
    for i, s in enumerate(states):
        h[i, :len(s)] = s
    with _only_layers(decoder, split):
        return decoder(inputs_embeds=h, attention_mask=att).last_hidden_state, att


def target_losses(model: Any, prompts: Sequence[list[int]], targets: Sequence[list[int]], pad: int, *,
                  split: int = 0, key: tuple | None = None) -> tuple[Any, Any]:
    """Per row: the mean and the summed token cross-entropy of ``targets[i]`` after ``prompts[i]``, with the
    vocabulary logits computed at the target positions only."""
    torch = require("torch", "hf")
    _, head = _parts(model)
    seqs = [list(p) + list(t) for p, t in zip(prompts, targets)]
    h, _ = hidden(model, seqs, pad, split=split, key=key)
    rows, cols, gold = [], [], []
    for i, (p, t) in enumerate(zip(prompts, targets)):
        for j, tok in enumerate(t):
            rows.append(i)
            cols.append(len(p) + j - 1)  # the position whose next-token logits score this target token
            gold.append(tok)
    dev = h.device
    r = torch.tensor(rows, device=dev)
    logits = head(h[r, torch.tensor(cols, device=dev)]).float()
    tok_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(gold, device=dev), reduction="none")
    total = torch.zeros(len(seqs), device=dev, dtype=tok_loss.dtype).index_add(0, r, tok_loss)
    counts = torch.tensor([max(len(t), 1) for t in targets], device=dev, dtype=tok_loss.dtype)
    return total / counts, total
