"""The columnar vector shards beside the store: bulk writes become shard files recorded in the store's manifest,
small ones stay in the store; both are read back; a reopened store (a resumed campaign) finds them; a worker's
read-only view cannot write."""

import pickle

import numpy as np
import pytest

from distilloop.core.protocols import VectorCache
from distilloop.core.types import Example, text_hash
from distilloop.errors import StoreError
from distilloop.storage.shards import ShardReader, VectorShards, keys_of
from distilloop.storage.store import Store


def _vectors(n, dim=8, seed=0, prefix="t"):
    rng = np.random.default_rng(seed)
    return {text_hash(f"{prefix}{i}"): rng.normal(size=dim).astype(np.float32) for i in range(n)}


@pytest.fixture
def store(tmp_path):
    s = Store.create(tmp_path / "c.db", [Example("a", {"text": "x"})], {})
    yield s
    s.close()


def test_bulk_writes_become_shards_and_small_ones_stay_in_the_store(store, tmp_path):
    cache = VectorShards(store, tmp_path / "c.vectors", min_shard_vectors=50)
    assert isinstance(cache, VectorCache)
    big, small = _vectors(120, seed=1), _vectors(5, seed=2, prefix="s")
    cache.put_vectors("enc", big)
    cache.put_vectors("enc", small)
    [row] = store.vector_shards("enc")
    assert row["rows"] == 120 and row["dim"] == 8
    assert store.vector_count("enc") == 5  # only the small write is a row of the embeddings table
    got = cache.get_vectors("enc", [*big, *small, text_hash("never seen")])
    assert set(got) == set(big) | set(small)
    for h, v in {**big, **small}.items():
        np.testing.assert_array_equal(got[h], v)
    assert cache.get_vectors("other encoder", list(big)) == {}


def test_a_reopened_store_finds_its_shards(store, tmp_path):
    root = tmp_path / "c.vectors"
    first = _vectors(300, seed=3)
    VectorShards(store, root, min_shard_vectors=10).put_vectors("enc", first)
    path = store.path
    store.close()
    reopened = Store.open(path)
    try:
        cache = VectorShards(reopened, root)
        assert cache.shard_rows("enc") == 300
        got = cache.get_vectors("enc", list(first))
        assert all(np.array_equal(got[h], v) for h, v in first.items())
    finally:
        reopened.close()


def test_a_shard_file_without_a_manifest_row_does_not_exist_for_the_campaign(store, tmp_path):
    from distilloop.storage.shards import encoder_dir, write_shard_files

    root = tmp_path / "c.vectors"
    orphan = _vectors(20, seed=4)
    write_shard_files(root / encoder_dir("enc"), orphan)  # a crash before the manifest row was committed
    cache = VectorShards(store, root)
    assert cache.get_vectors("enc", list(orphan)) == {}
    cache.write_shard("enc", orphan)  # written again: the same content, the same shard, now recorded
    assert len(store.vector_shards("enc")) == 1 and len(cache.get_vectors("enc", list(orphan))) == 20


def test_lookup_across_many_shards_and_duplicates(store, tmp_path):
    cache = VectorShards(store, tmp_path / "v", min_shard_vectors=1)
    parts = [_vectors(40, seed=s, prefix=f"p{s}-") for s in range(6)]
    for p in parts:
        cache.put_vectors("enc", p)
    cache.put_vectors("enc", parts[0])  # the same vectors again: one more (identical) shard, same answers
    everything = {h: v for p in parts for h, v in p.items()}
    hashes = list(everything)[::-1]
    found, vecs = cache.reader("enc").lookup(keys_of(hashes + [text_hash("missing")]))
    assert found[:-1].all() and not found[-1]
    np.testing.assert_array_equal(vecs[:-1], np.stack([everything[h] for h in hashes]))


def test_a_workers_view_is_picklable_and_read_only(store, tmp_path):
    cache = VectorShards(store, tmp_path / "v", min_shard_vectors=1)
    vecs = _vectors(30)
    cache.put_vectors("enc", vecs)
    reader = pickle.loads(pickle.dumps(cache.reader("enc")))
    assert isinstance(reader, ShardReader) and "Store" not in repr(vars(reader))
    got = reader.get_vectors("enc", list(vecs))
    assert len(got) == 30
    with pytest.raises(StoreError, match="workers never write"):
        reader.put_vectors("enc", vecs)


def test_a_missing_shard_file_is_named_with_the_fix(store, tmp_path):
    cache = VectorShards(store, tmp_path / "v", min_shard_vectors=1)
    f = cache.write_shard("enc", _vectors(5))
    import os

    os.remove(f.vectors_path)
    with pytest.raises(StoreError, match="vectors_dir"):
        VectorShards(store, tmp_path / "v").get_vectors("enc", [text_hash("t0")])


def test_a_text_is_keyed_by_its_sha256_remembered_or_not():
    import hashlib

    from distilloop.core.types import SHORT_TEXT

    for text in ("short", "é" * SHORT_TEXT, "x" * (SHORT_TEXT + 1)):  # remembered, remembered, hashed each time
        want = hashlib.sha256(text.encode("utf-8")).hexdigest()
        assert text_hash(text) == want and text_hash(str(text)) == want
