"""The second ranking stage: the shipped artifact, the re-ranked order, answerability, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ketfaq.evaluation.qa import collapse
from ketfaq.ranking.features import PAIR_FEATURES, QUESTION_FEATURES
from ketfaq.ranking.model import RankingModel, load_ranking_model

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_model_loads_small_and_carries_its_figures() -> None:
    model = load_ranking_model()
    path = ROOT / "src" / "ketfaq" / "data" / "ranking_model.npz"
    assert path.stat().st_size < 400_000  # two linear models and a float16 384x384 adapter
    assert model.pair_coef.shape == (len(PAIR_FEATURES),)
    assert model.dim == 384
    assert model.adapter.shape == (384, 384)
    assert model.info["ranker"]["queries"]["qa"] >= 380
    assert model.info["ranker"]["leave_one_article_out"]["hit@3"] > 0.7
    assert model.info["answerability"]["cv_refused"] <= 0.05


def test_a_corrupt_or_foreign_artifact_is_refused_with_the_command_to_fix_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="ketfaq rank train"):
        RankingModel.load(bad)
    model = load_ranking_model()
    other = tmp_path / "other.npz"
    np.savez(other, format=np.array(99), pair_features=np.array(json.dumps(PAIR_FEATURES)),
             question_features=np.array(json.dumps(QUESTION_FEATURES)))
    with pytest.raises(ValueError, match="another version"):
        RankingModel.load(other)
    round_trip = tmp_path / "copy.npz"
    model.save(round_trip)
    again = RankingModel.load(round_trip)
    assert np.allclose(again.pair_coef, model.pair_coef) and again.threshold == model.threshold


def test_the_answerer_reranks_and_decides_answerability(answerer) -> None:
    searcher = answerer._snapshot.searcher
    assert searcher.ranker is not None
    question = "can I drive myself home after the infusion?"
    vector = answerer.encoder.encode([question])[0]
    evidence = searcher.evidence(question, vector, k=3)
    assert evidence.answerable is True
    assert any("arrange transportation home" in collapse(h.chunk.text) for h in evidence.hits)
    # The first stage alone, for comparison, still works and returns cosine scores.
    plain = searcher.evidence(question, vector, k=3, mode="dense")
    assert plain.answerable is None and plain.hits


@pytest.mark.parametrize("question", [
    "what is your clinic's phone number for booking?",
    "how do I treat athlete's foot?",
])
def test_questions_the_articles_do_not_answer_get_no_passages(client, question: str) -> None:
    body = client.post("/api/ask", json={"question": question}).json()
    assert body["kind"] in ("no_match", "out_of_scope")
    assert body["passages"] == []


def test_answers_stay_verbatim_and_short_after_reranking(client) -> None:
    corpus = " ".join(collapse(p.read_text("utf-8")) for p in (ROOT / "corpus").glob("*.md"))
    body = client.post("/api/ask", json={"question": "what side effects can ketamine cause?"}).json()
    assert body["kind"] == "answer" and body["passages"]
    for passage in body["passages"]:
        assert len(passage["text"]) <= 800
        assert collapse(passage["text"]) in corpus
