"""The safety gate: before retrieval, decide whether a message is a crisis, personal advice, out of
scope, or an ordinary question.

Rooms, in the order data flows through them:

- :mod:`~ketfaq.safety.text` and :mod:`~ketfaq.safety.language`: normalise, split, detect language;
- :mod:`~ketfaq.safety.lexicon`: the auditable phrase lexicon (``data/safety_lexicon.yaml``);
- :mod:`~ketfaq.safety.model`: the learned risk model shipped in ``data/safety_model.npz``;
- :mod:`~ketfaq.safety.gate`: combines them into one :class:`SafetyDecision`.

Training (``ketfaq safety train``) lives in :mod:`~ketfaq.safety.train` and is never imported when
serving.
"""

from ketfaq.safety.gate import Analysis, SafetyDecision, SafetyGate
from ketfaq.safety.language import detect_language
from ketfaq.safety.lexicon import Lexicon, load_lexicon
from ketfaq.safety.text import normalize, sentences, split_clauses

__all__ = [
    "Analysis",
    "Lexicon",
    "SafetyDecision",
    "SafetyGate",
    "detect_language",
    "load_lexicon",
    "normalize",
    "sentences",
    "split_clauses",
]
