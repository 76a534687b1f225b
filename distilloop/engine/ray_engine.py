"""The Ray engine: pool embedding and per-round scoring as Ray Data ``map_batches`` over shards of the pool.

The unlabeled pool is cut into blocks of ``batch_rows`` items (Arrow tables) and mapped by a fixed pool of
``workers`` actors (one per CPU of the cluster by default), each holding a copy of the round's student:

* **embedding** (a frozen-encoder student): each actor embeds the texts of its block that the vector shards do
  not hold yet and returns them; the campaign's process writes each returned block as one shard and records it
  in the store's manifest. A resumed campaign, or the next round, finds them there and embeds nothing again.
* **scoring**: each actor computes the student's probabilities for its block (from the shards for a
  frozen-encoder student) and, for the uncertainty strategies, returns only the block's first ``n`` items by
  score and seeded tie-break; the campaign merges them into exactly the picks of the local engine
  (:mod:`distilloop.engine.base`). Other strategies that read probabilities get the whole matrix
  (``ctx.extra["proba"]``) and run in the campaign's process as usual; the diversity strategies read the pool's
  vectors from the shards.

Workers never write the store or the shards: they return arrays. The driver connects on first use, so opening
a campaign (``distilloop status``) needs no cluster.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import numpy as np

from distilloop._extras import require
from distilloop.core.types import Selection
from distilloop.engine.base import Engine, jitter_for, merge_top, mergeable, selection_from, vector_student
from distilloop.engine.ray_tasks import EmbedBatch, ScoreBatch
from distilloop.errors import EngineError
from distilloop.storage.shards import VectorShards
from distilloop.strategies.base import SelectionContext, Strategy

log = logging.getLogger(__name__)


def quiet_console(logger: logging.Logger) -> None:
    """Ray Data's console lines ("Progress bars disabled...", "Dataset ... execution finished in 83.14 seconds")
    off the campaign's terminal, errors kept; its log file in the session folder keeps everything."""
    for handler in logger.handlers:
        if type(handler).__name__ != "SessionFileHandler":
            handler.setLevel(max(handler.level, logging.ERROR))


