"""index.py: builds are offline, atomic and versioned; the manifest says what was built."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from ketfaq.index import (
    build_index,
    current_version,
    index_is_stale,
    list_versions,
    load_index,
)
from ketfaq.settings import Settings
from tests.conftest import CORPUS_DIR


@pytest.fixture
def warm_index_dir(tmp_path: Path, settings: Settings, built_index) -> Path:
    """An empty index directory whose embedding cache is already warm, so builds are quick."""
    import shutil

    target = tmp_path / "index"
    shutil.copytree(settings.index_dir / "cache", target / "cache")
    return target


def test_manifest_describes_the_build(settings: Settings, built_index) -> None:
    index = load_index(settings.index_dir)
    manifest = index.manifest
    assert manifest.version == built_index.version == current_version(settings.index_dir)
    assert manifest.model_name == "all-MiniLM-L6-v2"
    assert manifest.dimension == 384
    assert manifest.chunk_count == len(index.chunks) == built_index.chunks
    assert len(manifest.corpus_hash) == 64 and manifest.built_at
    assert manifest.format_version == 2
    assert not index_is_stale(settings)


def test_vectors_are_unit_length(settings: Settings, built_index) -> None:
    vectors = np.asarray(load_index(settings.index_dir).vectors)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_build_succeeds_with_network_blocked(tmp_path: Path, encoder, monkeypatch) -> None:
    """Nothing may be fetched from a model hub: building works with every socket refused."""

    def refuse(*args, **kwargs):
        raise OSError("network access blocked by test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from ketfaq.embedding import SentenceTransformerEncoder

    settings = Settings(corpus_dir=CORPUS_DIR, index_dir=tmp_path / "index")
    offline_encoder = SentenceTransformerEncoder(settings.resolved_model_path())  # loads the model anew
    report = build_index(settings, offline_encoder)
    assert report.chunks > 100 and current_version(settings.index_dir) == report.version


def test_rebuild_reuses_cached_embeddings(tmp_path: Path, encoder) -> None:
    settings = Settings(corpus_dir=CORPUS_DIR, index_dir=tmp_path / "index")
    first = build_index(settings, encoder)
    second = build_index(settings, encoder)
    assert first.embedded > 0 and second.embedded == 0
    assert second.version != first.version
    assert [m.version for m in list_versions(settings.index_dir)][:2] == [second.version, first.version]


def test_failed_build_leaves_published_index(tmp_path: Path, encoder, warm_index_dir: Path) -> None:
    settings = Settings(corpus_dir=CORPUS_DIR, index_dir=warm_index_dir)
    good = build_index(settings, encoder)

    class Exploding:
        name, dimension = encoder.name, encoder.dimension

        def encode(self, texts, **kwargs):
            raise RuntimeError("killed mid-build")

    changed = tmp_path / "corpus"
    changed.mkdir()
    for path in CORPUS_DIR.glob("*.md"):
        (changed / path.name).write_text(path.read_text() + "\n\nA brand new paragraph.\n")
    with pytest.raises(RuntimeError):
        build_index(settings.model_copy(update={"corpus_dir": changed}), Exploding())
    assert current_version(settings.index_dir) == good.version
    assert load_index(settings.index_dir).chunks


def test_stale_when_corpus_changes(tmp_path: Path, encoder, warm_index_dir: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in CORPUS_DIR.glob("*.md"):
        (corpus / path.name).write_text(path.read_text())
    settings = Settings(corpus_dir=corpus, index_dir=warm_index_dir)
    assert index_is_stale(settings)
    build_index(settings, encoder)
    assert not index_is_stale(settings)
    target = next(corpus.glob("*.md"))
    target.write_text(target.read_text() + "\nOne more sentence.\n")
    assert index_is_stale(settings)


def test_stale_when_the_model_weights_change(tmp_path: Path, encoder, warm_index_dir: Path) -> None:
    """A model replaced under the same name (package upgrade, new model_path) needs a rebuild."""
    settings = Settings(corpus_dir=CORPUS_DIR, index_dir=warm_index_dir, model_cache_dir=tmp_path / "models")
    build_index(settings, encoder)
    model = tmp_path / "model"
    source = Path(settings.resolved_model_path())
    for path in source.rglob("*"):  # the big files linked, config.json copied so it can change
        if path.is_file():
            target = model / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.name == "config.json":
                target.write_bytes(path.read_bytes())
            else:
                target.symlink_to(path)
    same_model = settings.model_copy(update={"model_path": str(model)})
    assert not index_is_stale(same_model)  # same bytes elsewhere: still the same model
    config = model / "config.json"
    config.write_text(config.read_text() + "\n")
    assert index_is_stale(same_model)
    assert not index_is_stale(settings)


def test_embedding_cache_is_kept_per_exact_encoder(tmp_path: Path, encoder, warm_index_dir: Path) -> None:
    """Two encoders of the same name and variant but other weights never share cached vectors."""
    settings = Settings(corpus_dir=CORPUS_DIR, index_dir=warm_index_dir)
    build_index(settings, encoder)
    first = np.asarray(load_index(settings.index_dir).vectors).copy()

    class OtherWeights:  # the real model with its vectors negated: same name, other weights
        name, dimension, variant = encoder.name, encoder.dimension, encoder.variant
        fingerprint = f"{getattr(encoder, 'fingerprint', encoder.variant)}-retrained"

        def encode(self, texts, **kwargs):
            return -encoder.encode(texts, **kwargs)

    other = build_index(settings, OtherWeights())
    second = np.asarray(load_index(settings.index_dir).vectors)
    assert other.embedded > 0
    # Had the cache been shared, the second build would hold the first build's vectors (dot 1).
    assert np.all((first * second).sum(axis=1) < -0.9)
    assert load_index(settings.index_dir).manifest.encoder_fingerprint == OtherWeights.fingerprint
    assert build_index(settings, encoder).embedded == 0  # the first encoder's cache is untouched


def test_chunks_file_is_readable_json(settings: Settings, built_index) -> None:
    version_dir = settings.index_dir / "versions" / built_index.version
    records = [json.loads(line) for line in (version_dir / "chunks.jsonl").read_text().splitlines()]
    assert records and {"id", "doc_id", "text", "start", "end", "headings"} <= set(records[0])


def test_model_cache_follows_the_index_dir(tmp_path: Path) -> None:
    """An index kept elsewhere keeps its ONNX export beside it, not in the checkout's index/."""
    assert Settings(index_dir=tmp_path / "idx").resolved_model_cache_dir() == tmp_path / "idx" / "models"
    pinned = Settings(index_dir=tmp_path / "idx", model_cache_dir=tmp_path / "models")
    assert pinned.resolved_model_cache_dir() == tmp_path / "models"


