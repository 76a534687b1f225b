"""Tiny randomly initialised transformers models built offline, so student tests run in seconds."""

from __future__ import annotations

import string
from pathlib import Path


def tiny_bert(path: Path) -> Path:
    """A 2-layer, 32-wide BERT (~60K parameters) with a character-level WordPiece vocabulary."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    chars = list(string.ascii_lowercase + string.digits + ".,!?'-:;()")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    vocab += ["good", "bad", "great", "awful", "movie", "film", "the", "a", "is", "was", "not"]
    path.mkdir(parents=True, exist_ok=True)
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, initializer_range=0.1)
    import torch

    torch.manual_seed(0)
    BertForMaskedLM(cfg).bert.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def tiny_causal_lm(path: Path, corpus: list[str]) -> Path:
    """A 2-layer, 64-wide Llama with a byte-level BPE tokenizer trained on ``corpus`` (vocab ~300)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<pad>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", pad_token="<pad>")
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
                      tie_word_embeddings=True)
    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def tiny_seq2seq(path: Path, corpus: list[str]) -> Path:
    """A 1-layer, 32-wide T5 sharing the byte-level BPE tokenizer of :func:`tiny_causal_lm`."""
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tiny_causal_lm(path / "_lm", corpus)
    tok = AutoTokenizer.from_pretrained(path / "_lm")
    cfg = T5Config(vocab_size=tok.vocab_size, d_model=32, d_ff=64, d_kv=16, num_layers=1, num_heads=2,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    T5ForConditionalGeneration(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path
