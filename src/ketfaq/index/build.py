"""Build a new index version from the corpus: chunk, embed (reusing cached vectors), write, publish.

A build writes the version under a temporary name, renames it into place and only then
switches ``CURRENT`` (store.py): a failed or killed build leaves the published index untouched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from ketfaq.ann import build_ann_index, index_kind
from ketfaq.chunking import Chunk, chunk_corpus, sentence_spans
from ketfaq.corpus import SYNONYMS_FILE, Article, corpus_hash, load_corpus, load_synonyms
from ketfaq.embedding import Encoder
from ketfaq.index.cache import EmbeddingCache, text_key
from ketfaq.index.store import (
    FORMAT_VERSION,
    VERSIONS,
    ArticleMeta,
    IndexError_,
    Manifest,
    current_version,
    prune,
    publish,
    read_chunks,
    read_manifest,
)
from ketfaq.settings import Settings

__all__ = ["BuildReport", "build_fingerprint", "build_index", "index_is_stale"]

@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build did, for the CLI and for staff."""

    version: str
    chunks: int
    embedded: int
    reused: int
    articles_added: list[str] = field(default_factory=list)
    articles_changed: list[str] = field(default_factory=list)
    articles_removed: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    chunks_changed: int = 0
    chunks_unchanged: int = 0
    # doc_id -> {"added": n, "changed": n, "removed": n, "unchanged": n} for articles that changed
    per_article: dict[str, dict[str, int]] = field(default_factory=dict)


