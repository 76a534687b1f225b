"""Texts in a script the packaged sentence encoders do not hold: what `init` and the run's warning act on.

The packaged encoders (all-MiniLM-L6-v2, all-mpnet-base-v2) read text through BERT's uncased WordPiece
vocabulary, which holds few CJK ideographs: a Chinese sentence becomes "[UNK] 部 [UNK] [UNK] ...". A student on
them cannot tell one such text from another. This benchmark trains the starter's student (`embedding_linear` on
mpnet) and the one `init` writes instead (`tfidf_logreg`: word and character n-grams) on the same labels of a
synthetic Chinese sentiment set (templated: a filler, a subject, a positive or negative phrase; no real data set
in Chinese ships offline), and prints each one's test accuracy beside the share of letters the encoder reads as
[UNK] (`distilloop.students.hf_common.unknown_share`), and the same for an English control set of the same shape.
Usage::

    PYTHONPATH=. python benchmarks/unreadable_script.py [--labels 100] [--seeds 3]
"""

from __future__ import annotations

import argparse
import random

POS = {"zh": ["很好看", "非常精彩", "演技出色", "值得一看", "感人至深", "剧情紧凑", "配乐动听", "令人难忘"],
       "en": ["is wonderful", "was gripping", "is superbly acted", "is worth seeing", "moved me", "is tight",
              "has a lovely score", "stays with you"]}
NEG = {"zh": ["太无聊了", "浪费时间", "演技很差", "剧情拖沓", "看不下去", "非常失望", "毫无新意", "令人厌烦"],
       "en": ["is boring", "wastes your time", "is badly acted", "drags", "is unwatchable", "disappoints",
              "has nothing new", "is tiresome"]}
SUBJ = {"zh": ["这部电影", "这部片子", "导演的新作", "这个故事", "主演的表现", "整部作品", "结局", "开头"],
        "en": ["this film", "the movie", "the director's new work", "the story", "the lead", "the whole thing",
               "the ending", "the opening"]}
FILL = {"zh": ["说实话", "我觉得", "总的来说", "坦白讲", "昨天看了", "和朋友一起看", "", "周末"],
        "en": ["honestly", "i think", "all in all", "frankly", "seen yesterday:", "with friends,", "", "at the weekend"]}


def make(lang: str, n: int, rng: random.Random) -> list[tuple[str, str]]:
    sep = "" if lang == "zh" else " "
    rows = []
    for _ in range(n):
        y = rng.choice(["positive", "negative"])
        phrase = rng.choice(POS[lang] if y == "positive" else NEG[lang])
        rows.append((sep.join(x for x in (rng.choice(FILL[lang]), rng.choice(SUBJ[lang]), phrase) if x) + ".", y))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", type=int, default=100, help="labeled items each student trains on")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    from distilloop.students.embedding import EmbeddingLinear
    from distilloop.students.hf_common import MPNET, encoder_vocab, unknown_share
    from distilloop.students.tfidf import TfidfLogReg

    vocab = encoder_vocab(MPNET)
    assert vocab is not None, "the packaged MiniLM (distilloop[hf]) is needed for its vocabulary"
    print(f"{'set':<9}{'[UNK] share':>12}{'embedding_linear (mpnet)':>27}{'tfidf_logreg':>15}")
    for lang in ("zh", "en"):
        acc: dict[str, list[float]] = {"mpnet": [], "tfidf": []}
        share = 0.0
        for seed in range(args.seeds):
            rng = random.Random(seed)
            train, test = make(lang, args.labels, rng), make(lang, 1000, rng)
            share = unknown_share([t for t, _ in train], vocab) or 0.0
            for name, student in (("mpnet", EmbeddingLinear(model="mpnet")), ("tfidf", TfidfLogReg())):
                student.fit([t for t, _ in train], [y for _, y in train], classes=["negative", "positive"])
                pred = student.predict([t for t, _ in test])
                acc[name].append(sum(a == y for a, (_, y) in zip(pred, test, strict=True)) / len(test))
        mean = {k: 100 * sum(v) / len(v) for k, v in acc.items()}
        print(f"{lang:<9}{100 * share:>11.0f}%{mean['mpnet']:>26.1f}%{mean['tfidf']:>14.1f}%")


if __name__ == "__main__":
    main()
