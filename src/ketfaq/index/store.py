"""Index versions on disk: the layout, the typed manifest, publishing, rollback and loading.

Layout::

    index/CURRENT                 name of the published version (replaced atomically)
    index/versions/<version>/     manifest.json, vectors.faiss, chunks.jsonl, sentences.npy, ...
    index/cache/<encoder>/        embeddings keyed by text hash (see cache.py)

Version directories are immutable once renamed into place; only ``CURRENT`` changes, by rename,
so readers see the old version or the new one, never neither.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from ketfaq.chunking import Chunk
from ketfaq.corpus import SYNONYMS_FILE, load_synonyms

__all__ = [
    "FORMAT_VERSION", "ArticleMeta", "IndexError_", "LoadedIndex", "Manifest", "current_version",
    "list_versions", "load_index", "publish", "read_chunks", "read_manifest", "rollback", "prune",
    "VERSIONS",
]

FORMAT_VERSION = 2  # 2: heading-path vectors (headings.npy) for the second ranking stage
VERSIONS = "versions"
_CURRENT = "CURRENT"


class IndexError_(RuntimeError):
    """The index is missing or unreadable; the message says what to run."""


class ArticleMeta(BaseModel):
    """What the manifest records of each article: shown as a passage's source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    url: str | None
    publisher: str | None
    reviewed: str
    hash: str


class Manifest(BaseModel):
    """``manifest.json``: what a version was built from and how; validated whenever it is read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    version: str
    fingerprint: str
    corpus_hash: str
    model_name: str
    dimension: int
    encoder: str
    encoder_fingerprint: str
    index_type: str
    chunk_size: int
    chunk_overlap: int
    chunk_count: int
    vector_count: int
    built_at: str
    articles: dict[str, ArticleMeta]


@dataclass(slots=True)
class LoadedIndex:
    """A published index version in memory: everything a request needs, never mutated."""

    version: str
    manifest: Manifest
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


def read_manifest(path: Path) -> Manifest:
    """The manifest at ``path``, or :class:`IndexError_` naming the key that is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexError_(f"{path} not found") from None
    except (OSError, ValueError) as exc:
        raise IndexError_(f"{path} is not readable JSON ({exc}); rebuild with `ketfaq build`") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        found = data.get("format_version") if isinstance(data, dict) else None
        raise IndexError_(f"{path} has format {found}, this ketfaq reads {FORMAT_VERSION}; "
                          "rebuild with `ketfaq build`")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise IndexError_(f"{path}: {problems}; rebuild with `ketfaq build`") from None


