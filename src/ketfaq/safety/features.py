"""Hashed character and word n-grams of a text: the lexical view of the learned risk model.

Character n-grams survive typos ("suicdal"), slang spellings and Spanish; word pairs add a little
context. The same function featurises training and serving text, so the two can never drift, and
serving needs only numpy (no scikit-learn or scipy import at start-up).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter

import numpy as np

__all__ = ["FEATURES_VERSION", "N_FEATURES", "hashed_counts", "prepare"]

FEATURES_VERSION = 1
N_FEATURES = 2**18
CHAR_NGRAMS = (2, 5)
MAX_CHARS = 4000  # a text's features are read from its first MAX_CHARS characters

_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
_MASK = N_FEATURES - 1


def prepare(text: str) -> str:
    """Lower-case, accents folded, apostrophes dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text[:MAX_CHARS].lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("'", "").replace("’", "")
    return " ".join(text.split())


def hashed_counts(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(feature ids, counts) of ``text``: char_wb n-grams of each word and word uni/bigrams."""
    prepared = prepare(text)
    words = _WORDS.findall(prepared)
    grams: Counter[str] = Counter()
    low, high = CHAR_NGRAMS
    for word in words:
        padded = f" {word} "
        size = len(padded)
        for n in range(low, min(high, size) + 1):
            for i in range(size - n + 1):
                grams[padded[i : i + n]] += 1
    for i, word in enumerate(words):
        grams["w:" + word] += 1
        if i:
            grams["b:" + words[i - 1] + " " + word] += 1
    if not grams:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    buckets: Counter[int] = Counter()
    for gram, count in grams.items():
        buckets[zlib.crc32(gram.encode("utf-8")) & _MASK] += count
    ids = np.fromiter(buckets.keys(), dtype=np.int64, count=len(buckets))
    counts = np.fromiter(buckets.values(), dtype=np.float32, count=len(buckets))
    return ids, counts
