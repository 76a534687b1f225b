"""Throughput of `distilloop predict` with the embedding student (all-MiniLM-L6-v2 + logistic regression).

The student is fitted on the Rotten Tomatoes pool's gold labels (``--train`` items), saved and loaded back as
`distilloop predict` loads it, then labels ``--rows`` unseen snippets three ways, each with a cold in-memory
embedding cache:

* ``predict_file``: the command's path (a JSONL file read row by row, batches of ``--batch-size``, one JSON line
  written per row, the memory cache released after each batch, so memory stays constant);
* ``predict`` on an in-memory list: ``Student.load(path).predict(texts)`` on every text at once, the Python
  equivalent, the upper bound of what the stream can reach;
* one text at a time: ``predict([text])`` per row, what a naive serving loop does (measured on the first
  ``--single`` rows only and reported per second).

    python benchmarks/predict_throughput.py [--rows 2000] [--batch-size 256] [--single 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._data import load_jsonl  # noqa: E402
from distilloop.data import DataSpec  # noqa: E402
from distilloop.loop.predict import Served, predict_file  # noqa: E402
from distilloop.students import embedding  # noqa: E402
from distilloop.students.base import Student  # noqa: E402


def cold(student: Student) -> Student:
    """The student with no embedding remembered: every way is timed from the same start."""
    embedding._MEMORY.clear()
    return student


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--train", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--single", type=int, default=200)
    args = p.parse_args()

    rows = load_jsonl("rt_polarity.jsonl.gz")
    rng = np.random.default_rng(0)  # the file is sorted by label: sample both sides
    pool = [r for r in rows if r.get("split") == "pool"]
    train = [pool[i] for i in rng.permutation(len(pool))[: args.train]]
    unseen = [r for r in rows if r.get("split") != "pool"]
    unseen = [unseen[i] for i in rng.permutation(len(unseen))[: args.rows]]
    if len(unseen) < args.rows:  # fewer held-out rows than asked: repeat them, numbered, as distinct texts
        unseen = [dict(r, text=f"{r['text']} ({i})") for i, r in enumerate(unseen * (args.rows // len(unseen) + 1))]
        unseen = unseen[: args.rows]
    texts = [r["text"] for r in unseen]
    tmp = Path(tempfile.mkdtemp())
    student = embedding.EmbeddingLinear()
    student.fit([r["text"] for r in train], [r["label"] for r in train], classes=["negative", "positive"])
    student.save(tmp / "student")
    loaded = Student.load(tmp / "student")
    data = tmp / "incoming.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    loaded.predict(texts[:8])  # load the encoder once, outside every timing

    cold(loaded)
    t0 = time.perf_counter()
    n = predict_file(Served(loaded, "bench"), data, DataSpec(("text",)), tmp / "out.jsonl",
                     batch_size=args.batch_size)
    stream_s = time.perf_counter() - t0
    left = len(embedding._MEMORY.get(loaded.embedding_key, {}))  # type: ignore[attr-defined]
    streamed = [json.loads(x)["label"] for x in (tmp / "out.jsonl").read_text().splitlines()]

    cold(loaded)
    t0 = time.perf_counter()
    in_memory = loaded.predict(texts)
    memory_s = time.perf_counter() - t0
    kept = len(embedding._MEMORY.get(loaded.embedding_key, {}))  # type: ignore[attr-defined]

    cold(loaded)
    k = min(args.single, len(texts))
    t0 = time.perf_counter()
    for t in texts[:k]:
        loaded.predict([t])
    single_s = time.perf_counter() - t0

    assert streamed == in_memory, "the stream's labels differ from the student's predict"
    import torch

    print(f"embedding student (all-MiniLM-L6-v2 + logistic regression), trained on {len(train)} labels; "
          f"{n} unseen Rotten Tomatoes snippets; torch threads {torch.get_num_threads()}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| way | rows | seconds | rows/s | vs predict on a list |")
    print("|---|---|---|---|---|")
    base = n / memory_s
    for name, rows_n, secs in ((f"distilloop predict (stream, batches of {args.batch_size})", n, stream_s),
                               ("Student.predict on an in-memory list", n, memory_s),
                               ("one text at a time", k, single_s)):
        print(f"| {name} | {rows_n} | {secs:.2f} | {rows_n / secs:.1f} | {rows_n / secs / base:.2f}x |")
    print(f"labels of the stream equal predict's: yes; embeddings the stream left in memory: {left} "
          f"(predict on a list keeps all {kept})")


if __name__ == "__main__":
    main()
