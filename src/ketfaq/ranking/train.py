"""Train the second-stage model from the corpus, the QA files and real questions about other
conditions; deterministic, so ``ketfaq rank train --check`` can compare with the shipped artifact.

* Query adapter (``ranking.adapter``): a linear map of the question vector fitted on the same
  training queries. Its cosines are ranker features, so the ranker must see them as they look on
  questions the adapter never saw: every training query's features come from an adapter fitted
  without its article (stacking).
* Ranker: pointwise logistic regression over :data:`PAIR_FEATURES` of the first stage's candidates.
  Queries: every answer record with anchors in the tuning QA files, every FAQ question heading and
  every sub-section heading (as a question for its own section). Reported figure: leave one
  article out (the held-out article's questions are ranked by an adapter and a ranker that never
  saw a question it answers).
* Answerability: logistic regression over :data:`QUESTION_FEATURES` plus the question's MiniLM
  vector. Positives: the answer records (scored by their out-of-article adapter and ranker);
  negatives: the QA files' out-of-scope and uncovered records and 4 in 5 of the MedQuAD / GARD
  questions (the fifth is kept out for the report). The threshold keeps 96% of positives in
  cross-validation.

The frozen held-out set (tests/data/fresh_qa.jsonl) is never read here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ketfaq.evaluation.qa import collapse, doc_key, load_qa
from ketfaq.ranking.adapter import fit_adapter
from ketfaq.ranking.features import QuestionTerms, pair_features, question_features
from ketfaq.ranking.model import RankingModel
from ketfaq.retrieval import Searcher

__all__ = ["ANSWER_FILES", "NEGATIVE_FILES", "EXTERNAL_FILES", "train"]

ANSWER_FILES = ("dev_qa.jsonl", "answers_extra.jsonl", "answers_lay.jsonl", "retired_heldout.jsonl")
NEGATIVE_FILES = ("dev_qa.jsonl", "safety_extra.jsonl", "uncovered_extra.jsonl", "retired_heldout.jsonl")
EXTERNAL_FILES = ("medquad-questions.jsonl", "gard-consumer-questions.jsonl")
# Questions about anxiety or ketamine in MedQuAD/GARD may well be answered by the articles:
# they are not used as "other condition" negatives.
_ON_TOPIC = re.compile(r"anxi|panic|ketamin|ptsd|stress|phobi|obsessive|\bocd\b|depress", re.I)
EXTERNAL_SAMPLE = 800
RANKER_C, ANSWER_C, KEEP_POSITIVES = 1.0, 0.05, 0.96


def _bucket(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 5


def _queries(searcher: Searcher, qa_dir: Path) -> list[dict]:
    """Training queries with their relevant chunk indices and the articles that answer them."""
    chunks = searcher.index.chunks
    texts = [collapse(c.text) for c in chunks]
    out = []
    for r in load_qa([qa_dir / f for f in ANSWER_FILES]):
        if r.is_ranked:
            rel = {i for i, t in enumerate(texts) if any(collapse(a) in t for a in r.anchors)}
            out.append({"id": r.id, "question": r.question, "relevant": rel, "docs": set(r.docs),
                        "group": "qa"})
    seen = set()
    for c in chunks:
        key = (c.doc_id, c.headings)
        if key in seen or not c.headings or (len(c.headings) < 2 and c.question is None):
            continue
        seen.add(key)
        rel = {j for j, d in enumerate(chunks) if (d.doc_id, d.headings) == key}
        out.append({"id": f"heading:{c.id}", "question": c.headings[-1], "relevant": rel,
                    "docs": {doc_key(c.doc_id)}, "group": "faq" if c.question else "heading"})
    return out


def _pairs(searcher: Searcher, question: str, vector: np.ndarray,
           adapter: np.ndarray) -> tuple[np.ndarray, np.ndarray, QuestionTerms]:
    cands = searcher.first_stage(question, vector, n=searcher.rerank_depth, adapter=adapter)
    terms = searcher.question_terms(question)
    return pair_features(cands, terms, searcher.stats), cands.ids, terms


def _fit_logistic(x: np.ndarray, y: np.ndarray, c: float, weights: np.ndarray | None = None):
    """Standardised logistic regression; returns (coef, intercept) in the raw feature units."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=5000, class_weight=None if weights is not None else "balanced")
    model.fit((x - mean) / scale, y, sample_weight=weights)
    coef = model.coef_[0] / scale
    return coef, float(model.intercept_[0] - coef @ mean)


