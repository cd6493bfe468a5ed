"""Features of (question, candidate passage) pairs for the second ranking stage, and of a question's
evidence as a whole for the answerability model.

Everything here is cheap: cosines the first stage already computed, BM25 scores, and counts over
stems. Features are relative to the question's own candidates where that matters (a cosine of 0.5
is strong for one question and weak for another).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ketfaq.chunking import Chunk

__all__ = [
    "PAIR_FEATURES", "QUESTION_FEATURES", "Candidates", "ChunkStats", "QuestionTerms",
    "chunk_stats", "pair_features", "question_features",
]

PAIR_FEATURES = (
    "dense", "dense_rel", "text_cos", "sentence_max", "sentence_rel", "sentence_mean",
    "bm25_norm", "bm25_log", "dense_rrank", "bm25_rrank", "coverage", "heading_coverage",
    "coverage_count", "log_length", "position", "is_faq", "depth",
    "heading_cos", "heading_rel", "sentence_coverage", "section_dense",
    "adapted_dense", "adapted_dense_rel", "adapted_sentence", "adapted_sentence_rel",
    "adapted_heading", "adapted_heading_rel",
)
QUESTION_FEATURES = (
    "top_score", "second_score", "margin", "top_dense", "top_sentence", "top_bm25_log",
    "top_coverage", "top_heading_coverage", "known_share", "unknown_count", "log_terms",
    "best_coverage", "top_adapted_dense", "top_adapted_sentence", "best_adapted_sentence",
    "missing_top", "missing_top3",
)


@dataclass(frozen=True, slots=True)
class ChunkStats:
    """Per-chunk facts computed once per index version: stems, idf, position, shape."""

    text_postings: dict[str, np.ndarray]      # stem -> chunk indices whose text or headings use it
    heading_postings: dict[str, np.ndarray]   # stem -> chunk indices whose headings use it
    sentence_postings: dict[str, np.ndarray]  # stem -> sentence rows (index order) that use it
    sentence_starts: np.ndarray               # first sentence row of each chunk
    sentence_counts: np.ndarray
    idf: dict[str, float]
    position: np.ndarray
    is_faq: np.ndarray
    depth: np.ndarray
    log_length: np.ndarray

    def weight(self, stem: str) -> float:
        """IDF of a stem over chunks; a stem the corpus never uses gets the highest weight."""
        return self.idf.get(stem, self.max_idf)

    @property
    def n_chunks(self) -> int:
        return len(self.position)

    @property
    def max_idf(self) -> float:
        return math.log(1.0 + self.n_chunks)

    def per_chunk_max_mean(self, per_sentence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per chunk, the max and the mean of a per-sentence score (0 where a chunk has none).
        A chunk's sentences are contiguous rows in index order, so one reduceat covers them all."""
        best = np.zeros(self.n_chunks, np.float32)
        mean = np.zeros(self.n_chunks, np.float32)
        has = self.sentence_counts > 0
        if has.any() and len(per_sentence):
            starts = self.sentence_starts[has]
            best[has] = np.maximum.reduceat(per_sentence, starts)
            mean[has] = np.add.reduceat(per_sentence, starts) / self.sentence_counts[has]
        return best, mean


def _postings(stem_sets: Sequence[frozenset[str]]) -> dict[str, np.ndarray]:
    lists: dict[str, list[int]] = {}
    for i, stems in enumerate(stem_sets):
        for stem in stems:
            lists.setdefault(stem, []).append(i)
    return {stem: np.array(ids, dtype=np.int64) for stem, ids in lists.items()}


