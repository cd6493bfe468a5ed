"""``ketfaq safety train``: rebuild the shipped risk model from the data, deterministically.

Steps: load the examples with their frozen splits (:mod:`ketfaq.safety.data`); featurise (hashed
n-grams, tf-idf fitted on train, plus the serving encoder's MiniLM vector); fit a weighted
logistic regression on train; choose each regime's thresholds on val, scoring exactly as the gate
does (whole message and windows, the highest wins); report on the frozen test split.
Needs the ``train`` extra (scikit-learn, scipy); serving never imports this module.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ketfaq.safety.data import Example, load_examples
from ketfaq.safety.features import N_FEATURES, hashed_counts
from ketfaq.safety.model import Band, RiskModel, Thresholds, extra_windows

__all__ = ["TrainConfig", "train", "evaluate", "OWN_NEGATIVE_SOURCES"]

# Negatives that look like what visitors send a clinic's FAQ bot: the short-message false alarms.
OWN_NEGATIVE_SOURCES = ("qa:", "lexicon-exemplars", "articles", "medquad-questions",
                        "gard-consumer-questions")
# The hard ones: near misses, informational questions and article sentences about suicide.
HARD_NEGATIVE_SOURCES = ("qa:", "lexicon-exemplars", "articles")


@dataclass(frozen=True)
class TrainConfig:
    """The choices of a training run; changing one changes the artifact (and its version)."""

    c: float = 2.0  # inverse regularisation of the logistic regression
    vector_scale: float = 0.5  # weight of the MiniLM vector against the n-gram block
    short_false_alarms: float = 0.01  # crisis: at most this share of own negatives flagged...
    hard_false_alarms: float = 0.0  # ...and none of the hard ones (near misses, article sentences)
    check_in_false_alarms: float = 0.10  # the check-in line: this share of the hard negatives
    long_recall: float = 0.97  # long messages: recall on the clinically labelled users
    spanish_false_alarms: float = 0.10
    spanish_check_in: float = 0.20


Encode = Callable[[list[str]], np.ndarray]


def _matrix(texts: Sequence[str]):
    from scipy.sparse import csr_matrix

    rows = [hashed_counts(t) for t in texts]
    indptr = np.cumsum([0] + [len(r[0]) for r in rows])
    ids = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
    counts = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.float32)
    return csr_matrix((counts, ids, indptr), shape=(len(rows), N_FEATURES), dtype=np.float64)


def _fit(examples: list[Example], vectors: np.ndarray, config: TrainConfig) -> RiskModel:
    from scipy.sparse import csr_matrix, diags, hstack
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize

    train_rows = [i for i, e in enumerate(examples) if e.split == "train"]
    counts = _matrix([examples[i].text for i in train_rows])
    df = np.bincount(counts.indices, minlength=N_FEATURES)
    n = len(train_rows)
    # Stored as float16 in the artifact: fit with the rounded idf so serving matches training.
    idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float16).astype(np.float64)
    counts.data = 1 + np.log(counts.data)
    lexical = normalize(counts @ diags(idf)).tocsr()
    features = hstack([lexical, csr_matrix(vectors[train_rows] * config.vector_scale)]).tocsr()
    labels = np.array([examples[i].crisis for i in train_rows])
    weights = np.array([examples[i].weight for i in train_rows])
    fitted = LogisticRegression(C=config.c, solver="liblinear", max_iter=5000, random_state=0)
    fitted.fit(features, labels, sample_weight=weights)
    coef = fitted.coef_[0]
    return RiskModel(
        idf=idf.astype(np.float32),
        lexical_coef=coef[:N_FEATURES].astype(np.float16).astype(np.float32),
        vector_coef=(coef[N_FEATURES:] * config.vector_scale).astype(np.float32),
        intercept=float(fitted.intercept_[0]),
        thresholds=Thresholds(short=Band(crisis=0.5, check_in=0.5),
                              long=Band(crisis=0.5, check_in=0.5),
                              spanish=Band(crisis=0.5, check_in=0.5)),
        info={},
    )


def message_scores(model: RiskModel, texts: Sequence[str], vectors: np.ndarray,
                   encode: Encode) -> tuple[np.ndarray, np.ndarray]:
    """(highest window probability, number of windows) per text, scored as the gate scores."""
    scores = model.probabilities(list(texts), vectors)
    units = [extra_windows(t) for t in texts]
    extra = [(i, w) for i, ws in enumerate(units) for w in ws]
    if extra:  # all texts' windows in one batch call
        window_vectors = encode([w for _, w in extra])
        window_scores = model.probabilities([w for _, w in extra], window_vectors)
        for (i, _), p in zip(extra, window_scores):
            scores[i] = max(scores[i], p)
    return scores, np.array([max(1, len(u)) for u in units])


def _regime(example: Example, n_windows: int) -> str:
    if example.lang == "es":
        return "spanish"
    return "long" if n_windows > 1 else "short"


def _at_false_alarms(negatives: np.ndarray, share: float) -> float:
    """The lowest threshold that flags at most ``share`` of ``negatives``."""
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(share * len(ordered)))
    return float(np.nextafter(ordered[allowed], 1.0)) if allowed < len(ordered) else 0.0


def _at_recall(positives: np.ndarray, recall: float) -> float:
    """The highest threshold that still flags ``recall`` of ``positives``."""
    ordered = np.sort(positives)
    missed = int(np.floor((1.0 - recall) * len(ordered) + 1e-9))
    return float(ordered[min(missed, len(ordered) - 1)])


def _choose(examples: list[Example], scores: np.ndarray, config: TrainConfig) -> Thresholds:
    """Each regime's band from the validation split only (the test split is never looked at)."""
    val = [i for i, e in enumerate(examples) if e.split == "val"]

    def pick(keep: Callable[[Example], bool]) -> np.ndarray:
        return np.array([scores[i] for i in val if keep(examples[i])])

    own_neg = pick(lambda e: not e.crisis and e.source.startswith(OWN_NEGATIVE_SOURCES))
    hard_neg = pick(lambda e: not e.crisis and e.source.startswith(HARD_NEGATIVE_SOURCES))
    users_pos = pick(lambda e: e.crisis and e.source == "cssrs-reddit500-users")
    es_neg = pick(lambda e: e.lang == "es" and not e.crisis and not e.source.startswith("qa:"))
    es_own_neg = pick(lambda e: e.lang == "es" and not e.crisis and e.source.startswith("qa:"))
    short_crisis = max(_at_false_alarms(own_neg, config.short_false_alarms),
                       _at_false_alarms(hard_neg, config.hard_false_alarms))
    check_in = min(short_crisis, _at_false_alarms(hard_neg, config.check_in_false_alarms))
    long_crisis = _at_recall(users_pos, config.long_recall)
    # Spanish: the annotated tweets' share, and none of our own ordinary Spanish questions.
    es_crisis = max(_at_false_alarms(es_neg, config.spanish_false_alarms),
                    _at_false_alarms(es_own_neg, 0.0) if len(es_own_neg) else 0.0)
    return Thresholds(
        short=Band(crisis=short_crisis, check_in=check_in),
        long=Band(crisis=long_crisis, check_in=min(long_crisis, check_in)),
        spanish=Band(crisis=es_crisis,
                     check_in=min(es_crisis, _at_false_alarms(es_neg, config.spanish_check_in))),
    )


