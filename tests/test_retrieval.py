"""Retrieval: RRF, dedup, score direction and threshold, synonyms, and hit-rate floors on the QA sets."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import faiss
import numpy as np
import pytest

from ketfaq.chunking import Chunk
from ketfaq.corpus import SYNONYMS_FILE, load_corpus, load_synonyms
from ketfaq.index import LoadedIndex, load_index
from ketfaq.retrieval import MODES, Searcher, keyword_text, reciprocal_rank_fusion
from ketfaq.settings import Settings

from .conftest import CORPUS_DIR, load_qa

UNRELATED = ["best pizza in town", "how do I fix my car", "what's the weather tomorrow",
             "who won the world cup in 2018", "how do I change a flat tire", "cheap flights to hawaii"]


def _ws(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _hit(record: dict, text: str) -> bool:
    """The QA hit rule: the passage contains an anchor, compared after collapsing whitespace."""
    return any(_ws(anchor) in _ws(text) for anchor in record["anchors"])


def _searcher(index: LoadedIndex, settings: Settings) -> Searcher:
    return Searcher(index, rrf_k=settings.rrf_k, candidates=settings.candidates,
                    dedup_threshold=settings.dedup_threshold, bm25_weight=settings.bm25_weight,
                    heading_weight=settings.bm25_heading_weight)


@pytest.fixture(scope="module")
def index(settings: Settings, built_index) -> LoadedIndex:
    return load_index(settings.index_dir)


@pytest.fixture(scope="module")
def searcher(index: LoadedIndex, settings: Settings) -> Searcher:
    return _searcher(index, settings)


# --- Reciprocal rank fusion ------------------------------------------------------------------


def test_rrf_matches_a_hand_computed_example() -> None:
    # Ranks are 1-based: doc 7 is 1st in A and 3rd in B; doc 3 is 2nd in A; doc 5 is 1st in B.
    order, fused = reciprocal_rank_fusion([[7, 3], [5, 9, 7]], 12, k=10, weights=[1.0, 0.5])
    assert order.tolist() == [7, 3, 5, 9]
    assert fused[[7, 3, 5, 9]] == pytest.approx([1 / 11 + 0.5 / 13, 1 / 12, 0.5 / 11, 0.5 / 12])
    assert not fused[[0, 1, 2, 4, 6, 8, 10, 11]].any()


def test_rrf_breaks_ties_by_id_and_keeps_zero_weight_rankings() -> None:
    order, fused = reciprocal_rank_fusion([[4, 2], [2, 4], [9]], 10, weights=[1.0, 1.0, 0.0])
    assert order.tolist() == [2, 4, 9] and fused[9] == 0.0


def test_search_ranks_as_the_rrf_of_its_dense_and_bm25_rankings(searcher: Searcher, encoder) -> None:
    """``search`` fuses its dense and BM25 rankings as the RRF formula says, computed here by hand."""
    questions = [r["question"] for r in load_qa() if r.get("kind") == "answer"][:40]
    for question, vector in zip(questions, encoder.encode(questions)):
        dense = searcher._dense_scores(vector)
        seen = np.flatnonzero(dense > -1.0)
        dense_ranking = [int(i) for i in seen[np.argsort(-dense[seen], kind="stable")]]
        bm25_ranking = [int(i) for i in searcher.keywords.ranking(question, searcher.candidates)]
        fused: dict[int, float] = {}
        for ranking, weight in ((dense_ranking[: searcher.candidates], 1.0),
                                (bm25_ranking, searcher.bm25_weight)):
            for rank, doc in enumerate(ranking, start=1):
                fused[doc] = fused.get(doc, 0.0) + weight / (searcher.rrf_k + rank)
        hits = searcher.search(question, vector, k=3)
        assert [h.fused for h in hits] == [fused[searcher.index.chunks.index(h.chunk)] for h in hits]
        kept = sorted(fused, key=lambda i: (-fused[i], i))
        assert searcher.index.chunks.index(hits[0].chunk) == kept[0]


def test_question_tokens_are_what_bm25s_would_make(searcher: Searcher, settings: Settings) -> None:
    """Our per-question tokenizer (no progress bar, no growing caches) matches bm25s's own, on
    questions without a misspelt word (those are tested below)."""
    import bm25s
    import Stemmer

    reference = bm25s.tokenization.Tokenizer(stemmer=Stemmer.Stemmer("english"), stopwords="en")
    reference.tokenize([keyword_text(c, settings.bm25_heading_weight) for c in searcher.index.chunks],
                       show_progress=False)
    questions = [r["question"] for r in load_qa() if isinstance(r.get("question"), str)]
    questions += ["", "the and of", "Ketamine!!! KETAMINE ketamine's", "naïve café dosing"]
    checked = 0
    for question in questions:
        words = re.findall(r"\w+", question.lower())
        if any(searcher.keywords.spelled(w) != w for w in words):
            continue
        checked += 1
        ids = reference.tokenize([searcher.keywords.expand(question)], update_vocab=False,
                                 return_as="ids", show_progress=False)[0]
        assert searcher.keywords.query_tokens(question) == [i for i in ids if i != 0], question
    assert checked > 0.9 * len(questions)


def test_a_misspelt_word_is_read_as_the_article_word_and_real_words_are_left_alone(searcher: Searcher) -> None:
    keywords = searcher.keywords
    assert keywords.query_tokens("how long are the sesions") == keywords.query_tokens("how long are the sessions")
    assert keywords.content_stems("side efects of ketamine") == keywords.content_stems("side effects of ketamine")
    # English words the articles never use stay what they are: they may be what the question is about.
    for word in ("coffee", "medicaid", "death", "newer", "killed"):
        assert keywords.spelled(word) == word
    # Function words are not content: they neither cover a passage nor look like an unknown topic.
    assert keywords.content_stems("what did she say to me") == ["say"]
    assert keywords.content_stems("how does it work for me") == ["work"]


def test_concurrent_searches_return_what_sequential_ones_do(searcher: Searcher, encoder) -> None:
    """The API searches from many threads at once: one shared Searcher must not mix them up."""
    from concurrent.futures import ThreadPoolExecutor

    questions = [r["question"] for r in load_qa() if isinstance(r.get("question"), str)][:120]
    vectors = encoder.encode(questions)

    def run(i: int) -> list[tuple[str, float]]:
        return [(h.chunk.id, h.fused) for h in searcher.search(questions[i], vectors[i], k=3)]

    expected = [run(i) for i in range(len(questions))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(run, list(range(len(questions))) * 3)) == expected * 3


def test_rrf_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion([[1]], 2, k=0)
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([[1], [2]], 3, weights=[1.0])


# --- A tiny hand-made index: dedup and score direction --------------------------------------


def _tiny_index(texts: list[str], vectors: list[list[float]]) -> LoadedIndex:
    matrix = np.asarray(vectors, dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix)
    chunks = [Chunk(f"d#{i}", "d", "T", (), t, 0, len(t)) for i, t in enumerate(texts)]
    return LoadedIndex("tiny", {"articles": {}}, chunks, flat, np.arange(len(texts)),
                       matrix.copy(), [[(0, len(t))] for t in texts], [range(i, i + 1) for i in range(len(texts))],
                       matrix, {}, np.zeros_like(matrix))


def test_dedup_collapses_near_duplicates_so_the_top_passages_differ() -> None:
    index = _tiny_index(["alpha one", "alpha one again", "beta two", "gamma three"],
                        [[1, 0, 0], [1, 0.01, 0], [0.8, 0.6, 0], [0, 0, 1]])
    query = np.asarray([1, 0.1, 0], dtype=np.float32) / np.linalg.norm([1, 0.1, 0])
    deduped = Searcher(index, dedup_threshold=0.95).search("alpha", query, k=3, mode="dense")
    kept = Searcher(index, dedup_threshold=1.01).search("alpha", query, k=3, mode="dense")
    assert [h.chunk.id for h in kept] == ["d#1", "d#0", "d#2"]
    assert [h.chunk.id for h in deduped] == ["d#1", "d#2", "d#3"]


def test_scores_are_cosines_and_higher_means_closer() -> None:
    index = _tiny_index(["near", "far"], [[1, 0.2], [-0.3, 1]])
    query = np.asarray([1, 0], dtype=np.float32)
    hits = Searcher(index).search("near", query, k=2, mode="dense")
    assert [h.chunk.text for h in hits] == ["near", "far"]
    assert hits[0].score == pytest.approx(1 / np.sqrt(1.04), abs=1e-5)
    assert hits[1].score == pytest.approx(-0.3 / np.sqrt(1.09), abs=1e-5)


def test_searcher_validates_arguments(index: LoadedIndex) -> None:
    with pytest.raises(ValueError, match="candidates"):
        Searcher(index, candidates=0)
    with pytest.raises(ValueError, match="heading_weight"):
        Searcher(index, heading_weight=-1)
    with pytest.raises(ValueError, match="mode must be one of"):
        Searcher(index).search("q", np.zeros(index.vectors.shape[1], dtype=np.float32), mode="fuzzy")


def test_top_passages_on_the_real_index_are_not_near_duplicates(searcher: Searcher, encoder) -> None:
    questions = [r["question"] for r in load_qa() if r["kind"] == "answer"]
    for question, vector in zip(questions, encoder.encode(questions)):
        hits = searcher.search(question, vector, k=3)
        ids = [searcher.index.chunks.index(h.chunk) for h in hits]
        vecs = searcher._chunk_vectors[ids]
        sims = vecs @ vecs.T - 2 * np.eye(len(ids))
        assert sims.max() < searcher.dedup_threshold, question


# --- Keyword side: headings and synonyms -----------------------------------------------------


def test_keyword_text_repeats_the_heading_path() -> None:
    chunk = Chunk("d#1", "d", "T", ("Risks", "Side Effects"), "Dizziness.", 0, 10)
    assert keyword_text(chunk, 2) == "Risks › Side Effects\nRisks › Side Effects\nDizziness."
    assert keyword_text(chunk, 0) == "Dizziness."
    assert keyword_text(dataclasses.replace(chunk, headings=()), 3) == "Dizziness."


def test_shipped_synonyms_load_and_point_at_article_words() -> None:
    synonyms = load_synonyms(CORPUS_DIR / SYNONYMS_FILE)
    corpus = " ".join(a.body.lower() for a in load_corpus(CORPUS_DIR))
    assert len(synonyms) >= 50
    for key, terms in synonyms.items():
        assert key not in terms, key
        assert any(re.search(rf"\b{re.escape(t)}\b", corpus) for t in terms), (key, terms)


def test_expand_adds_article_terms_for_lay_words(searcher: Searcher) -> None:
    assert "habit-forming" in searcher.keywords.expand("will I get hooked on it?")
    assert "injections" in searcher.keywords.expand("Do they give you shots?")
    assert "provider" in searcher.keywords.expand("what do drs say")
    # Whole words only: "shots" must not fire inside "screenshots".
    assert searcher.keywords.expand("can I take screenshots") == "can I take screenshots"


def test_synonyms_let_keyword_search_find_the_article_wording(index: LoadedIndex, settings: Settings) -> None:
    question = "can you get hooked on it?"
    with_synonyms = _searcher(index, settings)
    without = _searcher(dataclasses.replace(index, synonyms={}), settings)
    vector = np.zeros(index.vectors.shape[1], dtype=np.float32)  # bm25 mode ignores the vector's ranks

    def found(s: Searcher) -> bool:
        return any(re.search(r"habit-forming|addictive|dependency", h.chunk.text)
                   for h in s.search(question, vector, k=3, mode="bm25"))

    assert found(with_synonyms) and not found(without)


# --- Confidence threshold --------------------------------------------------------------------


def test_min_score_threshold_does_what_it_says(settings: Settings, encoder, answerer) -> None:
    from ketfaq.answer import Answerer

    question = "Is ketamine addictive?"
    hits = _searcher(answerer.index, settings).search(question, encoder.encode([question])[0],
                                                       k=settings.top_k)
    best = max(h.score for h in hits)
    # min_score decides only without the learned second stage (rerank off).
    above = Answerer(settings.model_copy(update={"min_score": best - 0.01, "rerank": False}), encoder, answerer.index)
    below = Answerer(settings.model_copy(update={"min_score": best + 0.01, "rerank": False}), encoder, answerer.index)
    answered, refused = above.ask(question), below.ask(question)
    assert answered.kind == "answer" and answered.passages
    assert max(p.score for p in answered.passages) == pytest.approx(best, abs=1e-3)
    assert refused.kind == "no_match" and not refused.passages


def test_default_min_score_separates_unrelated_from_answerable(settings: Settings, searcher: Searcher,
                                                               encoder) -> None:
    answerable = [r["question"] for r in load_qa() if r["kind"] == "answer"]
    for question, vector in zip(answerable + UNRELATED, encoder.encode(answerable + UNRELATED)):
        best = max(h.score for h in searcher.search(question, vector, k=settings.top_k))
        assert (best >= settings.min_score) == (question in answerable), (question, best)
    assert settings.passage_min_score <= settings.min_score  # a confident answer always shows a passage


# --- Hit-rate floors through the real index --------------------------------------------------


def _rates(searcher: Searcher, encoder, records: list[dict], mode: str) -> tuple[float, float]:
    vectors = encoder.encode([r["question"] for r in records])
    first = []
    for record, vector in zip(records, vectors):
        hits = searcher.search(record["question"], vector, k=3, mode=mode)
        first.append(next((i for i, h in enumerate(hits) if _hit(record, h.chunk.text)), None))
    return (sum(f == 0 for f in first) / len(first), sum(f is not None for f in first) / len(first))


def test_hit_rate_floors_on_dev_qa(searcher: Searcher, encoder) -> None:
    records = [r for r in load_qa() if r["kind"] == "answer"]
    hit1, hit3 = _rates(searcher, encoder, records, "hybrid")
    assert hit1 >= 0.70 and hit3 >= 0.90, (hit1, hit3)


def test_hit_rate_floors_on_the_extra_answer_set(searcher: Searcher, encoder) -> None:
    records = [r for r in load_qa("answers_extra.jsonl") if r["kind"] == "answer"]
    hit1, hit3 = _rates(searcher, encoder, records, "hybrid")
    assert hit1 >= 0.55 and hit3 >= 0.78, (hit1, hit3)


def test_hybrid_beats_either_half_on_dev_qa(searcher: Searcher, encoder) -> None:
    records = [r for r in load_qa() if r["kind"] == "answer"]
    rates = {mode: _rates(searcher, encoder, records, mode) for mode in MODES}
    assert rates["hybrid"][0] >= max(rates["dense"][0], rates["bm25"][0]), rates
    assert rates["hybrid"][1] >= max(rates["dense"][1], rates["bm25"][1]), rates


def test_every_hit_is_a_verbatim_slice(searcher: Searcher, encoder) -> None:
    bodies = {a.id: a.body for a in load_corpus(Path(CORPUS_DIR))}
    question = "what are the side effects?"
    for hit in searcher.search(question, encoder.encode([question])[0], k=5):
        assert bodies[hit.chunk.doc_id][hit.chunk.start:hit.chunk.end] == hit.chunk.text
        if hit.highlight:
            start, end = hit.highlight
            assert 0 <= start < end <= len(hit.chunk.text)


def test_bm25_scores_are_those_of_the_scipy_backend(searcher: Searcher, settings: Settings,
                                                    monkeypatch) -> None:
    """Serving builds the BM25 matrix with numpy (no scipy import): same scores as with scipy."""
    import bm25s
    import scipy.sparse

    monkeypatch.setattr(bm25s, "sp", scipy.sparse, raising=False)  # what bm25s binds when it finds scipy
    monkeypatch.setattr(bm25s, "SCIPY_AVAILABLE", True)
    with_scipy = bm25s.BM25(csc_backend="scipy")
    with_scipy.index(searcher.keywords._tokenizer.tokenize(
        [keyword_text(c, settings.bm25_heading_weight) for c in searcher.index.chunks],
        return_as="ids", show_progress=False, update_vocab=False), show_progress=False)
    questions = [r["question"] for r in load_qa() if isinstance(r.get("question"), str)]
    questions += [c.text[:120] for c in searcher.index.chunks]  # every passage's words, too
    compared = 0
    for question in questions:
        tokens = searcher.keywords.query_tokens(question)
        if not tokens:
            continue
        ours = searcher.keywords._bm25.get_scores(tokens)
        np.testing.assert_allclose(ours, with_scipy.get_scores(tokens), rtol=1e-6, atol=1e-6)
        compared += 1
    assert compared > 150


def test_serving_imports_neither_scipy_nor_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, ketfaq.api, ketfaq.retrieval; "
            "print(sorted(m for m in ('scipy', 'scipy.sparse', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