def build_fingerprint(settings: Settings, articles: list[Article]) -> str:
    """Hash of everything a build depends on: articles, chunking and the model's weights.

    The weights are hashed, not just named: a model replaced under the same name (a package
    upgrade, another ``model_path``) makes the published index stale. The digest is remembered
    by file size and mtime, so this stays cheap enough for every start.
    """
    from ketfaq.onnx_encoder import model_hash

    synonyms = settings.corpus_dir / SYNONYMS_FILE
    parts = [
        corpus_hash(articles),
        hashlib.sha256(synonyms.read_bytes()).hexdigest() if synonyms.exists() else "",
        settings.model_name,
        model_hash(settings.resolved_model_path(), memo=settings.resolved_model_cache_dir() / "digests.json"),
        str(settings.chunk_size),
        str(settings.chunk_overlap),
        str(FORMAT_VERSION),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _new_version_name(fingerprint: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{fingerprint[:8]}"


def _vector_texts(chunks: list[Chunk]) -> tuple[list[str], list[int]]:
    """Texts to embed for the dense index and the chunk each row points to.

    One row per chunk today (its text under its heading path, so an FAQ answer is indexed
    under its question too); the row map lets a chunk have several vectors.
    """
    return [chunk.embed_text for chunk in chunks], list(range(len(chunks)))


def build_index(
    settings: Settings,
    encoder: Encoder,
    *,
    progress: bool = False,
    publish_now: bool = True,
    keep_versions: int = 5,
    on_stage: Callable[[str], None] | None = None,
) -> BuildReport:
    """Chunk and embed the corpus into a new index version and (by default) publish it."""
    start = dt.datetime.now(dt.UTC)
    say = on_stage or (lambda _msg: None)
    index_dir = settings.index_dir
    articles = load_corpus(settings.corpus_dir)
    synonyms_path = settings.corpus_dir / SYNONYMS_FILE
    load_synonyms(synonyms_path)  # validate before spending time on embeddings
    chunks = chunk_corpus(articles, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    fingerprint = build_fingerprint(settings, articles)

    previous = _published_manifest(index_dir)
    old_chunk_list = read_chunks(index_dir / VERSIONS / previous.version) if previous else []

    texts, rows = _vector_texts(chunks)
    spans = [sentence_spans(chunk.text) for chunk in chunks]
    sentences = [chunk.text[a:b] for chunk, chunk_spans in zip(chunks, spans) for a, b in chunk_spans]

    if hasattr(encoder, "document_encoder"):  # full precision for the vectors we store
        encoder = encoder.document_encoder()
    variant = getattr(encoder, "variant", "torch")
    # One cache per exact encoder (variant and weights): vectors of another model never mix in.
    identity = getattr(encoder, "fingerprint", variant)
    cache_name = f"{settings.model_name}-{variant}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
    cache = EmbeddingCache(index_dir / "cache" / _safe_name(cache_name), encoder.dimension)
    say(f"embedding {len(texts)} passages and {len(sentences)} sentences")
    vectors, embedded_a = cache.embed(encoder, texts, progress)
    sentence_vectors, embedded_b = cache.embed(encoder, sentences, progress)
    heading_texts = sorted({" › ".join(c.headings) for c in chunks if c.headings})
    heading_rows, embedded_c = cache.embed(encoder, heading_texts, progress) if heading_texts else (None, 0)
    by_heading = {text: heading_rows[i] for i, text in enumerate(heading_texts)}
    heading_vectors = np.zeros((len(chunks), encoder.dimension), dtype=np.float32)
    for i, chunk in enumerate(chunks):
        if chunk.headings:
            heading_vectors[i] = by_heading[" › ".join(chunk.headings)]

    faiss_index = build_ann_index(vectors)  # exact for small corpora, HNSW/IVF for large ones

    version = _new_version_name(fingerprint)
    root = index_dir / VERSIONS
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    faiss.write_index(faiss_index, str(tmp / "vectors.faiss"))
    np.save(tmp / "rows.npy", np.asarray(rows, dtype=np.int64))
    np.save(tmp / "vectors.npy", vectors)
    if synonyms_path.exists():
        shutil.copyfile(synonyms_path, tmp / SYNONYMS_FILE)
    np.save(tmp / "sentences.npy", sentence_vectors)
    np.save(tmp / "headings.npy", heading_vectors)
    with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as out:
        for chunk, chunk_spans in zip(chunks, spans):
            record = {
                "id": chunk.id,
                "doc_id": chunk.doc_id,
                "title": chunk.title,
                "headings": list(chunk.headings),
                "text": chunk.text,
                "start": chunk.start,
                "end": chunk.end,
                "sentences": chunk_spans,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    articles_meta = {
        a.id: ArticleMeta(title=a.title, url=a.url, publisher=a.publisher,
                          reviewed=a.reviewed.isoformat(), hash=a.content_hash)
        for a in articles
    }
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        version=version,
        fingerprint=fingerprint,
        corpus_hash=corpus_hash(articles),
        model_name=settings.model_name,
        dimension=encoder.dimension,
        encoder=variant,
        encoder_fingerprint=identity,
        index_type=index_kind(faiss_index),
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        chunk_count=len(chunks),
        vector_count=len(rows),
        built_at=start.isoformat(timespec="seconds"),
        articles=articles_meta,
    )
    (tmp / "manifest.json").write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    for path in tmp.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    os.rename(tmp, root / version)
    cache.save({text_key(t) for t in texts + sentences + heading_texts})
    if publish_now:
        publish(index_dir, version)
        prune(index_dir, keep_versions)
    seconds = (dt.datetime.now(dt.UTC) - start).total_seconds()
    _observe_build(seconds)

    old_articles = previous.articles if previous else {}
    changes = _chunk_changes(old_chunk_list, chunks)
    totals = {kind: sum(c[kind] for c in changes.values()) for kind in _CHANGE_KINDS}
    return BuildReport(
        version=version,
        chunks=len(chunks),
        embedded=embedded_a + embedded_b + embedded_c,
        reused=len(texts) + len(sentences) + len(heading_texts) - embedded_a - embedded_b - embedded_c,
        articles_added=sorted(set(articles_meta) - set(old_articles)),
        articles_changed=sorted(
            a for a in set(articles_meta) & set(old_articles)
            if articles_meta[a].hash != old_articles[a].hash
        ),
        articles_removed=sorted(set(old_articles) - set(articles_meta)),
        chunks_added=totals["added"],
        chunks_removed=totals["removed"],
        seconds=seconds,
        chunks_changed=totals["changed"],
        chunks_unchanged=totals["unchanged"],
        per_article={doc: c for doc, c in sorted(changes.items())
                     if c["added"] or c["changed"] or c["removed"]},
    )


_CHANGE_KINDS = ("added", "changed", "removed", "unchanged")


def _chunk_changes(old: list[Chunk], new: list[Chunk]) -> dict[str, dict[str, int]]:
    """Per article, passages added, changed, removed and unchanged since the previous version.

    A passage is identified by its slot (article, heading path, position under that heading):
    same slot with other text is "changed", a slot only in one version is "added" or "removed".
    """
    def slots(chunks: list[Chunk]) -> dict[tuple, str]:
        position: dict[tuple, int] = {}
        result = {}
        for chunk in chunks:
            key = (chunk.doc_id, chunk.headings)
            position[key] = position.get(key, -1) + 1
            result[(*key, position[key])] = chunk.text
        return result

    before, after = slots(old), slots(new)
    changes: dict[str, dict[str, int]] = {}
    for slot in before.keys() | after.keys():
        kind = ("added" if slot not in before else "removed" if slot not in after
                else "unchanged" if before[slot] == after[slot] else "changed")
        changes.setdefault(slot[0], dict.fromkeys(_CHANGE_KINDS, 0))[kind] += 1
    return changes


def _observe_build(seconds: float) -> None:
    """The build's duration for /metrics: under ``ketfaq serve --workers N`` a build child writes
    it where the workers' scrape reads it (``PROMETHEUS_MULTIPROC_DIR``)."""
    from ketfaq.metrics import observe_build

    observe_build(seconds)


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _published_manifest(index_dir: Path) -> Manifest | None:
    """The published version's manifest; None when there is none or it can't be read (a build
    is how a damaged index is repaired, so it must not need the old one)."""
    if (name := current_version(index_dir)) is None:
        return None
    try:
        return read_manifest(index_dir / VERSIONS / name / "manifest.json")
    except IndexError_:
        return None


def index_is_stale(settings: Settings) -> bool:
    """True when nothing readable is published or it was built from other inputs."""
    manifest = _published_manifest(settings.index_dir)
    if manifest is None:
        return True
    return manifest.fingerprint != build_fingerprint(settings, load_corpus(settings.corpus_dir))