def evaluate(examples: list[Example], scores: np.ndarray, n_windows: np.ndarray,
             thresholds: Thresholds, split: str) -> dict[str, dict[str, float]]:
    """Per source on ``split``: recall, false alarms and counts at the regime's crisis threshold."""
    by: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for i, e in enumerate(examples):
        if e.split != split:
            continue
        band = getattr(thresholds, _regime(e, int(n_windows[i])))
        by[e.source].append((e.crisis, bool(scores[i] >= band.crisis)))
    out: dict[str, dict[str, float]] = {}
    for source, pairs in sorted(by.items()):
        pos = [flag for crisis, flag in pairs if crisis]
        neg = [flag for crisis, flag in pairs if not crisis]
        out[source] = {
            "positives": len(pos), "negatives": len(neg),
            "recall": round(float(np.mean(pos)), 4) if pos else None,
            "false_alarms": round(float(np.mean(neg)), 4) if neg else None,
        }
    return out


def _fingerprint(examples: list[Example], config: TrainConfig) -> str:
    digest = hashlib.sha256(json.dumps(config.__dict__, sort_keys=True).encode())
    for e in examples:
        digest.update(f"{e.crisis}\t{e.weight}\t{e.split}\t{e.lang}\t{e.text}\n".encode())
    return digest.hexdigest()[:16]


def train(data_dir: Path, qa_dir: Path, corpus_dir: Path, encode: Encode,
          config: TrainConfig | None = None, *, log: Callable[[str], None] = print) -> RiskModel:
    """Fit, choose thresholds on val, score the frozen test split; the model carries its report."""
    config = config or TrainConfig()
    examples = load_examples(data_dir, qa_dir, corpus_dir)
    log(f"{len(examples)} examples; embedding them with the serving encoder")
    vectors = np.asarray(encode([e.text for e in examples]), dtype=np.float32)
    log("fitting the logistic head")
    model = _fit(examples, vectors, config)
    log("scoring val and test as the gate does (whole message and windows)")
    held = [i for i, e in enumerate(examples) if e.split != "train"]
    scores = np.zeros(len(examples))
    n_windows = np.ones(len(examples), dtype=int)
    held_scores, held_windows = message_scores(model, [examples[i].text for i in held],
                                               vectors[held], encode)
    scores[held], n_windows[held] = held_scores, held_windows
    thresholds = _choose(examples, scores, config)
    report = {split: evaluate(examples, scores, n_windows, thresholds, split) for split in ("val", "test")}
    info = {"data": _fingerprint(examples, config), "config": config.__dict__, "metrics": report,
            "examples": {s: sum(e.split == s for e in examples) for s in ("train", "val", "test")}}
    return RiskModel(model.idf, model.lexical_coef, model.vector_coef, model.intercept,
                     thresholds, info)
