"""Training and test data for the learned risk model, with frozen, deterministic splits.

Two kinds of text feed the model:

- real people's posts and questions, the folder given as ``--data`` (docs/SAFETY.md lists the data sets, labels and licences:
  they are read at training time and never shipped);
- this repo's own chatbot-style messages: the QA files in ``qa/`` (ordinary, personal-advice and
  crisis questions), the exemplars of the lexicon, and sentences of the articles in ``corpus/``
  (informational text about suicide and overdose that must not look like a crisis).

Every record gets a split from a hash of its *group* (a C-SSRS user, a QA record id, an article),
so the same user's posts never sit on both sides and the split never changes between runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Example", "Split", "load_examples", "split_of", "DATA_FILES", "TEST_SHARE", "VAL_SHARE"]

Split = Literal["train", "val", "test"]

# The frozen shares: a group's split is fixed by its hash, so these must never change.
TEST_SHARE = 0.25
VAL_SHARE = 0.15

# file stem -> (weight of a positive, weight of a negative): weak labels count for less.
DATA_FILES: dict[str, tuple[float, float]] = {
    "cssrs-reddit500-users": (3.0, 3.0),
    "cssrs-reddit500-posts": (0.4, 0.4),
    "sdcnl-reddit-suicidewatch-vs-depression": (0.3, 0.3),
    "twitter-suicidal-intention": (0.5, 0.5),
    "es-suicidal-tweets-valeriano2020": (1.5, 1.0),
    "medquad-questions": (0.0, 0.3),
    "gard-consumer-questions": (0.0, 0.5),
}
_OWN_WEIGHT = 3.0  # chatbot-style messages: the domain the model serves
_USER = re.compile(r"\(user-(\d+)")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text: ``crisis`` is the label, ``weight`` its trust, ``source`` its data set."""

    text: str
    crisis: bool
    weight: float
    source: str
    split: Split
    lang: str = "en"
    category: str = ""


def split_of(group: str) -> Split:
    """The frozen split of a group: a stable hash, never a random draw."""
    bucket = int(hashlib.sha256(group.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < TEST_SHARE:
        return "test"
    if bucket < TEST_SHARE + VAL_SHARE:
        return "val"
    return "train"


def _shared(data_dir: Path) -> Iterator[Example]:
    for stem, (w_pos, w_neg) in DATA_FILES.items():
        path = data_dir / f"{stem}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"training data missing: {path} (see docs/SAFETY.md)")
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            crisis = record["label"].startswith("crisis")
            user = _USER.search(record["source"])
            group = f"cssrs-user-{user.group(1)}" if user else record["source"]
            yield Example(record["text"], crisis, w_pos if crisis else w_neg, stem, split_of(group),
                          record.get("lang", "en"), record.get("source_label", ""))


# The QA files the safety model learns from, named rather than globbed: a QA file added for
# another model (the ranker's lay and uncovered questions) must not silently retrain this one.
# Adding one here is a deliberate retrain with its own report (docs/SAFETY.md).
SAFETY_QA_FILES = ("answers_extra.jsonl", "dev_qa.jsonl", "safety_extra.jsonl", "spanish_extra.jsonl")


def _qa(qa_dir: Path) -> Iterator[Example]:
    for path in (qa_dir / name for name in SAFETY_QA_FILES):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            kind, question = record.get("kind"), record.get("question")
            if kind == "bad_input" or not isinstance(question, str) or not question.strip():
                continue
            yield Example(question, kind == "crisis", _OWN_WEIGHT, f"qa:{path.stem}",
                          split_of(f"qa:{record['id']}"), "es" if path.stem.startswith("spanish") else "en",
                          category=record.get("note", "") or kind)


def _lexicon_exemplars() -> Iterator[Example]:
    from ketfaq.safety.lexicon import load_lexicon

    lex = load_lexicon()
    for crisis, texts in ((True, lex.crisis_exemplars), (False, lex.near_miss_exemplars)):
        for text in texts:
            yield Example(text, crisis, _OWN_WEIGHT, "lexicon-exemplars", split_of(f"ex:{text}"))


def _article_sentences(corpus_dir: Path) -> Iterator[Example]:
    """Article sentences and headings: informational text, never a crisis."""
    for path in sorted(corpus_dir.glob("*.md")):
        body = path.read_text(encoding="utf-8").split("\n---", 2)[-1]
        split = split_of(f"article:{path.stem}")
        for line in body.splitlines():
            line = line.strip("#*- \t")
            for sentence in re.split(r"(?<=[.!?])\s+", line):
                if len(sentence) >= 25:
                    yield Example(sentence, False, 1.0, "articles", split)


def load_examples(data_dir: Path, qa_dir: Path, corpus_dir: Path) -> list[Example]:
    """Every labelled example, in a fixed order, each with its frozen split."""
    return [*_shared(data_dir), *_qa(qa_dir), *_lexicon_exemplars(), *_article_sentences(corpus_dir)]
