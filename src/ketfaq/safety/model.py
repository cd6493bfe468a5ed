"""The learned risk model: a logistic head over hashed n-grams and the MiniLM vector.

Trained by ``ketfaq safety train`` (:mod:`ketfaq.safety.train`) on real people's text and this
repo's own chatbot-style messages; shipped as ``data/safety_model.npz`` (see docs/SAFETY.md).
A message is scored as a whole and window by window (a few sentences at a time), and the highest
window wins, so one crisis sentence inside a long ordinary message still counts.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketfaq.safety.features import FEATURES_VERSION, N_FEATURES, hashed_counts

__all__ = ["MODEL_FILE", "RiskModel", "Thresholds", "Regime", "extra_windows", "windows",
           "screened_text", "load_model"]

MODEL_FILE = "safety_model.npz"
MODEL_FORMAT = 1
SCREEN_CHARS = 20_000  # screened sentence by sentence; past this, the first and last halves
WINDOW_CHARS = 400

Regime = Literal["short", "long", "spanish"]

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


class Band(BaseModel):
    """Probabilities: at or above ``crisis`` is a crisis; at or above ``check_in`` gets the check-in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crisis: float = Field(ge=0.0, le=1.0)
    check_in: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.check_in > self.crisis:
            raise ValueError("check_in must not be above crisis")
        return self


class Thresholds(BaseModel):
    """One band per regime, chosen on the validation split (docs/SAFETY.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    short: Band
    long: Band
    spanish: Band


def screened_text(text: str) -> str:
    """The part of ``text`` that is screened: all of it up to SCREEN_CHARS, else both ends."""
    if len(text) <= SCREEN_CHARS:
        return text
    half = SCREEN_CHARS // 2
    return text[:half] + "\n" + text[-half:]


def windows(text: str, size: int = WINDOW_CHARS) -> list[str]:
    """Consecutive sentences packed into windows of about ``size`` characters (one if it fits)."""
    text = screened_text(text)
    if len(text) <= size:
        return [text]
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        while len(sentence) > size:  # a run-on "sentence": cut it at a space
            cut = sentence.rfind(" ", 0, size)
            cut = cut if cut > 0 else size
            if current:
                out.append(current)
                current = ""
            out.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > size:
            out.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        out.append(current)
    return out


def extra_windows(text: str) -> list[str]:
    """The windows scored besides the whole message: none when it fits in one window.

    The gate and training both score ``[text, *extra_windows(text)]`` and take the highest.
    """
    units = windows(text)
    return units if len(units) > 1 else []


@dataclass(frozen=True)
class RiskModel:
    """Scores text for crisis risk; read-only, so one instance is shared between threads."""

    idf: np.ndarray
    lexical_coef: np.ndarray
    vector_coef: np.ndarray
    intercept: float
    thresholds: Thresholds
    info: dict

    def __post_init__(self) -> None:
        for name in ("idf", "lexical_coef"):
            if getattr(self, name).shape != (N_FEATURES,):
                raise ValueError(f"safety model: {name} has shape {getattr(self, name).shape}, "
                                 f"expected ({N_FEATURES},)")

    @property
    def dim(self) -> int:
        return int(self.vector_coef.shape[0])

    def lexical_logit(self, text: str) -> float:
        """The n-gram part of the logit (sublinear tf-idf, l2-normalised)."""
        ids, counts = hashed_counts(text)
        if not len(ids):
            return 0.0
        weights = (1.0 + np.log(counts)) * self.idf[ids]
        norm = float(np.sqrt(weights @ weights)) or 1.0
        return float(weights @ self.lexical_coef[ids]) / norm

    def logits(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """The logit of each text, given its MiniLM vector (one row per text)."""
        lexical = np.array([self.lexical_logit(t) for t in texts], dtype=np.float64)
        return lexical + np.asarray(vectors, dtype=np.float64) @ self.vector_coef + self.intercept

    def probabilities(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(texts, vectors)))

    def band(self, regime: Regime) -> Band:
        return getattr(self.thresholds, regime)

    def save(self, path: Path) -> None:
        """Write the artifact: float16 weights, stored uncompressed (~1 MB) so it loads in milliseconds."""
        np.savez(
            path,
            format=np.array(MODEL_FORMAT),
            features=np.array(FEATURES_VERSION),
            idf=self.idf.astype(np.float16),
            lexical_coef=self.lexical_coef.astype(np.float16),
            vector_coef=self.vector_coef.astype(np.float32),
            intercept=np.array(self.intercept, dtype=np.float64),
            thresholds=np.array(self.thresholds.model_dump_json()),
            info=np.array(json.dumps(self.info, sort_keys=True)),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> RiskModel:
        """Load and validate the artifact: the shipped one unless ``path`` is given."""
        source = path or resources.files("ketfaq").joinpath("data", MODEL_FILE)
        try:
            with source.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                found = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"safety model {source} cannot be read ({exc}); rebuild it with "
                             "`ketfaq safety train`") from exc
        if int(found.get("format", -1)) != MODEL_FORMAT or int(found.get("features", -1)) != FEATURES_VERSION:
            raise ValueError(f"safety model {source} was made by another version of ketfaq; "
                             "rebuild it with `ketfaq safety train`")
        intercept = float(found["intercept"])
        if not math.isfinite(intercept):
            raise ValueError(f"safety model {source}: intercept is not a number")
        return cls(
            idf=found["idf"].astype(np.float32),
            lexical_coef=found["lexical_coef"].astype(np.float32),
            vector_coef=found["vector_coef"].astype(np.float32),
            intercept=intercept,
            thresholds=Thresholds.model_validate_json(str(found["thresholds"])),
            info=json.loads(str(found["info"])),
        )


def load_model(path: Path | None = None) -> RiskModel:
    """The shipped risk model (or the one at ``path``), validated."""
    return RiskModel.load(path)
