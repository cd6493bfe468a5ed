"""How search and build cost grow with the corpus: Flat vs HNSW vs IVF at 10k, 100k and 1M vectors.

    python -m bench.scaling                # ~20 min on 2 busy cores (10 of them the 10k text build), < 5 GB
    python -m bench.scaling --text-chunks 0  # vectors only: ~10 min; writes docs/scaling.json + .png
    python -m bench.scaling --sizes 10000 100000

Vectors are synthetic: unit vectors around 1,000 random centres (embeddings cluster by topic;
uniform random vectors would make every approximate index look worse than it is on real text).
Queries come from the same distribution but are not in the base. Ground truth = exact search.
HNSW is skipped at 1M by default (its build alone takes several minutes on 2 cores; see the doc).
Build cost from text is measured at 10k generated chunks with the build's own encoder (fp32 ONNX).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time

import faiss
import numpy as np

from bench.common import CORPUS_DIR, ROOT, machine

OUT_JSON = ROOT / "docs" / "scaling.json"
OUT_PNG = ROOT / "docs" / "scaling.png"
DIM = 384


def synthetic(n: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """``n`` unit vectors scattered around ``centres`` (generated in blocks to bound memory)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        block = centres[rng.integers(0, len(centres), stop - start)]
        block = block + 0.6 * rng.standard_normal(block.shape, dtype=np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def measure(base: np.ndarray, queries: np.ndarray, truth: np.ndarray | None, kind: str) -> dict:
    """Build time, serialized size, single-query latency and recall@10 of one index kind."""
    from ketfaq.ann import build_ann_index

    gc.collect()
    rss = _rss_mib()
    start = time.perf_counter()
    faiss.omp_set_num_threads(2)  # builds may use both cores
    index = build_ann_index(base, kind)
    build_s = time.perf_counter() - start
    grown = _rss_mib() - rss
    size = faiss.serialize_index(index).nbytes / 2**20
    faiss.omp_set_num_threads(1)  # a request searches on one thread
    lat, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, rows = index.search(q[None, :], 10)
        lat.append(time.perf_counter() - t)
        found.append(rows[0])
    found_arr = np.asarray(found)
    recall = 1.0 if truth is None else float(np.mean(
        [len(set(found_arr[i]) & set(truth[i])) / 10 for i in range(len(queries))]))
    ms = np.asarray(lat) * 1000
    del index
    return {"n": len(base), "kind": kind, "build_s": build_s, "size_mib": size, "rss_mib": grown,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "recall10": recall, "found": found_arr}


def text_build(count: int) -> dict:
    """Embed ``count`` generated chunks (shuffled article sentences) as ``ketfaq build`` does.

    That is the fp32 export beside the int8 question encoder (``document_encoder``), in batches of
    32 sorted by length, with the settings' threads.
    """
    from ketfaq.ann import build_ann_index
    from ketfaq.embedding import encoder_for
    from ketfaq.settings import get_settings

    sentences = [s.strip() for p in sorted(CORPUS_DIR.glob("*.md"))
                 for s in p.read_text("utf-8").split(". ") if 40 < len(s.strip()) < 300]
    rng = random.Random(0)
    chunks = [". ".join(rng.sample(sentences, 4)) + "." for _ in range(count)]
    encoder = encoder_for(get_settings())
    encoder = encoder.document_encoder() if hasattr(encoder, "document_encoder") else encoder
    start = time.perf_counter()
    vectors = encoder.encode(chunks, batch_size=32)
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    build_ann_index(vectors)
    return {"chunks": count, "embed_s": embed_s, "index_s": time.perf_counter() - start,
            "mean_chars": float(np.mean([len(c) for c in chunks])), "encoder": encoder.variant}


def plot(rows: list[dict]) -> None:
    """Search p50 and build time against corpus size, one line per index kind (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for kind, colour in (("flat", "tab:blue"), ("hnsw", "tab:orange"), ("ivf", "tab:green")):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        n = [r["n"] for r in sel]
        axes[0].plot(n, [r["p50_ms"] for r in sel], "o-", color=colour, label=kind)
        axes[1].plot(n, [r["build_s"] for r in sel], "o-", color=colour, label=kind)
        axes[2].plot(n, [r["size_mib"] for r in sel], "o-", color=colour, label=kind)
    for ax, title in zip(axes, ("search p50 (ms, 1 query, 1 thread)", "build (s)", "index size (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("vectors (d=384)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(OUT_PNG, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    """Run the study and write docs/scaling.json and docs/scaling.png."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest size to build HNSW at")
    parser.add_argument("--text-chunks", type=int, default=10_000, help="0 skips the text build")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    rows, queries_used = [], {}
    for n in args.sizes:
        nq = 200 if n <= 100_000 else 100
        queries_used[n] = nq
        base, queries = synthetic(n, 1, centres), synthetic(nq, 2, centres)
        exact = measure(base, queries, None, "flat")
        truth = exact.pop("found")
        rows.append(exact)
        print(f"{n:>9,} flat  build {exact['build_s']:.1f}s p50 {exact['p50_ms']:.3f} ms", flush=True)
        for kind in ("hnsw", "ivf"):
            if kind == "hnsw" and n > args.hnsw_max:
                continue
            row = measure(base, queries, truth, kind)
            row.pop("found")
            rows.append(row)
            print(f"{n:>9,} {kind:5} build {row['build_s']:.1f}s p50 {row['p50_ms']:.3f} ms "
                  f"recall@10 {row['recall10']:.3f}", flush=True)
        del base
        gc.collect()
    result = {"machine": machine(), "rows": rows, "queries": queries_used,
              "note": "synthetic clustered unit vectors, d=384; HNSW built up to "
                      f"{args.hnsw_max:,} vectors",
              "text_build": text_build(args.text_chunks) if args.text_chunks else None}
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(json.dumps(result, indent=2, default=str))
    plot(rows)
    print(f"wrote {OUT_JSON} and {OUT_PNG}", flush=True)
    return result


if __name__ == "__main__":
    main()
