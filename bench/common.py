"""Shared helpers for the benchmarks: machine description, percentiles, the QA hit rule, questions."""

from __future__ import annotations

import json
import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = ROOT / "corpus"
QA_FILE = ROOT / "qa" / "dev_qa.jsonl"
HELDOUT_FILE = ROOT / "tests" / "data" / "fresh_qa.jsonl"  # the frozen held-out set (issue 15)
LIBRARIES = ("torch", "sentence-transformers", "transformers", "onnxruntime", "tokenizers", "faiss-cpu",
             "bm25s", "fastapi", "uvicorn", "langchain-community", "langchain-huggingface",
             "langchain-text-splitters", "numpy")


def machine() -> dict:
    """CPU model, cores, RAM, Python and library versions: the context every figure needs."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0.0
    try:
        import psutil

        ram = psutil.virtual_memory().total / 2**30
    except ImportError:
        pass
    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            libs[name] = "-"
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(ram, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "os": platform.platform(), "libraries": libs}


def percentiles(seconds: list[float]) -> dict:
    """p50/p95/p99/mean in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean())}


def collapse(text: str) -> str:
    """The QA hit rule's normalization: every run of whitespace becomes one space."""
    return re.sub(r"\s+", " ", text).strip()


def is_hit(passages: list[str], anchors: list[str]) -> bool:
    """True when a passage contains an anchor (qa/README.md, "Hit rule")."""
    wanted = [collapse(a) for a in anchors]
    return any(a in collapse(p) for p in passages for a in wanted)


def answer_records(path: Path = QA_FILE) -> list[dict]:
    """The answer records of a QA file that carry anchors (the starter set by default)."""
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return [r for r in records if r["kind"] == "answer" and r.get("anchors")]


_TEMPLATES = ("What is {t}?", "Can you explain {t}?", "Tell me about {t}.", "How does {t} work?",
              "What should I know about {t}?", "Is there information on {t}?", "{t}: what does it mean?",
              "Where can I read about {t}?")


def distinct_questions(count: int) -> list[str]:
    """``count`` different questions: the QA questions, then templates over the articles' headings."""
    records = [json.loads(line) for line in QA_FILE.read_text("utf-8").splitlines() if line.strip()]
    questions = [r["question"] for r in records
                 if isinstance(r.get("question"), str) and 3 < len(r["question"].strip()) < 300]
    topics: list[str] = []
    for path in sorted(CORPUS_DIR.glob("*.md")):
        for line in path.read_text("utf-8").splitlines():
            if line.startswith("#"):
                topic = line.lstrip("#").strip().rstrip("?:.").lower()
                if 3 < len(topic) < 80 and topic not in topics:
                    topics.append(topic)
    for template in _TEMPLATES:
        for topic in topics:
            questions.append(template.format(t=topic))
    seen: dict[str, None] = {}
    for q in questions:
        seen.setdefault(q, None)
    unique = list(seen)
    if len(unique) < count:
        raise ValueError(f"only {len(unique)} distinct questions available, {count} asked")
    return unique[:count]
