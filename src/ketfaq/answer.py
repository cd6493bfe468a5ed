"""Turn a question into the response contract: safety first, then retrieval, then fixed texts.

No text in a response is generated: passages are verbatim article slices, everything else
comes from :mod:`ketfaq.messages` or settings.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ketfaq.contract import AnswerResponse, Highlight, Kind, Passage, Source
from ketfaq.embedding import Encoder
from ketfaq.index import LoadedIndex, load_index
from ketfaq.messages import CHECK_IN, DISCLAIMER, NOTICES, referral_for
from ketfaq.retrieval import Hit, Searcher
from ketfaq.safety import SafetyDecision, SafetyGate
from ketfaq.safety.gate import readable
from ketfaq.settings import Settings

__all__ = [
    "Answerer",
    "InvalidQuestion",
    "check_searchable",
    "normalize_question",
    "validate_question",
]


class InvalidQuestion(ValueError):
    """The question cannot be answered as given; the message is for the visitor."""


def validate_question(question: object) -> str:
    """The question if it can be screened, else :class:`InvalidQuestion` with a readable reason.

    Length and unreadable characters are *not* checked here: every message is screened for
    crisis first, and only a non-crisis message is refused for them (:func:`check_searchable`).
    """
    if question is None:
        raise InvalidQuestion("Please include a question.")
    if not isinstance(question, str):
        raise InvalidQuestion("The question must be text.")
    if not question.strip():
        raise InvalidQuestion("Please type a question: the message was empty.")
    return question


def check_searchable(question: str, *, max_chars: int) -> None:
    """Refuse, after screening, a message retrieval can't use: too long, or with a NUL."""
    if len(question) > max_chars:
        raise InvalidQuestion(
            f"Please keep your question under {max_chars} characters (it has {len(question)}): "
            "ask one question at a time, in a sentence or two, and the articles' passages will "
            "match it better. If you are struggling right now, call or text 988."
        )
    if "\x00" in question:
        raise InvalidQuestion("The question contains a character that can't be read (NUL).")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One published index version with its searcher: a request uses exactly one snapshot."""

    index: LoadedIndex
    searcher: Searcher


def _load_ranker(settings: Settings):
    """The second-stage model, loaded and validated eagerly (None when ``rerank`` is off)."""
    if not settings.rerank:
        return None
    from ketfaq.ranking.model import load_ranking_model

    return load_ranking_model(settings.ranking_model_path)


def normalize_question(question: str) -> str:
    """The cache key of a question: NFKC, case-folded, whitespace collapsed.

    Safe because everything downstream ignores these differences: the model's tokenizer is
    uncased, BM25 and the safety gate lowercase, and whitespace never reaches a token.
    """
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


_Key = tuple[str, str, int, str]


class _ResponseCache:
    """A thread-safe LRU of responses keyed by (index version, mode, k, normalized question)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[_Key, AnswerResponse] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: _Key) -> AnswerResponse | None:
        with self._lock:
            response = self._items.get(key)
            if response is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return response

    def put(self, key: _Key, response: AnswerResponse) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = response
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class Answerer:
    """The single answer path shared by the API, the CLI and the evaluation."""

    def __init__(self, settings: Settings, encoder: Encoder, index: LoadedIndex | None = None) -> None:
        self.settings = settings
        self.encoder = encoder
        self.gate = SafetyGate(encoder, settings)
        self.ranker = _load_ranker(settings)
        self._lock = threading.Lock()
        self._snapshot = self._make_snapshot(index or load_index(settings.index_dir))
        self.cache = _ResponseCache(settings.cache_size)
        # Set when the published version could not be loaded and another is served instead
        # (runtime.load_servable); cleared once a published version is swapped in.
        self.degraded: str | None = None
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._vector_lock = threading.Lock()

    def _make_snapshot(self, index: LoadedIndex) -> _Snapshot:
        s = self.settings
        searcher = Searcher(index, rrf_k=s.rrf_k, candidates=s.candidates,
                            dedup_threshold=s.dedup_threshold, bm25_weight=s.bm25_weight,
                            heading_weight=s.bm25_heading_weight, ranker=self.ranker,
                            rerank_depth=s.rerank_depth)
        return _Snapshot(index, searcher)

    def question_vector(self, text: str) -> np.ndarray:
        """The embedding of ``text``, remembered for a while: recording an unanswered question
        then reuses the vector its answer computed instead of embedding it again."""
        with self._vector_lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
                return vector
        vector = self.encoder.encode([text])[0]
        with self._vector_lock:
            self._vectors[text] = vector
            while len(self._vectors) > 256:
                self._vectors.popitem(last=False)
        return vector

    @property
    def version(self) -> str:
        return self._snapshot.index.version

    @property
    def index(self) -> LoadedIndex:
        return self._snapshot.index

    def reload(self, index_dir: Path | None = None) -> bool:
        """Swap in the published index if it changed; in-flight requests keep their snapshot."""
        from ketfaq.index import current_version

        directory = index_dir or self.settings.index_dir
        with self._lock:
            name = current_version(directory)
            if name is None or name == self._snapshot.index.version:
                return False
            self._snapshot = self._make_snapshot(load_index(directory, name))
            self.cache.clear()  # keys carry the version too: this only frees the memory
            self.degraded = None
            return True

    def ask(self, question: str, *, mode: str | None = None, k: int | None = None) -> AnswerResponse:
        """Answer one already-validated question; ``k`` (default ``top_k``) only lengthens the list.

        Answers are cached (LRU, ``settings.cache_size``) per index version and normalized question.
        """
        snapshot = self._snapshot  # read once: the whole answer comes from this version
        key = (snapshot.index.version, mode or "", k or 0, normalize_question(question))
        cached = self.cache.get(key)
        if cached is not None:
            return cached if cached.question == question else cached.model_copy(update={"question": question})
        response = self._answer(question, mode, k, snapshot)
        self.cache.put(key, response)
        return response

    def _answer(self, question: str, mode: str | None, k: int | None, snapshot: _Snapshot) -> AnswerResponse:
        settings = self.settings
        text = readable(question)
        vector = self.question_vector(text)
        # Screened before any length check: a long message in distress gets help, not a 422.
        decision = self.gate.classify(text, vector)
        if decision.kind == Kind.CRISIS:
            return self._respond(Kind.CRISIS, question, [], snapshot, decision)
        check_searchable(question, max_chars=settings.max_question_chars)
        if decision.kind == Kind.OUT_OF_SCOPE:
            return self._respond(Kind.OUT_OF_SCOPE, question, [], snapshot, decision)
        k = k or settings.top_k
        evidence = snapshot.searcher.evidence(text, vector, k=max(k, settings.top_k),
                                              mode=mode or settings.retrieval_mode)
        hits = evidence.hits
        if evidence.answerable is not None:  # the learned answerability model decides
            confident = bool(hits) and evidence.answerable
        else:  # no ranking model (or a single-view mode): the top_k passages' best cosine
            confident = bool(hits) and max(h.score for h in hits[: settings.top_k]) >= settings.min_score
        hits = hits[:k]
        shown = [h for h in hits if h.score >= settings.passage_min_score] if confident else []
        if decision.kind == Kind.PERSONAL_ADVICE:
            return self._respond(Kind.PERSONAL_ADVICE, question, shown, snapshot, decision)
        if not confident:
            return self._respond(Kind.NO_MATCH, question, [], snapshot, decision)
        return self._respond(Kind.ANSWER, question, shown, snapshot, decision)

    def _crisis_referral(self, decision: SafetyDecision) -> str:
        """The crisis help this decision needs, in Spanish first for a Spanish message."""
        s = self.settings
        english, spanish = {
            "emergency": (s.emergency_referral, s.emergency_referral_es),
            "danger": (s.danger_referral, s.danger_referral_es),
        }.get(decision.referral, (s.crisis_referral, s.crisis_referral_es))
        return f"{spanish}\n\n{english}" if decision.language == "es" else english

    def _respond(self, kind: Kind, question: str, hits: list[Hit], snapshot: _Snapshot,
                 decision: SafetyDecision) -> AnswerResponse:
        articles = snapshot.index.manifest.articles
        language = decision.language
        referral = (self._crisis_referral(decision) if kind == Kind.CRISIS
                    else referral_for(kind, crisis_referral=self.settings.crisis_referral))
        passages = [
            Passage(
                id=hit.chunk.id,
                text=hit.chunk.text,
                source=Source(
                    doc_id=hit.chunk.doc_id,
                    title=hit.chunk.title,
                    section=hit.chunk.section,
                    url=meta.url if (meta := articles.get(hit.chunk.doc_id)) else None,
                ),
                score=round(hit.score, 4),
                highlight=Highlight(start=hit.highlight[0], end=hit.highlight[1]) if hit.highlight else None,
            )
            for hit in hits
        ]
        return AnswerResponse(
            kind=kind,
            question=question,
            passages=passages,
            disclaimer=DISCLAIMER,
            referral=referral,
            notice=NOTICES[kind],
            index_version=snapshot.index.version,
            language=language,
            check_in=CHECK_IN if decision.check_in and kind != Kind.CRISIS else None,
        )
