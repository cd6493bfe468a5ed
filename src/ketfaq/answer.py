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

from pydantic import BaseModel, Field

from ketfaq.embedding import Encoder
from ketfaq.index import LoadedIndex, load_index
from ketfaq.messages import DISCLAIMER, NOTICES, Kind, referral_for
from ketfaq.retrieval import Hit, Searcher
from ketfaq.safety import SafetyGate
from ketfaq.settings import Settings

__all__ = [
    "AnswerResponse",
    "Answerer",
    "Highlight",
    "InvalidQuestion",
    "Passage",
    "Source",
    "normalize_question",
    "validate_question",
]


class InvalidQuestion(ValueError):
    """The question cannot be answered as given; the message is for the visitor."""


def validate_question(question: object, *, max_chars: int) -> str:
    """The question if it is usable, else :class:`InvalidQuestion` with a readable reason."""
    if question is None:
        raise InvalidQuestion("Please include a question.")
    if not isinstance(question, str):
        raise InvalidQuestion("The question must be text.")
    if not question.strip():
        raise InvalidQuestion("Please type a question: the message was empty.")
    if len(question) > max_chars:
        raise InvalidQuestion(
            f"Please keep your question under {max_chars} characters "
            f"(it has {len(question)}). Shorter questions get better answers."
        )
    if "\x00" in question:
        raise InvalidQuestion("The question contains a character that can't be read (NUL).")
    return question


class Source(BaseModel):
    """Where a passage comes from."""

    doc_id: str
    title: str
    section: str
    url: str | None


class Highlight(BaseModel):
    """Character offsets, within the passage text, of the sentence that best matches."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Passage(BaseModel):
    """A verbatim slice of an article."""

    text: str
    source: Source
    score: float = Field(description="cosine similarity to the question; higher is better")
    highlight: Highlight | None = None


class AnswerResponse(BaseModel):
    """The response contract of ``POST /api/ask`` (GUIDE §1), plus a few helpful extras."""

    kind: Kind
    question: str
    passages: list[Passage]
    disclaimer: str
    referral: str
    notice: str = Field(description="a short fixed sentence introducing the answer")
    index_version: str
    language: str = "en"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One published index version with its searcher: a request uses exactly one snapshot."""

    index: LoadedIndex
    searcher: Searcher


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
        self._lock = threading.Lock()
        self._snapshot = self._make_snapshot(index or load_index(settings.index_dir))
        self.cache = _ResponseCache(settings.cache_size)

    def _make_snapshot(self, index: LoadedIndex) -> _Snapshot:
        s = self.settings
        searcher = Searcher(index, rrf_k=s.rrf_k, candidates=s.candidates,
                            dedup_threshold=s.dedup_threshold, bm25_weight=s.bm25_weight,
                            heading_weight=s.bm25_heading_weight)
        return _Snapshot(index, searcher)

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
        vector = self.encoder.encode([question])[0]
        decision = self.gate.classify(question, vector)
        if decision.kind in ("crisis", "out_of_scope"):
            return self._respond(decision.kind, question, [], snapshot, decision.language)
        k = k or settings.top_k
        hits = snapshot.searcher.search(question, vector, k=max(k, settings.top_k),
                                        mode=mode or settings.retrieval_mode)
        # The decision looks at the top_k passages whatever k is, so evaluation at k=5 routes like the API.
        confident = bool(hits) and max(h.score for h in hits[: settings.top_k]) >= settings.min_score
        hits = hits[:k]
        shown = [h for h in hits if h.score >= settings.passage_min_score] if confident else []
        if decision.kind == "personal_advice":
            return self._respond("personal_advice", question, shown, snapshot, decision.language)
        if not confident:
            return self._respond("no_match", question, [], snapshot, decision.language)
        return self._respond("answer", question, shown, snapshot, decision.language)

    def _respond(self, kind: str, question: str, hits: list[Hit], snapshot: _Snapshot,
                 language: str) -> AnswerResponse:
        articles = snapshot.index.manifest["articles"]
        referral = referral_for(kind, crisis_referral=self.settings.crisis_referral)
        if kind == "crisis" and language == "es":
            referral = f"{self.settings.crisis_referral_es}\n\n{self.settings.crisis_referral}"
        passages = [
            Passage(
                text=hit.chunk.text,
                source=Source(
                    doc_id=hit.chunk.doc_id,
                    title=hit.chunk.title,
                    section=hit.chunk.section,
                    url=articles.get(hit.chunk.doc_id, {}).get("url"),
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
        )
