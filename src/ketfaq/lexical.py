"""The keyword view of an index version: BM25 (bm25s) over heading path + text, with synonyms.

Questions are tokenized exactly as bm25s tokenizes the corpus (same splitter, stopwords,
stemmer and stem ids), with the clinic's synonyms file mapping visitors' words to the articles'.
A misspelt question word is read as the article word one edit away (ketfaq.spelling: "anxeity",
"sesions"), so a misspelling neither drops out of BM25 nor looks like an uncovered topic to the
answerability model.
"""

from __future__ import annotations

import re
import sys
import threading
from functools import lru_cache
from types import ModuleType

import numpy as np
import Stemmer

from ketfaq.chunking import Chunk
from ketfaq.spelling import Speller

__all__ = ["KeywordIndex", "keyword_text"]


def _import_bm25s() -> ModuleType:
    """bm25s, imported without scipy, which would otherwise add to every server start.

    bm25s imports scipy.sparse whenever it can, only to build its score matrix, and builds the
    same matrix with numpy otherwise (its ``csc_backend="numpy"``); serving needs nothing else
    from scipy. scipy stays importable for any code that wants it later.
    """
    if "bm25s" in sys.modules or "scipy.sparse" in sys.modules:
        import bm25s
        return bm25s
    sys.modules["scipy.sparse"] = None  # type: ignore[assignment]  # `import scipy.sparse` raises
    try:
        import bm25s
    finally:
        del sys.modules["scipy.sparse"]
    return bm25s


bm25s = _import_bm25s()
_WORD_RE = re.compile(r"[\w'’-]+", re.UNICODE)
_ALNUM_RE = re.compile(r"\w+", re.UNICODE)


def keyword_text(chunk: Chunk, heading_weight: int = 3) -> str:
    """What BM25 indexes for a chunk: its heading path ``heading_weight`` times, then its text.

    A heading names what its section is about in the words visitors use ("Potential Side
    Effects", "Who is a good candidate?"); repeating it makes those words count like a topic
    rather than one passing mention; 3 beat 1 and 2 on the tuning QA sets.
    """
    path = " › ".join(chunk.headings)
    return (path + "\n") * heading_weight + chunk.text if path else chunk.text


class KeywordIndex:
    """BM25 over one version's chunks; immutable after construction, safe across threads."""

    def __init__(self, chunks: list[Chunk], synonyms: dict[str, list[str]], *,
                 heading_weight: int = 3) -> None:
        if heading_weight < 0:
            raise ValueError(f"heading_weight must be >= 0, got {heading_weight}")
        self._stemmer = Stemmer.Stemmer("english")
        self._tokenizer = bm25s.tokenization.Tokenizer(stemmer=self._stemmer, stopwords="en")
        corpus_ids = self._tokenizer.tokenize(
            [keyword_text(chunk, heading_weight) for chunk in chunks], return_as="ids",
            show_progress=False,
        )
        self._bm25 = bm25s.BM25(csc_backend="numpy")  # whether or not scipy was imported first
        self._bm25.index(corpus_ids, show_progress=False)
        # Our own question tokenizer over bm25s's parts: no per-call progress bar, and no word
        # cache growing with every word a visitor types.
        self._split = self._tokenizer.splitter
        self._stopwords = frozenset(self._tokenizer.stopwords or ())
        self._function_words = self._stopwords | frozenset(bm25s.stopwords.STOPWORDS_EN_PLUS)
        self._stem_ids = dict(self._tokenizer.stem_to_sid)
        # A PyStemmer object is not safe to share between threads: misses take a lock.
        self._stem_lock = threading.Lock()
        self._stem = lru_cache(maxsize=16384)(self._stem_word)
        counts: dict[str, int] = {}
        for chunk in chunks:
            for word in self._split(keyword_text(chunk, 1).lower()):
                if word not in self._stopwords and word.isalpha():
                    counts[word] = counts.get(word, 0) + 1
        self._speller = Speller(counts)
        # Each phrase's regex is tried only when the question has the phrase's first word:
        # a whole-word match implies it, and most phrases are never tried.
        self._synonyms: dict[str, list[tuple[int, re.Pattern[str], list[str]]]] = {}
        phrases = sorted(synonyms.items(), key=lambda kv: -len(kv[0]))
        for order, (phrase, terms) in enumerate(phrases):
            first = _ALNUM_RE.match(phrase)
            pattern = re.compile(rf"(?<![\w]){re.escape(phrase)}(?![\w])")
            self._synonyms.setdefault(first.group() if first else "", []).append((order, pattern, terms))

    def _stem_word(self, word: str) -> str:
        with self._stem_lock:
            return self._stemmer.stemWord(word)

    def spelled(self, word: str) -> str:
        """``word``, or the article word one edit away when it is a misspelling (ketfaq.spelling);
        a word whose stem the articles use ("sessions" for "session") is no misspelling."""
        return word if self._stem(word) in self._stem_ids else self._speller.word(word)

    def _words(self, text: str, stopwords: frozenset[str]) -> list[str]:
        return [self.spelled(w) for w in self._split(text.lower()) if w not in stopwords]

    def content_stems(self, text: str) -> list[str]:
        """Stems of the content words of ``text`` (typos of corpus words read as those words),
        known to the corpus or not. Function words ("me", "did", "does") are left out with
        bm25s's longer English list, so they neither count as coverage nor as unknown words."""
        return [self._stem(w) for w in self._words(text, self._function_words)]

    def expand(self, question: str) -> str:
        """The question plus the article terms for any lay words it uses (synonyms file)."""
        lowered = " ".join(_WORD_RE.findall(question.lower()))
        words = {"", *_ALNUM_RE.findall(lowered)}
        candidates = sorted(c for w in words for c in self._synonyms.get(w, ()))
        extra = [term for _, pattern, terms in candidates if pattern.search(lowered) for term in terms]
        return question if not extra else f"{question} {' '.join(extra)}"

    def query_tokens(self, question: str) -> list[int]:
        """The BM25 token ids of ``question`` after synonym expansion (unknown words dropped)."""
        ids = []
        for word in self._words(self.expand(question), self._stopwords):
            sid = self._stem_ids.get(self._stem(word))
            if sid is not None:
                ids.append(sid)
        return ids

    def scores(self, question: str, size: int) -> np.ndarray:
        """BM25 score of every chunk for ``question`` (zeros when none of its words is known)."""
        tokens = self.query_tokens(question)
        if not tokens:
            return np.zeros(size, np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def ranking(self, question: str, limit: int) -> np.ndarray:
        """Chunk ids with a positive BM25 score, best first (at most ``limit``)."""
        tokens = self.query_tokens(question)
        if not tokens:
            return np.zeros(0, dtype=np.int64)
        scores = self._bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")[:limit]
        return order[scores[order] > 0]
