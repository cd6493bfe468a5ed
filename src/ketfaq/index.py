"""Build, publish and load versioned FAISS indexes in ``index/``.

Layout::

    index/CURRENT                 name of the published version (replaced atomically)
    index/versions/<version>/     manifest.json, vectors.faiss, chunks.jsonl, sentences.npy
    index/cache/<model>-<encoder>/ embeddings keyed by text hash, one cache per exact encoder
                                  (variant + weights), so rebuilds re-embed only changes

A build writes a new version directory under a temporary name, renames it into place and only
then switches ``CURRENT``: a failed or killed build leaves the published index untouched.
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
from ketfaq.settings import Settings

__all__ = [
    "FORMAT_VERSION",
    "BuildReport",
    "IndexError_",
    "LoadedIndex",
    "build_index",
    "build_fingerprint",
    "current_version",
    "index_is_stale",
    "list_versions",
    "load_index",
    "publish",
    "rollback",
]

FORMAT_VERSION = 2  # 2: heading-path vectors (headings.npy) for the second ranking stage
_VERSIONS = "versions"
_CURRENT = "CURRENT"


class IndexError_(RuntimeError):
    """The index is missing or unreadable; the message says what to run."""


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


@dataclass(slots=True)
class LoadedIndex:
    """A published index version in memory: everything a request needs, never mutated."""

    version: str
    manifest: dict
    chunks: list[Chunk]
    faiss_index: faiss.Index
    row_chunk: np.ndarray
    sentence_vectors: np.ndarray
    sentence_offsets: list[list[tuple[int, int]]]
    sentence_rows: list[range]
    vectors: np.ndarray
    synonyms: dict[str, list[str]]
    heading_vectors: np.ndarray  # one row per chunk: its heading path alone (zeros: no heading)

    @property
    def chunk_by_id(self) -> dict[str, Chunk]:
        return {chunk.id: chunk for chunk in self.chunks}


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


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _EmbeddingCache:
    """Embeddings keyed by the hash of the embedded text, stored beside the index versions."""

    def __init__(self, directory: Path, dimension: int) -> None:
        self.directory = directory
        self.dimension = dimension
        self.vectors: dict[str, np.ndarray] = {}
        keys_path, vec_path = directory / "keys.json", directory / "vectors.npy"
        if keys_path.exists() and vec_path.exists():
            try:
                keys = json.loads(keys_path.read_text())
                matrix = np.load(vec_path)
                if matrix.shape == (len(keys), dimension):
                    self.vectors = dict(zip(keys, matrix, strict=True))
            except (OSError, ValueError):
                self.vectors = {}  # a damaged cache only costs time

    def embed(self, encoder: Encoder, texts: list[str], progress: bool) -> tuple[np.ndarray, int]:
        """Vectors for ``texts``, encoding only those not cached; returns (matrix, newly embedded)."""
        keys = [_text_key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        if missing:
            fresh = encoder.encode([t for _, t in missing], progress=progress)
            for (key, _), vec in zip(missing, fresh):
                self.vectors[key] = vec
        matrix = np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dimension))
        return np.ascontiguousarray(matrix, dtype=np.float32), len(missing)

    def save(self, keep: set[str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = sorted(k for k in self.vectors if k in keep)
        matrix = np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dimension))
        tmp = Path(tempfile.mkdtemp(dir=self.directory))
        np.save(tmp / "vectors.npy", matrix.astype(np.float32))
        (tmp / "keys.json").write_text(json.dumps(keys))
        os.replace(tmp / "vectors.npy", self.directory / "vectors.npy")
        os.replace(tmp / "keys.json", self.directory / "keys.json")
        shutil.rmtree(tmp, ignore_errors=True)


def current_version(index_dir: Path) -> str | None:
    """The published version's name, or None when nothing is published."""
    try:
        name = (index_dir / _CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return name if name and (index_dir / _VERSIONS / name / "manifest.json").exists() else None


def list_versions(index_dir: Path) -> list[dict]:
    """Manifests of all complete versions, newest first."""
    root = index_dir / _VERSIONS
    if not root.is_dir():
        return []
    manifests = []
    for path in root.iterdir():
        manifest = path / "manifest.json"
        if path.is_dir() and not path.name.startswith(".") and manifest.exists():
            manifests.append(json.loads(manifest.read_text()))
    return sorted(manifests, key=lambda m: m["version"], reverse=True)


def publish(index_dir: Path, version: str) -> None:
    """Make ``version`` the one served, atomically (readers see the old or the new, never neither)."""
    if not (index_dir / _VERSIONS / version / "manifest.json").exists():
        raise IndexError_(f"no complete index version {version!r} in {index_dir}")
    fd, tmp = tempfile.mkstemp(dir=index_dir, prefix=".CURRENT.")
    with os.fdopen(fd, "w") as handle:
        handle.write(version + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / _CURRENT)


def _prune(index_dir: Path, keep: int) -> None:
    current = current_version(index_dir)
    root = index_dir / _VERSIONS
    for manifest in list_versions(index_dir)[keep:]:
        if manifest["version"] != current:
            shutil.rmtree(root / manifest["version"], ignore_errors=True)
    for leftover in root.glob(".tmp-*"):  # debris of killed builds
        shutil.rmtree(leftover, ignore_errors=True)


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

    previous = None
    if (name := current_version(index_dir)) is not None:
        previous = json.loads((index_dir / _VERSIONS / name / "manifest.json").read_text())
    old_chunk_list = _read_chunks(index_dir / _VERSIONS / previous["version"]) if previous else []

    texts, rows = _vector_texts(chunks)
    spans = [sentence_spans(chunk.text) for chunk in chunks]
    sentences = [chunk.text[a:b] for chunk, chunk_spans in zip(chunks, spans) for a, b in chunk_spans]

    if hasattr(encoder, "document_encoder"):  # full precision for the vectors we store
        encoder = encoder.document_encoder()
    variant = getattr(encoder, "variant", "torch")
    # One cache per exact encoder (variant and weights): vectors of another model never mix in.
    identity = getattr(encoder, "fingerprint", variant)
    cache_name = f"{settings.model_name}-{variant}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
    cache = _EmbeddingCache(index_dir / "cache" / _safe_name(cache_name), encoder.dimension)
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
    root = index_dir / _VERSIONS
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
        a.id: {"title": a.title, "url": a.url, "publisher": a.publisher,
               "reviewed": a.reviewed.isoformat(), "hash": a.content_hash}
        for a in articles
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "version": version,
        "fingerprint": fingerprint,
        "corpus_hash": corpus_hash(articles),
        "model_name": settings.model_name,
        "dimension": encoder.dimension,
        "encoder": variant,
        "encoder_fingerprint": identity,
        "index_type": index_kind(faiss_index),
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "chunk_count": len(chunks),
        "vector_count": len(rows),
        "built_at": start.isoformat(timespec="seconds"),
        "articles": articles_meta,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    for path in tmp.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    os.rename(tmp, root / version)
    cache.save({_text_key(t) for t in texts + sentences + heading_texts})
    if publish_now:
        publish(index_dir, version)
        _prune(index_dir, keep_versions)

    old_articles = (previous or {}).get("articles", {})
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
            if articles_meta[a]["hash"] != old_articles[a].get("hash")
        ),
        articles_removed=sorted(set(old_articles) - set(articles_meta)),
        chunks_added=totals["added"],
        chunks_removed=totals["removed"],
        seconds=(dt.datetime.now(dt.UTC) - start).total_seconds(),
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