def _rank_metrics(rows: list[dict], coef: np.ndarray, intercept: float) -> dict:
    hit1 = hit3 = rr = 0.0
    for q in rows:
        order = np.argsort(-(q["X"] @ coef + intercept), kind="stable")
        rank = next((i for i, v in enumerate(q["y"][order], 1) if v), None)
        hit1 += rank == 1
        hit3 += rank is not None and rank <= 3
        rr += 1.0 / rank if rank is not None and rank <= 5 else 0.0
    n = max(len(rows), 1)
    return {"n": len(rows), "hit@1": round(hit1 / n, 4), "hit@3": round(hit3 / n, 4), "mrr@5": round(rr / n, 4)}


def train(searcher: Searcher, encode: Callable[[list[str]], np.ndarray], qa_dir: Path,
          data_dir: Path | None, log: Callable[[str], None] = lambda _m: None) -> RankingModel:
    """Fit both models and return the artifact with its cross-validated figures in ``info``."""
    from sklearn.model_selection import StratifiedKFold

    queries = _queries(searcher, qa_dir)
    log(f"ranker: {len(queries)} training queries")
    vectors = encode([q["question"] for q in queries])
    for q, v in zip(queries, vectors):
        q["vector"] = v
    index = searcher.index
    sentence_chunk = np.array([i for i, rows in enumerate(index.sentence_rows) for _ in rows], dtype=np.int64)
    chunk_vectors = searcher.chunk_vectors
    adapters: dict[frozenset[str], np.ndarray] = {}

    def adapter_without(articles_out: frozenset[str]) -> np.ndarray:
        """The adapter fitted on every training query none of ``articles_out`` answers."""
        if articles_out not in adapters:
            rows = [q for q in queries if not q["docs"] & articles_out]
            adapters[articles_out] = fit_adapter(np.stack([q["vector"] for q in rows]),
                                                 [q["relevant"] for q in rows], chunk_vectors,
                                                 index.sentence_vectors, sentence_chunk)
        return adapters[articles_out]

    def labelled(q: dict, adapter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, ids, _terms = _pairs(searcher, q["question"], q["vector"], adapter)
        return x, np.array([i in q["relevant"] for i in ids.tolist()], dtype=int)

    def fit_ranker(rows: list[tuple[np.ndarray, np.ndarray]]):
        return _fit_logistic(np.vstack([x for x, _ in rows]), np.concatenate([y for _, y in rows]), RANKER_C)

    articles = sorted({doc_key(c.doc_id) for c in index.chunks})
    folds, per_article = {}, {}
    qa_rows = [q for q in queries if q["group"] == "qa"]
    for art in articles:
        log(f"ranker: leaving out article {art}")
        train_rows = [labelled(q, adapter_without(frozenset({art, min(q["docs"])}))) for q in queries
                      if art not in q["docs"]]
        folds[art] = (*fit_ranker(train_rows), adapter_without(frozenset({art})))
        tests = [dict(zip(("X", "y"), labelled(q, folds[art][2]))) for q in qa_rows if art in q["docs"]]
        per_article[art] = _rank_metrics(tests, *folds[art][:2])
    total = sum(m["n"] for m in per_article.values())
    loao = {k: round(sum(m[k] * m["n"] for m in per_article.values()) / total, 4) for k in ("hit@1", "hit@3", "mrr@5")}
    coef, intercept = fit_ranker([labelled(q, adapter_without(frozenset({min(q["docs"])}))) for q in queries])
    adapter = adapter_without(frozenset())
    log(f"ranker leave-one-article-out on {len(qa_rows)} QA questions: {loao}")

    # Answerability: features from an out-of-article ranker, so positives look like unseen ones.
    def features(question: str, vector: np.ndarray, ranker) -> np.ndarray:
        pairs, ids, terms = _pairs(searcher, question, vector, ranker[2])
        scores = pairs @ ranker[0] + ranker[1] if len(pairs) else np.zeros(0)
        return np.concatenate([question_features(pairs, scores, terms, ids, searcher.stats), vector])

    positives = [features(q["question"], q["vector"], folds[min(q["docs"])]) for q in qa_rows]
    # Answer records without anchors (near misses: ordinary questions whose wording looks risky)
    # are answerable questions too; they have no article, so each gets a rotating fold's ranker.
    near = [r.question for r in load_qa([qa_dir / f for f in (*ANSWER_FILES, *NEGATIVE_FILES)])
            if r.kind == "answer" and not r.anchors]
    near = list(dict.fromkeys(near))
    positives += [features(t, v, folds[articles[i % len(articles)]])
                  for i, (t, v) in enumerate(zip(near, encode(near)))]
    negatives_text = [r.question for r in load_qa([qa_dir / f for f in NEGATIVE_FILES])
                      if r.kind == "out_of_scope"]
    external_train, external_test = [], []
    if data_dir is not None:
        for name in EXTERNAL_FILES:
            for line in (data_dir / name).read_text("utf-8").splitlines():
                text = json.loads(line)["text"]
                if not _ON_TOPIC.search(text):
                    (external_test if _bucket(text) == 0 else external_train).append(text)
        rng = np.random.default_rng(0)
        external_train = [external_train[i] for i in sorted(rng.choice(len(external_train),
                          min(EXTERNAL_SAMPLE, len(external_train)), replace=False))]
        external_test = [external_test[i] for i in sorted(rng.choice(len(external_test),
                         min(400, len(external_test)), replace=False))]
    neg_texts = negatives_text + external_train
    neg_vectors = encode(neg_texts)
    negatives = [features(t, v, folds[articles[i % len(articles)]])
                 for i, (t, v) in enumerate(zip(neg_texts, neg_vectors))]
    x = np.vstack([positives, negatives])
    y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    weights = np.r_[np.full(len(positives), len(negatives) / len(positives)), np.ones(len(negatives))]
    oof = np.zeros(len(y))
    for train_idx, test_idx in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        c, b = _fit_logistic(x[train_idx], y[train_idx], ANSWER_C, weights[train_idx])
        oof[test_idx] = x[test_idx] @ c + b
    ordered = np.sort(oof[y == 1])
    threshold = float(ordered[int((1 - KEEP_POSITIVES) * len(ordered))])
    q_coef, q_intercept = _fit_logistic(x, y, ANSWER_C, weights)
    own = slice(len(positives), len(positives) + len(negatives_text))
    log(f"answerability: {len(qa_rows)} ranked + {len(near)} near-miss positives")
    answerability = {
        "positives": len(positives), "negatives": len(negatives),
        "cv_refused": round(float(np.mean(oof[y == 1] < threshold)), 4),
        "cv_negatives_answered": round(float(np.mean(oof[y == 0] >= threshold)), 4),
        "cv_qa_negatives_answered": round(float(np.mean(oof[own] >= threshold)), 4),
    }
    if external_test:
        ext = [features(t, v, (coef, intercept, adapter)) for t, v in zip(external_test, encode(external_test))]
        answerability["external_test_answered"] = round(float(np.mean(np.vstack(ext) @ q_coef + q_intercept >= threshold)), 4)
        answerability["external_test_n"] = len(external_test)
    log(f"answerability: {answerability}")
    info = {"ranker": {"leave_one_article_out": loao, "per_article": per_article,
                       "queries": {g: sum(q["group"] == g for q in queries) for g in ("qa", "faq", "heading")}},
            "answerability": answerability, "threshold": round(threshold, 4),
            "data": str(data_dir) if data_dir else None}
    return RankingModel(coef.astype(np.float64), intercept, q_coef.astype(np.float64), q_intercept,
                        threshold, info, adapter)