def current_version(index_dir: Path) -> str | None:
    """The published version's name, or None when nothing is published."""
    try:
        name = (index_dir / _CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return name if name and (index_dir / VERSIONS / name / "manifest.json").exists() else None


def list_versions(index_dir: Path) -> list[Manifest]:
    """Manifests of all complete, readable versions, newest first."""
    root = index_dir / VERSIONS
    if not root.is_dir():
        return []
    manifests = []
    for path in root.iterdir():
        if path.is_dir() and not path.name.startswith(".") and (path / "manifest.json").exists():
            try:
                manifests.append(read_manifest(path / "manifest.json"))
            except IndexError_:
                continue  # an old format or a damaged version can't be served or rolled back to
    return sorted(manifests, key=lambda m: m.version, reverse=True)


def publish(index_dir: Path, version: str) -> None:
    """Make ``version`` the one served, atomically (readers see the old or the new, never neither)."""
    if not (index_dir / VERSIONS / version / "manifest.json").exists():
        raise IndexError_(f"no complete index version {version!r} in {index_dir}")
    fd, tmp = tempfile.mkstemp(dir=index_dir, prefix=".CURRENT.")
    with os.fdopen(fd, "w") as handle:
        handle.write(version + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / _CURRENT)


def prune(index_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` versions (never the published one) and build debris."""
    current = current_version(index_dir)
    root = index_dir / VERSIONS
    for manifest in list_versions(index_dir)[keep:]:
        if manifest.version != current:
            shutil.rmtree(root / manifest.version, ignore_errors=True)
    for leftover in root.glob(".tmp-*"):  # debris of killed builds
        shutil.rmtree(leftover, ignore_errors=True)


def rollback(index_dir: Path, version: str | None = None) -> str:
    """Publish ``version``, or the newest version older than the published one; returns its name."""
    current = current_version(index_dir)
    names = [m.version for m in list_versions(index_dir)]
    if version is None:
        older = [n for n in names if current is None or n < current]
        if not older:
            raise IndexError_(f"no version older than {current} to roll back to in {index_dir}")
        version = older[0]
    elif version not in names:
        raise IndexError_(f"no complete index version {version!r}; see `ketfaq index list`")
    publish(index_dir, version)
    return version


def _chunk(record: dict) -> Chunk:
    return Chunk(record["id"], record["doc_id"], record["title"], tuple(record["headings"]),
                 record["text"], record["start"], record["end"])


def read_chunks(version_dir: Path) -> list[Chunk]:
    """The passages of a version (empty when it has none), e.g. to diff a new build against."""
    try:
        lines = (version_dir / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [_chunk(json.loads(line)) for line in lines]


def load_index(index_dir: Path, version: str | None = None) -> LoadedIndex:
    """Load the published version (or ``version``) into memory."""
    name = version or current_version(index_dir)
    if name is None:
        raise IndexError_(f"no index published in {index_dir}: run `ketfaq build`")
    directory = index_dir / VERSIONS / name
    if not (directory / "manifest.json").exists():
        raise IndexError_(f"index version {name!r} not found in {index_dir}")
    manifest = read_manifest(directory / "manifest.json")
    try:
        loaded = _load_files(directory, name, manifest)
    except IndexError_:
        raise
    except Exception as exc:  # faiss, numpy and json each fail their own way on a damaged file
        raise IndexError_(f"index version {name} in {index_dir} is damaged ({type(exc).__name__}: "
                          f"{exc}); roll back with `ketfaq index rollback` or rebuild with "
                          "`ketfaq build`") from exc
    return loaded


def _load_files(directory: Path, name: str, manifest: Manifest) -> LoadedIndex:
    records = [json.loads(line) for line in (directory / "chunks.jsonl").read_text("utf-8").splitlines()]
    offsets = [[tuple(span) for span in r["sentences"]] for r in records]
    sentence_rows, cursor = [], 0
    for spans in offsets:
        sentence_rows.append(range(cursor, cursor + len(spans)))
        cursor += len(spans)
    loaded = LoadedIndex(
        version=name,
        manifest=manifest,
        chunks=[_chunk(r) for r in records],
        faiss_index=faiss.read_index(str(directory / "vectors.faiss")),
        row_chunk=np.load(directory / "rows.npy"),
        sentence_vectors=np.load(directory / "sentences.npy"),
        sentence_offsets=offsets,
        sentence_rows=sentence_rows,
        vectors=np.load(directory / "vectors.npy", mmap_mode="r"),
        synonyms=load_synonyms(directory / SYNONYMS_FILE),
        heading_vectors=np.load(directory / "headings.npy"),
    )
    n = len(loaded.chunks)
    shapes = {"chunks.jsonl": (n, manifest.chunk_count), "vectors.faiss": (loaded.faiss_index.ntotal,
              manifest.vector_count), "rows.npy": (len(loaded.row_chunk), manifest.vector_count),
              "headings.npy": (len(loaded.heading_vectors), n),
              "sentences.npy": (len(loaded.sentence_vectors), cursor)}
    wrong = [f"{file} has {got} rows, expected {want}" for file, (got, want) in shapes.items() if got != want]
    if wrong:
        raise IndexError_(f"index version {name} is damaged: {'; '.join(wrong)}; roll back with "
                          "`ketfaq index rollback` or rebuild with `ketfaq build`")
    return loaded