def _copy_of_published(settings: Settings, tmp_path: Path) -> Path:
    """The published version alone (no older one to fall back on), under a new index dir."""
    import shutil

    name = current_version(settings.index_dir)
    target = tmp_path / "index"
    shutil.copytree(settings.index_dir / "versions" / name, target / "versions" / name)
    (target / "CURRENT").write_text(name + "\n")
    return target


@pytest.mark.parametrize(("damage", "named"), [
    (lambda m: m.pop("chunk_count"), "chunk_count"),
    (lambda m: m.update(chunk_size="seven hundred"), "chunk_size"),
    (lambda m: m.update(chunk_cuont=3), "chunk_cuont"),
    (lambda m: m["articles"][next(iter(m["articles"]))].pop("title"), "title"),
])
def test_a_damaged_manifest_fails_at_start_up_naming_the_key(
        settings: Settings, encoder, built_index, tmp_path: Path, damage, named: str) -> None:
    from fastapi.testclient import TestClient

    from ketfaq.api import create_app
    from ketfaq.index import IndexError_

    index_dir = _copy_of_published(settings, tmp_path)
    path = index_dir / "versions" / built_index.version / "manifest.json"
    manifest = json.loads(path.read_text())
    damage(manifest)
    path.write_text(json.dumps(manifest))
    broken = settings.model_copy(update={"index_dir": index_dir,
                                         "model_cache_dir": settings.resolved_model_cache_dir()})
    with pytest.raises(IndexError_, match=named), TestClient(create_app(broken)):
        pass
    assert index_is_stale(broken)  # so `ketfaq serve` and `ketfaq build` repair it


def test_embedding_cache_is_one_file_replaced_whole(settings: Settings, built_index) -> None:
    """Keys and vectors are written together: a kill between two renames can't pair them wrongly."""
    caches = [d for d in (settings.index_dir / "cache").iterdir() if d.is_dir()]
    assert caches
    for directory in caches:
        assert sorted(p.name for p in directory.iterdir()) == ["embeddings.npz"]
        with np.load(directory / "embeddings.npz", allow_pickle=False) as stored:
            assert len(stored["keys"]) == len(stored["vectors"]) > 0