class RayEngine(Engine):
    """``[compute] engine = "ray"``: the pool's embedding and scoring on the Ray cluster at ``address``."""

    name = "ray"

    def __init__(self, vectors: VectorShards, *, address: str, batch_rows: int = 50_000, workers: int = 0,
                 gpus_per_worker: float = 0.0) -> None:
        super().__init__(vectors)
        self.address = address
        self.batch_rows = batch_rows
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self._ray: Any = None
        self._owns = False  # this engine connected (and so disconnects); a caller's connection is the caller's
        #: what the last selection did on the cluster: items embedded and scored, seconds each, and the seconds
        #: of those the driver spent on per-item work of its own (``driver_s``)
        self.last: dict[str, float] = {}

    # -- the cluster -------------------------------------------------------------------------------------
    def connect(self) -> Any:
        """The ``ray`` module, connected to the cluster (once)."""
        if self._ray is not None:
            return self._ray
        ray = require("ray", "ray", purpose='[compute] engine = "ray"')
        require("ray.data", "ray", purpose='[compute] engine = "ray"')
        if not ray.is_initialized():
            self._reachable()
            self._owns = True
            try:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
            except Exception as exc:  # ConnectionError, RuntimeError, TimeoutError: all say the same to a user
                raise EngineError(f"cannot reach the Ray cluster at {self.address!r} ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); start it with "
                                  "`ray start --head` and set [compute] address to the address it printed, or "
                                  "use engine = \"local\"") from None
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.enable_auto_log_stats = False
        quiet_console(logging.getLogger("ray.data"))
        self._ray = ray
        return ray

    def _reachable(self) -> None:
        """Fail in seconds, not minutes, when nothing listens at a ``host:port`` address (Ray retries long)."""
        host, _, port = self.address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            return  # "auto" or a form Ray resolves itself
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as exc:
            raise EngineError(f"cannot reach the Ray cluster at {self.address!r} ({exc.strerror or exc}); start it "
                              "with `ray start --head` and set [compute] address to the address it printed, or "
                              "use engine = \"local\"") from None

    def worker_count(self) -> int:
        ray = self.connect()
        return self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def dataset(self, columns: dict[str, Any]) -> Any:
        """A Ray dataset of the columns, one block per ``batch_rows`` rows."""
        import pyarrow as pa

        ray = self.connect()
        started = time.perf_counter()
        table = pa.table(columns)
        blocks = [table.slice(s, self.batch_rows) for s in range(0, table.num_rows, self.batch_rows)]
        self._driver(started)
        return ray.data.from_arrow(blocks or [table])

    def _driver(self, since: float) -> None:
        """Count time the driver itself spent on per-item work (blocks, shards, the merge) in ``last``."""
        self.last["driver_s"] = self.last.get("driver_s", 0.0) + time.perf_counter() - since

    def blocks(self, rows: int) -> int:
        return max(1, -(-rows // self.batch_rows))

    def _map(self, ds: Any, fn: type, args: tuple[Any, ...], rows: int, embedding: bool = False) -> Any:
        """``fn`` over the blocks by a pool of actors: one per worker, never more than blocks (each actor loads
        the student: an idle one costs its memory and start-up for nothing)."""
        gpus = self.gpus_per_worker if embedding and self.gpus_per_worker else None
        pool = self.connect().data.ActorPoolStrategy(size=min(self.worker_count(), self.blocks(rows)))
        return ds.map_batches(fn, fn_constructor_args=args, batch_size=None, batch_format="numpy", compute=pool,
                              num_cpus=1, num_gpus=gpus)

    def _batches(self, ds: Any) -> Any:
        try:
            yield from ds.iter_batches(batch_size=None, batch_format="numpy")
        except Exception as exc:  # a worker's exception arrives wrapped by Ray: one line, and where to look
            raise EngineError(f"a Ray worker failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}; "
                              "the worker's log is in the cluster's session logs") from None

    # -- the work ----------------------------------------------------------------------------------------
    def embed(self, student: Any, texts: list[str], advance: Any = None) -> int:
        """Embed the texts the shards do not hold yet on the cluster; write what comes back as shards (here,
        in the campaign's process). Returns how many vectors were written; ``advance(k)`` is told each block's
        texts as it comes back."""
        encoder = student.embedding_key
        started, written, left = time.perf_counter(), 0, len(texts)
        ds = self._map(self.dataset({"text": texts}), EmbedBatch, (student, self.vectors.reader(encoder)),
                       len(texts), embedding=True)
        for out in self._batches(ds):
            if advance is not None:  # one batch per block: every block but the last holds batch_rows texts
                advance(min(self.batch_rows, left))
                left -= min(self.batch_rows, left)
            if len(out["hash"]):
                t = time.perf_counter()
                self.vectors.write_shard(encoder, dict(zip((str(h) for h in out["hash"]), out["vector"])))
                self._driver(t)
                written += len(out["hash"])
        self.last.update(embedded=written, embed_s=time.perf_counter() - started)
        return written

    def embedded_version(self, student: Any) -> int | None:
        """The data version the pool was last embedded at with this student's encoder (None: never)."""
        got = self.vectors.store.get_meta(f"pool_embedded:{student.embedding_key}")
        if not got:
            return None
        return 1 if got is True else int(got)  # True: a store from before rows could be added

    def ensure_embedded(self, student: Any, texts: list[str], advance: Any = None) -> int:
        """Embed the pool once per encoder and data version: after a whole pool was embedded, every later pool
        (the same items less those labeled since) is in the shards, so the pass is skipped (the store remembers,
        so a resumed campaign skips it too); rows added since (``distilloop add``) are embedded by the next pass,
        the workers skipping every text the shards hold."""
        version = self.vectors.store.latest_data_version() or 1
        done = self.embedded_version(student)
        if done is not None and done >= version:
            self.last["embedded"] = 0
            return 0
        written = self.embed(student, texts, advance)
        self.vectors.store.set_meta(f"pool_embedded:{student.embedding_key}", version)
        return written

    def scores(self, student: Any, ctx: SelectionContext, score_fn: Any, n: int | None,
               jitter: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every block's candidates (``n``: pos, score, jitter) or probabilities (``n`` None: pos, proba)."""
        started = time.perf_counter()
        reader = self.vectors.reader(student.embedding_key) if vector_student(student) else None
        columns: dict[str, Any] = {"pos": np.arange(len(ctx.unlabeled_texts), dtype=np.int64),
                                   "text": ctx.unlabeled_texts}
        if jitter is not None:
            columns["jitter"] = jitter
        ds = self._map(self.dataset(columns), ScoreBatch, (student, reader, score_fn, n), len(ctx.unlabeled_texts))
        parts = list(self._batches(ds))
        t = time.perf_counter()
        keys = ("pos", "score", "jitter") if n is not None else ("pos", "proba")
        out = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in keys}
        self._driver(t)
        self.last.update(scored=len(ctx.unlabeled_texts), score_s=time.perf_counter() - started)
        return out

    def embed_pool(self, strategy: Strategy, ctx: SelectionContext, progress: Any) -> int:
        """The pool's first embedding on the cluster, with a bar that moves as blocks come back (before the
        selection's spinner; ``prepare`` then finds the pool embedded)."""
        student: Any = ctx.student
        if (student is None or not vector_student(student) or not student.is_fitted()
                or not ({"probabilities", "embeddings"} & strategy.needs)):
            return 0
        done = self.embedded_version(student)
        if done is not None and done >= (self.vectors.store.latest_data_version() or 1):
            return 0
        n, name = len(ctx.unlabeled_texts), getattr(student, "model", "the encoder")
        what = f"{n:,} pool texts" if done is None else f"the rows added to the pool ({n:,} texts to look up)"
        with progress.bar(f"embedding {what} with {name} on the Ray cluster ({self.blocks(n):,} block(s); once: "
                          "they are kept)", n) as advance:
            return self.ensure_embedded(student, ctx.unlabeled_texts, advance)

    def prepare(self, strategy: Strategy, ctx: SelectionContext, n: int) -> Selection | None:
        student = ctx.student
        if student is None or not student.is_fitted() or not ({"probabilities", "embeddings"} & strategy.needs):
            return None
        self.last = {}
        if vector_student(student):
            self.ensure_embedded(student, ctx.unlabeled_texts)
        if mergeable(strategy, ctx):
            t = time.perf_counter()
            jitter = jitter_for(ctx)  # the same draw top_n would make from ctx.rng
            self._driver(t)
            got = self.scores(student, ctx, strategy.score_fn, n, jitter)  # type: ignore[attr-defined]
            t = time.perf_counter()
            pos, scores = merge_top(got["pos"], got["score"], got["jitter"], n)
            picked = selection_from(ctx, pos, scores)
            self._driver(t)
            return picked
        if strategy.needs_probabilities and ctx.extra.get("proba") is None:
            got = self.scores(student, ctx, None, None)
            proba = np.zeros((len(ctx.unlabeled_texts), got["proba"].shape[1]), dtype=np.float64)
            proba[got["pos"]] = got["proba"]
            ctx.extra["proba"] = proba
        return None

    def close(self) -> None:
        if self._ray is not None and self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._ray = None