def rollback(index_dir: Path, version: str | None = None) -> str:
    """Publish ``version``, or the newest version older than the published one; returns its name."""
    current = current_version(index_dir)
    names = [m["version"] for m in list_versions(index_dir)]
    if version is None:
        older = [n for n in names if current is None or n < current]
        if not older:
            raise IndexError_(f"no version older than {current} to roll back to in {index_dir}")
        version = older[0]
    elif version not in names:
        raise IndexError_(f"no complete index version {version!r}; see `ketfaq index list`")
    publish(index_dir, version)
    return version


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _read_chunks(version_dir: Path) -> list[Chunk]:
    chunks = []
    try:
        lines = (version_dir / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        r = json.loads(line)
        chunks.append(Chunk(r["id"], r["doc_id"], r["title"], tuple(r["headings"]), r["text"],
                            r["start"], r["end"]))
    return chunks


def load_index(index_dir: Path, version: str | None = None) -> LoadedIndex:
    """Load the published version (or ``version``) into memory."""
    name = version or current_version(index_dir)
    if name is None:
        raise IndexError_(f"no index published in {index_dir}: run `ketfaq build`")
    directory = index_dir / _VERSIONS / name
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except FileNotFoundError:
        raise IndexError_(f"index version {name!r} not found in {index_dir}") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexError_(f"index {name} has format {manifest.get('format_version')}; rebuild it")
    records = [json.loads(line) for line in (directory / "chunks.jsonl").read_text("utf-8").splitlines()]
    chunks = [Chunk(r["id"], r["doc_id"], r["title"], tuple(r["headings"]), r["text"],
                    r["start"], r["end"]) for r in records]
    offsets = [[tuple(span) for span in r["sentences"]] for r in records]
    sentence_rows, cursor = [], 0
    for spans in offsets:
        sentence_rows.append(range(cursor, cursor + len(spans)))
        cursor += len(spans)
    return LoadedIndex(
        version=name,
        manifest=manifest,
        chunks=chunks,
        faiss_index=faiss.read_index(str(directory / "vectors.faiss")),
        row_chunk=np.load(directory / "rows.npy"),
        sentence_vectors=np.load(directory / "sentences.npy"),
        sentence_offsets=offsets,
        sentence_rows=sentence_rows,
        vectors=np.load(directory / "vectors.npy", mmap_mode="r"),
        synonyms=load_synonyms(directory / SYNONYMS_FILE),
        heading_vectors=np.load(directory / "headings.npy"),
    )


def index_is_stale(settings: Settings) -> bool:
    """True when nothing is published or the published index was built from other inputs."""
    name = current_version(settings.index_dir)
    if name is None:
        return True
    manifest = json.loads((settings.index_dir / _VERSIONS / name / "manifest.json").read_text())
    articles = load_corpus(settings.corpus_dir)
    return manifest.get("fingerprint") != build_fingerprint(settings, articles)
