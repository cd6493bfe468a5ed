"""The exemplar view of the gate: cosine of a message to our own crisis, near-miss, domain and
off-topic sentences (``semantic`` and ``out_of_scope.offtopic_semantic`` in the lexicon file).

Semantic crisis test, with c the best cosine to a crisis exemplar and n the best to a near-miss
exemplar: crisis if ``c >= crisis_threshold`` and ``c - n >= margin`` (the nearest exemplar is a
crisis one), or ``c >= t`` and ``c - n >= m`` for one of the ``[t, m]`` tiers (less similar but
clearly on the crisis side), or ``c >= high_threshold``. A penalty raises every bar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ketfaq.embedding import Encoder
from ketfaq.safety.cache import exemplar_vectors
from ketfaq.safety.lexicon import Lexicon

__all__ = ["ExemplarScorer"]


class ExemplarScorer:
    """Exemplar vectors embedded once (one batch, cached on disk); read-only afterwards."""

    def __init__(self, encoder: Encoder, lexicon: Lexicon, crisis_threshold: float,
                 cache_dir: Path) -> None:
        self.config = lexicon.semantic
        self.offtopic_config = lexicon.offtopic_semantic
        self.crisis_threshold = float(crisis_threshold)
        groups = [lexicon.crisis_exemplars, lexicon.near_miss_exemplars,
                  lexicon.domain_exemplars, lexicon.offtopic_exemplars]
        texts = [t for g in groups for t in g]
        vectors = exemplar_vectors(encoder, texts, cache_dir)
        if vectors.shape[0] != len(texts):
            raise ValueError("encoder returned a different number of vectors than texts")
        self.dim = int(vectors.shape[1])
        bounds = np.cumsum([0] + [len(g) for g in groups])
        self._crisis, self._near, self._domain, self._offtopic = (
            np.ascontiguousarray(vectors[bounds[i] : bounds[i + 1]]) for i in range(4)
        )
        for v in (self._crisis, self._near, self._domain, self._offtopic):
            v.setflags(write=False)

    def scores(self, vector: np.ndarray) -> tuple[float, float]:
        """(best cosine to a crisis exemplar, best cosine to a near-miss exemplar)."""
        return float(np.max(self._crisis @ vector)), float(np.max(self._near @ vector))

    def is_crisis(self, crisis: float, near: float, penalty: float, *, whole: bool = False) -> bool:
        """The tiered test above; ``whole`` adds the tiers meant for a whole message only."""
        cfg = self.config
        if crisis >= cfg.high_threshold + penalty:
            return True
        tiers = [(self.crisis_threshold, cfg.margin), *cfg.tiers]
        if whole:
            tiers.extend(cfg.message_tiers)
        return any(crisis >= threshold + penalty and crisis - near >= margin + penalty
                   for threshold, margin in tiers)

    def is_offtopic(self, vector: np.ndarray) -> bool:
        """Nearer an off-topic exemplar than any domain one, by the configured margin."""
        cfg = self.offtopic_config
        domain = float(np.max(self._domain @ vector))
        offtopic = float(np.max(self._offtopic @ vector))
        return offtopic >= cfg.threshold and offtopic - domain >= cfg.margin
