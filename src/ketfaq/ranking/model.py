"""The shipped second-stage model: a query adapter, a linear passage ranker and a linear
answerability model.

The adapter is a matrix applied to the question vector (``ranking.adapter``); the other two are
logistic regressions stored as plain arrays (standardisation folded in), so serving needs numpy
only and a question costs a matrix-vector product and a few dot products. ``ketfaq rank train``
rebuilds the artifact (docs/RANKING.md).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ketfaq.ranking.features import PAIR_FEATURES, QUESTION_FEATURES

__all__ = ["MODEL_FILE", "RankingModel", "adapt", "load_ranking_model"]

MODEL_FILE = "ranking_model.npz"
MODEL_FORMAT = 2


def adapt(adapter: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """The question vector mapped by the adapter, L2-normalised (float32)."""
    mapped = adapter @ np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(mapped))
    return (mapped / norm if norm > 0 else mapped).astype(np.float32)


@dataclass(frozen=True)
class RankingModel:
    """Scores candidate passages and decides whether the articles answer the question at all."""

    pair_coef: np.ndarray       # over PAIR_FEATURES (raw units: standardisation folded in)
    pair_intercept: float
    question_coef: np.ndarray   # over QUESTION_FEATURES followed by the question's MiniLM vector
    question_intercept: float
    threshold: float            # answerable when the question logit is at least this
    info: dict
    adapter: np.ndarray         # dim x dim map of the question vector (ranking.adapter)

    def __post_init__(self) -> None:
        if self.pair_coef.shape != (len(PAIR_FEATURES),):
            raise ValueError(f"ranking model: pair_coef has shape {self.pair_coef.shape}, "
                             f"expected ({len(PAIR_FEATURES)},)")
        if self.question_coef.shape[0] <= len(QUESTION_FEATURES):
            raise ValueError("ranking model: question_coef has no vector part")
        if not all(map(math.isfinite, (self.pair_intercept, self.question_intercept, self.threshold))):
            raise ValueError("ranking model: an intercept or the threshold is not a number")
        if self.adapter.shape != (self.dim, self.dim) or not np.isfinite(self.adapter).all():
            raise ValueError(f"ranking model: adapter has shape {self.adapter.shape}, "
                             f"expected ({self.dim}, {self.dim}) of finite numbers")

    @property
    def dim(self) -> int:
        return int(self.question_coef.shape[0] - len(QUESTION_FEATURES))

    def score_pairs(self, pairs: np.ndarray) -> np.ndarray:
        """The ranking logit of each candidate (one row of PAIR_FEATURES each); higher is better."""
        return pairs.astype(np.float64) @ self.pair_coef + self.pair_intercept

    def answerable_logit(self, question: np.ndarray, vector: np.ndarray) -> float:
        """How strongly the evidence says the articles answer this question (>= threshold: yes)."""
        x = np.concatenate([question.astype(np.float64), np.asarray(vector, dtype=np.float64)])
        return float(x @ self.question_coef + self.question_intercept)

    def save(self, path: Path) -> None:
        np.savez(
            path, format=np.array(MODEL_FORMAT),
            pair_features=np.array(json.dumps(PAIR_FEATURES)),
            question_features=np.array(json.dumps(QUESTION_FEATURES)),
            pair_coef=self.pair_coef.astype(np.float64),
            pair_intercept=np.array(self.pair_intercept),
            question_coef=self.question_coef.astype(np.float64),
            question_intercept=np.array(self.question_intercept),
            threshold=np.array(self.threshold),
            # W - I is small: float16 halves the file and moves cosines by < 1e-3
            adapter_delta=(self.adapter - np.eye(self.dim, dtype=np.float32)).astype(np.float16),
            info=np.array(json.dumps(self.info, sort_keys=True)),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> RankingModel:
        """Load and validate the artifact: the shipped one unless ``path`` is given."""
        source = path or resources.files("ketfaq").joinpath("data", MODEL_FILE)
        try:
            with source.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                found = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"ranking model {source} cannot be read ({exc}); rebuild it with "
                             "`ketfaq rank train`") from exc
        if (int(found.get("format", -1)) != MODEL_FORMAT
                or json.loads(str(found.get("pair_features", "[]"))) != list(PAIR_FEATURES)
                or json.loads(str(found.get("question_features", "[]"))) != list(QUESTION_FEATURES)):
            raise ValueError(f"ranking model {source} was made by another version of ketfaq; "
                             "rebuild it with `ketfaq rank train`")
        try:
            return cls(
                pair_coef=found["pair_coef"], pair_intercept=float(found["pair_intercept"]),
                question_coef=found["question_coef"], question_intercept=float(found["question_intercept"]),
                threshold=float(found["threshold"]), info=json.loads(str(found["info"])),
                adapter=np.eye(len(found["adapter_delta"]), dtype=np.float32) + found["adapter_delta"].astype(np.float32),
            )
        except KeyError as exc:
            raise ValueError(f"ranking model {source} has no {exc}; rebuild it with `ketfaq rank train`") from exc


def load_ranking_model(path: Path | None = None) -> RankingModel:
    """The shipped ranking model (or the one at ``path``), validated."""
    return RankingModel.load(path)
