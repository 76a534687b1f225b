"""The default engine: the `[compute]` section, nothing of Ray imported, and a frozen encoder's pool vectors in
the columnar shards, reused by a resumed campaign."""

import json
import subprocess
import sys

import pytest

from distilloop.errors import ConfigError
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config, parse_config
from tests.conftest import ROOT, replay_config
from tests.unit.loop.test_config import with_


@pytest.mark.parametrize("compute,match", [
    ({"engine": "rey"}, r"compute.engine: must be \"local\" or \"ray\", got 'rey' \(did you mean 'ray'\?\)"),
    ({"engine": "ray"}, r"compute.address: engine = \"ray\" needs the cluster's address"),
    ({"batch_rows": 0}, r"compute.batch_rows: must be an integer >= 1, got 0"),
    ({"workers": -1}, r"compute.workers: must be an integer >= 0"),
    ({"gpus_per_worker": "1"}, r"compute.gpus_per_worker: expected float"),
    ({"adress": "x"}, r"compute.adress: unknown key \(did you mean 'address'\?\)"),
])
def test_bad_compute_sections_name_the_key_and_the_fix(compute, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(with_(compute=compute))


def test_the_default_engine_is_local_and_its_shards_sit_beside_the_store(tmp_path):
    cfg = load_config(replay_config(tmp_path))
    assert cfg.compute.engine == "local"
    assert cfg.vectors_dir == tmp_path / "t.vectors"


def test_the_default_engine_imports_nothing_of_ray(tmp_path):
    """A whole campaign (random first round, then entropy over a trained student) in a fresh interpreter."""
    cfg = replay_config(tmp_path, rounds="max_rounds = 2\ninitial_size = 10\nbatch_size = 10")
    code = f"""
import json, sys
from distilloop.loop.campaign import Campaign
from distilloop.loop.config import load_config
c = Campaign.open(load_config({str(cfg)!r}))
reason = c.run()
rounds = len(c.store.rounds())
c.close()
print(json.dumps({{"reason": reason, "rounds": rounds,
                  "ray": sorted(m for m in sys.modules if m.split(".")[0] == "ray")}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rounds"] == 2 and got["reason"].startswith("max rounds")
    assert got["ray"] == []


def test_a_frozen_encoders_pool_vectors_go_to_shards_and_a_resumed_campaign_reuses_them(tmp_path, tiny_bert_dir,
                                                                                          monkeypatch):
    from distilloop.students import embedding

    encoded: list[int] = []
    real = embedding.EmbeddingLinear.encode_uncached
    monkeypatch.setattr(embedding.EmbeddingLinear, "encode_uncached",
                        lambda self, texts, *rest, **kw: encoded.append(len(texts)) or real(self, texts, *rest, **kw))
    extra = f'[student]\nkind = "embedding_linear"\nmodel = "{tiny_bert_dir}"\n[compute]\nmin_shard_vectors = 50\n'
    path = replay_config(tmp_path, rounds="max_rounds = 2\ninitial_size = 10\nbatch_size = 10", extra=extra)
    campaign = Campaign.open(load_config(path))
    campaign.run()
    shards = campaign.store.vector_shards()
    pool_left = len(campaign.env.unlabeled_pool())
    campaign.close()
    # one shard per bulk write: the 80 test items (evaluated in round 1), then the pool round 2 selected from
    assert sorted(s["rows"] for s in shards) == [80, pool_left + 10]
    assert (tmp_path / "t.vectors" / shards[0]["vectors_path"]).exists()

    embedding._MEMORY.clear()  # what a new process starts with
    encoded.clear()
    path.write_text(path.read_text().replace("max_rounds = 2", "max_rounds = 3"))
    resumed = Campaign.open(load_config(path))
    try:
        resumed.run()
        assert len(resumed.store.rounds()) == 3
    finally:
        resumed.close()
    assert sum(encoded) == 0  # every vector came from the shards or the store: nothing embedded again


def test_engine_ray_without_the_extra_stops_at_open_with_the_install_command(tmp_path, monkeypatch):
    import importlib.util

    from distilloop.errors import MissingExtraError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    path = replay_config(tmp_path, extra='[compute]\nengine = "ray"\naddress = "127.0.0.2:6379"\n')
    with pytest.raises(MissingExtraError, match=r"pip install -c constraints.txt 'distilloop\[ray\]'"):
        Campaign.open(load_config(path))
    assert not (tmp_path / "t.distilloop.db").exists()  # nothing written


def spinner_progress():
    """A quiet progress whose spinners record every text they are told to show: (message, [updates])."""
    from contextlib import contextmanager

    from distilloop.loop.progress import Progress

    progress = Progress(quiet=True)
    spins: list[tuple[str, list[str]]] = []

    @contextmanager
    def status(message):
        spins.append((message, []))
        yield spins[-1][1].append
    progress.status = status  # type: ignore[method-assign]
    return progress, spins


def embedding_passes(spins):
    """Per spinner, the embedding pass it showed: (texts done at the last update, texts in the pass)."""
    import re

    out = []
    for message, updates in spins:
        counts = [re.search(r": embedding (\d+)/(\d+) texts(, about \d+ (s|min) left)? \(\w+, kept for later rounds\)$", u) for u in updates]
        counts = [(int(m[1]), int(m[2])) for m in counts if m]
        if counts:
            assert all(u.startswith(message) for u in updates) and counts[0][0] == 0
            out.append((message, counts[-1]))
    return out


def test_a_long_pass_over_the_pool_says_how_far_it_is_and_is_made_once(tmp_path, tiny_bert_dir, monkeypatch):
    """The first selection that needs a frozen encoder's vectors embeds the pool: minutes for a pool of thousands
    on a CPU, under a spinner that said nothing of how far it was. The spinner counts the texts and the time
    left, and the pass is never made again: the next round finds every vector kept. The first training's
    evaluation on a large test split says so the same way."""
    from distilloop.students import embedding

    monkeypatch.setattr(embedding, "PROGRESS_MIN", 40)  # the fixture's pool is small: a "long" pass here
    monkeypatch.setattr(embedding, "PROGRESS_STEP", 16)
    embedding._MEMORY.clear()
    extra = f'[student]\nkind = "embedding_linear"\nmodel = "{tiny_bert_dir}"\n[strategy]\nname = "entropy"\n'
    path = replay_config(tmp_path, rounds="max_rounds = 3\ninitial_size = 10\nbatch_size = 10", extra=extra)
    progress, spins = spinner_progress()
    campaign = Campaign.open(load_config(path), progress=progress)
    try:
        campaign.run()
        left = len(campaign.env.unlabeled_pool()) + 20  # the pool round 2 selected from
    finally:
        campaign.close()
        embedding._MEMORY.clear()
    passes = embedding_passes(spins)
    # round 1's training embeds the test split to evaluate on (a large one is minutes too); round 2's selection
    # the pool; round 3 found every vector kept
    assert [message.split(":")[1].split()[0] for message, _ in passes] == ["training", "selecting"], spins
    assert passes[0][0].startswith("round 1: training") and passes[0][1] == (80, 80)
    message, (done, total) = passes[1]
    assert message.startswith("round 2: selecting") and done == total and 40 <= total <= left


def test_a_diversity_strategy_embeds_only_its_candidates_of_a_large_pool(tmp_path, tiny_bert_dir, monkeypatch):
    """k-means on a pool larger than its candidate sample embeds the sample, not the pool: the pass before the
    selection (last release) embedded every pool text first, 4.5 times the work on a pool of 450,000."""
    from distilloop.students import embedding

    monkeypatch.setattr(embedding, "PROGRESS_MIN", 20)
    monkeypatch.setattr(embedding, "PROGRESS_STEP", 16)
    embedding._MEMORY.clear()
    extra = (f'[student]\nkind = "embedding_linear"\nmodel = "{tiny_bert_dir}"\n[strategy]\nname = "kmeans"\n'
             "max_candidates = 30\n")
    path = replay_config(tmp_path, rounds="max_rounds = 2\ninitial_size = 10\nbatch_size = 10", extra=extra)
    progress, spins = spinner_progress()
    campaign = Campaign.open(load_config(path), progress=progress)
    try:
        campaign.run()
        from distilloop.core.types import text_hash

        unlabeled = {text_hash(e.text) for e in campaign.env.unlabeled_pool()}  # after round 2: 10 fewer
        kept = {r["text_hash"] for r in campaign.store.db.query("select text_hash from embeddings")}
    finally:
        campaign.close()
        embedding._MEMORY.clear()
    selecting = [counts for message, counts in embedding_passes(spins) if ": selecting" in message]
    assert selecting == [(30, 30)]  # the candidates, said on the selection's spinner
    assert len(unlabeled) > 90 and len(unlabeled & kept) <= 30  # of the pool, at most the candidates: not all of it


def test_the_ray_engine_starts_no_more_actors_than_blocks_and_keeps_ray_data_off_the_console():
    """Each actor loads the student: a pool of two for a pool of one block started an idle copy of the encoder
    (and Ray warned about it); Ray Data's console lines are errors only, its log file keeps the rest."""
    import logging
    from types import SimpleNamespace

    from distilloop.engine.ray_engine import RayEngine, quiet_console

    sizes: list[int] = []
    fake_ray = SimpleNamespace(data=SimpleNamespace(ActorPoolStrategy=lambda size: sizes.append(size) or size))
    engine = RayEngine(None, address="127.0.0.2:6379", batch_rows=40, workers=4)  # type: ignore[arg-type]
    engine.connect = lambda: fake_ray  # type: ignore[method-assign]
    ds = SimpleNamespace(map_batches=lambda fn, **kw: kw["compute"])
    assert [engine._map(ds, object, (), rows) for rows in (1, 40, 41, 100, 10_000)] == [1, 1, 2, 3, 4]
    logger = logging.getLogger("test.ray.data")
    console, file = logging.StreamHandler(), type("SessionFileHandler", (logging.Handler,), {})()
    console.setLevel(logging.INFO)
    logger.handlers = [console, file]
    quiet_console(logger)
    assert console.level == logging.ERROR and file.level == logging.NOTSET