def chunk_stats(chunks: Sequence[Chunk], stems: Callable[[str], list[str]],
                sentence_offsets: Sequence[Sequence[tuple[int, int]]]) -> ChunkStats:
    """Precompute what :func:`pair_features` needs about every chunk of an index."""
    sentence_stems = [frozenset(stems(c.text[a:b])) for c, spans in zip(chunks, sentence_offsets)
                      for a, b in spans]
    counts = np.array([len(spans) for spans in sentence_offsets], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(counts) else counts
    heading_stems = [frozenset(stems(" ".join(c.headings))) for c in chunks]
    text_stems = [frozenset(stems(c.text)) | h for c, h in zip(chunks, heading_stems)]
    text_postings = _postings(text_stems)
    n = len(chunks)
    idf = {stem: math.log(1.0 + n / len(ids)) for stem, ids in text_postings.items()}
    ends: dict[str, int] = {}
    for c in chunks:
        ends[c.doc_id] = max(ends.get(c.doc_id, 0), c.end)
    position = np.array([c.start / max(ends[c.doc_id], 1) for c in chunks], dtype=np.float32)
    is_faq = np.array([c.question is not None for c in chunks], dtype=np.float32)
    depth = np.array([len(c.headings) for c in chunks], dtype=np.float32)
    log_length = np.array([math.log(1 + len(c.text)) for c in chunks], dtype=np.float32)
    return ChunkStats(text_postings, _postings(heading_stems), _postings(sentence_stems), starts, counts,
                      idf, position, is_faq, depth, log_length)


@dataclass(frozen=True, slots=True)
class QuestionTerms:
    """The content stems of a question, each with its idf weight."""

    stems: tuple[str, ...]
    weights: np.ndarray
    known: np.ndarray  # whether the corpus uses the stem at all

    @classmethod
    def of(cls, stems: Sequence[str], stats: ChunkStats) -> QuestionTerms:
        unique = tuple(dict.fromkeys(stems))
        weights = np.array([stats.weight(s) for s in unique], dtype=np.float32)
        known = np.array([s in stats.idf for s in unique], dtype=bool)
        return cls(unique, weights, known)


@dataclass(slots=True)
class Candidates:
    """The first stage's candidate passages for one question, with what it measured about them."""

    ids: np.ndarray          # chunk indices
    dense: np.ndarray        # best cosine over the chunk's vectors
    text_cos: np.ndarray     # cosine of the chunk's own vector
    sentence_max: np.ndarray
    sentence_mean: np.ndarray
    bm25: np.ndarray         # raw BM25 score
    dense_rank: np.ndarray   # 1-based rank in the dense list (0: not ranked)
    bm25_rank: np.ndarray
    heading_cos: np.ndarray  # cosine of the heading path alone
    section_dense: np.ndarray  # best dense cosine of any passage under the same heading path
    # The same cosines for the question vector mapped by the learned adapter (ranking.adapter):
    # the chunk's own vector, its best sentence, its heading path.
    adapted_dense: np.ndarray
    adapted_sentence: np.ndarray
    adapted_heading: np.ndarray


def _presence(terms: QuestionTerms, postings: dict[str, np.ndarray], size: int) -> np.ndarray:
    """A (terms x size) boolean matrix: which rows use each of the question's stems."""
    out = np.zeros((len(terms.stems), size), dtype=bool)
    for t, stem in enumerate(terms.stems):
        ids = postings.get(stem)
        if ids is not None:
            out[t, ids] = True
    return out


def _coverage(terms: QuestionTerms, postings: dict[str, np.ndarray], ids: np.ndarray,
              size: int) -> tuple[np.ndarray, np.ndarray]:
    """idf-weighted and plain share of the question's stems each of ``ids`` contains."""
    if not terms.stems:
        return np.zeros(len(ids), np.float32), np.zeros(len(ids), np.float32)
    present = _presence(terms, postings, size)[:, ids]
    total = float(terms.weights.sum()) or 1.0
    return (terms.weights @ present / total).astype(np.float32), present.mean(axis=0).astype(np.float32)


def _sentence_coverage(terms: QuestionTerms, stats: ChunkStats, ids: np.ndarray) -> np.ndarray:
    """Per passage, the idf-weighted share of the question's stems its best sentence contains."""
    if not terms.stems or not stats.n_chunks:
        return np.zeros(len(ids), np.float32)
    n_sentences = int(stats.sentence_starts[-1] + stats.sentence_counts[-1])
    per_sentence = terms.weights @ _presence(terms, stats.sentence_postings, n_sentences)
    total = float(terms.weights.sum()) or 1.0
    return (stats.per_chunk_max_mean(per_sentence.astype(np.float32))[0][ids] / total).astype(np.float32)


def _rrank(rank: np.ndarray) -> np.ndarray:
    return np.where(rank > 0, 1.0 / np.maximum(rank, 1), 0.0).astype(np.float32)


def pair_features(cands: Candidates, terms: QuestionTerms, stats: ChunkStats) -> np.ndarray:
    """One row of :data:`PAIR_FEATURES` per candidate."""
    ids = cands.ids
    if len(ids) == 0:
        return np.zeros((0, len(PAIR_FEATURES)), np.float32)
    bm25_max = float(cands.bm25.max())
    coverage, count = _coverage(terms, stats.text_postings, ids, stats.n_chunks)
    heading, _ = _coverage(terms, stats.heading_postings, ids, stats.n_chunks)
    columns = (
        cands.dense, cands.dense - cands.dense.max(), cands.text_cos,
        cands.sentence_max, cands.sentence_max - cands.sentence_max.max(), cands.sentence_mean,
        cands.bm25 / bm25_max if bm25_max > 0 else np.zeros(len(ids)), np.log1p(cands.bm25),
        _rrank(cands.dense_rank), _rrank(cands.bm25_rank), coverage, heading, count,
        stats.log_length[ids], stats.position[ids], stats.is_faq[ids], stats.depth[ids],
        cands.heading_cos, cands.heading_cos - cands.heading_cos.max(),
        _sentence_coverage(terms, stats, ids), cands.section_dense,
        cands.adapted_dense, cands.adapted_dense - cands.adapted_dense.max(),
        cands.adapted_sentence, cands.adapted_sentence - cands.adapted_sentence.max(),
        cands.adapted_heading, cands.adapted_heading - cands.adapted_heading.max(),
    )
    return np.column_stack(columns).astype(np.float32)


def _missing(terms: QuestionTerms, stats: ChunkStats, ids: np.ndarray) -> float:
    """The idf (over the highest possible) of the rarest question stem none of ``ids`` uses: one
    specific word the best passages never mention ("coffee", "medicaid") is the usual mark of a
    question they don't answer."""
    if not terms.stems or not len(ids):
        return 0.0
    present = _presence(terms, stats.text_postings, stats.n_chunks)[:, ids].any(axis=1)
    absent = terms.weights[~present]
    return float(absent.max() / stats.max_idf) if len(absent) else 0.0


def question_features(pairs: np.ndarray, scores: np.ndarray, terms: QuestionTerms,
                      ids: np.ndarray, stats: ChunkStats) -> np.ndarray:
    """:data:`QUESTION_FEATURES`: how strong the best evidence is, and how much of the question
    the corpus can speak to at all (stems it never uses are the usual sign of an uncovered topic).
    """
    col = {name: i for i, name in enumerate(PAIR_FEATURES)}
    n_terms = len(terms.stems)
    known_share = float(terms.known.mean()) if n_terms else 0.0
    unknown = float((~terms.known).sum()) if n_terms else 0.0
    if len(scores) == 0:
        return np.array([-10.0, -10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, known_share, unknown,
                         math.log1p(n_terms), 0.0, 0.0, 0.0, 0.0, 1.0, 1.0], np.float32)
    order = np.argsort(-scores, kind="stable")
    top = pairs[order[0]]
    second = float(scores[order[1]]) if len(order) > 1 else float(scores[order[0]]) - 5.0
    return np.array([
        float(scores[order[0]]), second, float(scores[order[0]]) - second,
        top[col["dense"]], top[col["sentence_max"]], top[col["bm25_log"]],
        top[col["coverage"]], top[col["heading_coverage"]], known_share, unknown,
        math.log1p(n_terms), float(pairs[:, col["coverage"]].max()),
        top[col["adapted_dense"]], top[col["adapted_sentence"]], float(pairs[:, col["adapted_sentence"]].max()),
        _missing(terms, stats, ids[order[:1]]), _missing(terms, stats, ids[order[:3]]),
    ], np.float32)
