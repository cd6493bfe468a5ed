"""Benchmark: rebuild after editing one article vs a full build of the same corpus (one run).

Both builds run in this process with the model already loaded, on a private copy of the corpus:
the full build starts from an empty index directory (nothing cached); the incremental build edits
one paragraph of one article and rebuilds over the warm embedding cache. Not a test: it prints.

    python bench/bench_incremental.py [--corpus corpus] [--article 003-ketamine-for-anxiety]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from ketfaq.embedding import load_encoder
from ketfaq.index import build_index
from ketfaq.settings import Settings


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--article", default="003-ketamine-for-anxiety")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "corpus"
        shutil.copytree(args.corpus, corpus)
        settings = Settings(corpus_dir=corpus, index_dir=Path(work) / "index")
        encoder = load_encoder(settings.resolved_model_path(), settings.model_name, settings.encoder_backend,
                               threads=settings.resolved_encoder_threads())
        encoder.encode(["warm up"])

        t0 = time.perf_counter()
        full = build_index(settings, encoder)
        full_s = time.perf_counter() - t0

        path = corpus / f"{args.article}.md"
        text = path.read_text(encoding="utf-8")
        paragraph = next(p for p in text.split("\n\n")[2:] if p and not p.startswith(("#", "-")))
        path.write_text(text.replace(paragraph, paragraph + " This paragraph was edited.", 1), encoding="utf-8")
        t0 = time.perf_counter()
        one = build_index(settings, encoder)
        one_s = time.perf_counter() - t0

    print(f"machine: {_machine()}")
    print(f"full build:        {full_s:6.2f} s  ({full.embedded} texts embedded, {full.chunks} passages)")
    print(f"one-article edit:  {one_s:6.2f} s  ({one.embedded} texts embedded, {one.reused} reused; "
          f"passages changed {one.chunks_changed}, unchanged {one.chunks_unchanged})")
    print(f"ratio (edit / full): {one_s / full_s:.3f}  ({full_s / one_s:.1f}x faster)")


if __name__ == "__main__":
    main()
