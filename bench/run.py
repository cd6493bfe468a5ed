"""One run, side by side: ketfaq vs the LangChain reference; writes docs/PERFORMANCE.md.

    python -m bench.run                  # everything below, about 9 minutes on 2 cores
    python -m bench.run --seconds 5      # shorter HTTP load phases

Measures (1) in-process answer latency, uncached and repeated; (2) the same for the reference,
with hit@3 of both on the QA answer records; (3) HTTP throughput/latency at 8 and 32 connections
(uvicorn on 127.0.0.1, distinct questions, ketfaq's answer cache off); (4) cold start to first
answer; (5) full and one-article incremental build time; (6) peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench import reference
from bench.common import (
    CORPUS_DIR,
    HELDOUT_FILE,
    ROOT,
    answer_records,
    distinct_questions,
    is_hit,
    machine,
    percentiles,
)
from bench.load import run_load
from bench.report import write_report

RESULTS = ROOT / "docs" / "performance.json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _timed(fn, items) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def _modify_one_article(corpus: Path) -> str:
    """Append a sentence to one article: the staff edit an incremental build must absorb."""
    path = sorted(corpus.glob("*.md"))[1]
    path.write_text(path.read_text("utf-8").rstrip() + "\n\nPlease ask our staff if you have any "
                    "other questions about your ketamine treatment plan.\n", "utf-8")
    return path.name


class _Server:
    """One uvicorn server on 127.0.0.1, started (timing start -> first answer) and stopped by its PID."""

    def __init__(self, name: str, app: str, env: dict, url_path: str, workers: int = 1,
                 command: list[str] | None = None) -> None:
        self.name, self.app, self.env, self.workers, self.command = name, app, env, workers, command
        self.url = f"http://127.0.0.1:{_free_port()}{url_path}"
        self.proc: subprocess.Popen | None = None
        self.cold_start_s = float("nan")

    def start(self, question: str) -> None:
        port = self.url.split(":")[2].split("/")[0]
        cmd = [sys.executable, "-m", "uvicorn", self.app, "--factory", "--host", "127.0.0.1", "--port", port,
               "--log-level", "warning", "--no-access-log", "--workers", str(self.workers)]
        if self.command:  # a shipped command line instead of bare uvicorn
            cmd = [*self.command, "--host", "127.0.0.1", "--port", port]
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        while time.perf_counter() - started < 240:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.post(self.url, json={"question": question}, timeout=30).status_code == 200:
                    self.cold_start_s = time.perf_counter() - started
                    print(f"  {self.name}: first answer {self.cold_start_s:.2f}s after start", flush=True)
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} server did not answer within 240 s")

    def peak_rss_mib(self) -> float:
        import psutil

        pids = [self.proc.pid] + [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        return sum(_peak_rss_mib(pid) for pid in pids)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _http(servers: list[tuple[_Server, tuple[int, ...]]], questions: list[str], seconds: float,
          rounds: int = 2) -> dict:
    """Start each server in turn (cold start), then load them in alternation, ``rounds`` times.

    Alternating phases (a at 8, b at 8, a at 32, b at 32, ...) spreads a slow spell of a shared
    machine over both systems instead of one; each figure pools its rounds.
    """
    results: dict = {}
    try:
        for server, _ in servers:
            server.start(questions[0])
            run_load(server.url, questions[:50], connections=4, seconds=2)  # warm-up
        pooled: dict = {(s.name, n): [] for s, ns in servers for n in ns}
        for _ in range(rounds):
            for n in sorted({n for _, ns in servers for n in ns}):
                for server, ns in servers:
                    if n in ns:
                        pooled[(server.name, n)].append(run_load(server.url, questions, connections=n,
                                                                 seconds=seconds))
                        print(f"  {server.name} @{n}: {pooled[(server.name, n)][-1]['rps']:.1f} req/s, "
                              f"errors {pooled[(server.name, n)][-1]['errors']}", flush=True)
        for server, ns in servers:
            loads = {}
            for n in ns:
                phases = pooled[(server.name, n)]
                latencies = [x for p in phases for x in p["latencies"]]
                requests, elapsed = sum(p["requests"] for p in phases), sum(p["seconds"] for p in phases)
                loads[str(n)] = {"requests": requests, "errors": sum(p["errors"] for p in phases),
                                 "seconds": elapsed, "rps": requests / elapsed, "rounds": len(phases),
                                 "rps_per_round": [p["rps"] for p in phases],
                                 "latency": percentiles(latencies) if latencies else {}}
            results[server.name] = {"cold_start_s": server.cold_start_s, "load": loads,
                                    "peak_rss_mib": server.peak_rss_mib(), "workers": server.workers}
    finally:
        for server, _ in servers:
            server.stop()
    return results


def main(argv: list[str] | None = None) -> dict:
    """Run every measurement once and write docs/performance.json and docs/PERFORMANCE.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="length of each HTTP load phase (two rounds per server and load)")
    parser.add_argument("--questions", type=int, default=200, help="distinct questions per latency run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ketfaq.answer import Answerer
    from ketfaq.embedding import SentenceTransformerEncoder, load_encoder
    from ketfaq.index import build_index
    from ketfaq.onnx_encoder import OnnxEncoder, ensure_onnx_model
    from ketfaq.settings import Settings, default_model_path

    work = Path(tempfile.mkdtemp(prefix="ketfaq-bench-"))
    corpus = work / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    model_path = default_model_path()
    models = work / "models"
    questions = distinct_questions(max(args.questions, 300))
    records = answer_records()
    res: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    def settings(index: str, **kw) -> Settings:  # type: ignore[no-untyped-def]
        return Settings(corpus_dir=corpus, index_dir=work / index, db_path=work / "db.sqlite3",
                        model_cache_dir=models, record_unanswered=False, **kw)

    # (5) builds --------------------------------------------------------------------------------
    print("building ketfaq (ONNX export, full, one-article incremental)", flush=True)
    start = time.perf_counter()
    ensure_onnx_model(model_path, models, quantized=True)
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    threads = Settings().resolved_encoder_threads()  # the shipped default for one worker
    encoder = load_encoder(model_path, "all-MiniLM-L6-v2", "onnx", str(models), threads=threads)
    onnx_load_s = time.perf_counter() - start
    full = build_index(settings("index"), encoder)
    print("building the reference", flush=True)
    start = time.perf_counter()
    ref_embedder = reference.embeddings(model_path)
    ref_model_s = time.perf_counter() - start
    start = time.perf_counter()
    store = reference.build(corpus, model_path, ref_embedder)
    ref_full_s = time.perf_counter() - start
    store.save_local(str(work / "ref-index"))

    changed = _modify_one_article(corpus)
    incremental = build_index(settings("index"), encoder)
    start = time.perf_counter()
    store = reference.build(corpus, model_path, ref_embedder)
    ref_incr_s = time.perf_counter() - start
    store.save_local(str(work / "ref-index"))
    res["build"] = {
        "ketfaq": {"onnx_export_s": export_s, "encoder_load_s": onnx_load_s, "full_s": full.seconds,
                   "incremental_s": incremental.seconds, "chunks": full.chunks,
                   "embedded_full": full.embedded, "embedded_incremental": incremental.embedded,
                   "changed_article": changed},
        "reference": {"model_load_s": ref_model_s, "full_s": ref_full_s, "incremental_s": ref_incr_s,
                      "chunks": len(store.index_to_docstore_id)},
    }

    # (1, 2) in-process latency and quality --------------------------------------------------------
    print("in-process latency", flush=True)
    uncached = Answerer(settings("index", cache_size=0), encoder)
    cached = Answerer(settings("index"), encoder)
    for q in questions[-50:]:  # warm-up on questions that are not timed
        uncached.ask(q)
        reference.search(store, q)
    varied = questions[: args.questions]
    repeat_q = "Is ketamine therapy safe?"
    cached.ask(repeat_q)
    # Two rounds each, alternating systems, so a slow spell on a shared machine hits both.
    ketfaq_s: list[float] = []
    reference_s: list[float] = []
    for _ in range(2):
        ketfaq_s += _timed(uncached.ask, varied)
        reference_s += _timed(lambda q: reference.search(store, q), varied)
    lat = {
        "ketfaq_uncached": percentiles(ketfaq_s),
        "ketfaq_repeated": percentiles(_timed(cached.ask, [repeat_q] * len(varied))),
        "reference_uncached": percentiles(reference_s),
        "reference_repeated": percentiles(_timed(lambda q: reference.search(store, q), [repeat_q] * len(varied))),
        "encoder_threads": threads,
    }
    # Where ketfaq's uncached time goes: encoder, safety gate, retrieval.
    vectors = {q: encoder.encode([q])[0] for q in varied}
    snap = uncached._snapshot
    lat["stage_encode"] = percentiles(_timed(lambda q: encoder.encode([q]), varied))
    lat["stage_safety_gate"] = percentiles(_timed(lambda q: uncached.gate.classify(q, vectors[q]), varied))
    lat["stage_retrieval"] = percentiles(_timed(lambda q: snap.searcher.search(q, vectors[q], k=3), varied))
    # The same stages inside one answer pass: the encoder between questions evicts the caches
    # the Python stages would otherwise find warm.
    inline: dict[str, list[float]] = {"encode": [], "safety_gate": [], "retrieval": []}
    for q in varied:
        t0 = time.perf_counter()
        vector = encoder.encode([q])[0]
        t1 = time.perf_counter()
        uncached.gate.classify(q, vector)
        t2 = time.perf_counter()
        snap.searcher.search(q, vector, k=3)
        t3 = time.perf_counter()
        for stage, seconds in zip(inline, (t1 - t0, t2 - t1, t3 - t2)):
            inline[stage].append(seconds)
    for stage, seconds in inline.items():
        lat[f"inline_{stage}"] = percentiles(seconds)
    res["latency"] = lat

    print("quality (hit@3 on the QA answer records) and encoder parity", flush=True)
    torch_encoder = SentenceTransformerEncoder(model_path)
    fp32 = OnnxEncoder(ensure_onnx_model(model_path, models, quantized=False))
    texts = [r["question"] for r in records] + [c.text for c in uncached.index.chunks]
    ref_vecs = torch_encoder.encode(texts)
    parity = {}
    for label, enc in (("onnx_fp32", fp32), ("onnx_int8", encoder)):
        cos = (enc.encode(texts) * ref_vecs).sum(1)
        parity[label] = {"min": float(cos.min()), "mean": float(cos.mean()), "texts": len(texts)}
    torch_index = build_index(settings("index-torch"), torch_encoder)
    torch_answerer = Answerer(settings("index-torch", cache_size=0), torch_encoder)
    mixed = Answerer(settings("index-torch", cache_size=0), encoder)  # torch-built, int8 queries

    def hit3(answerer: Answerer, rows: list[dict] = records) -> float:
        return float(np.mean([is_hit([p.text for p in answerer.ask(r["question"]).passages[:3]], r["anchors"])
                              for r in rows]))

    def reference_hit3(rows: list[dict]) -> float:
        return float(np.mean([is_hit([t for t, _, _ in reference.search(store, r["question"])[:3]],
                                     r["anchors"]) for r in rows]))

    heldout = answer_records(HELDOUT_FILE)

    res["quality"] = {
        "records": len(records),
        "ketfaq_int8": hit3(uncached),
        "ketfaq_torch": hit3(torch_answerer),
        "ketfaq_torch_index_int8_query": hit3(mixed),
        "reference": reference_hit3(records),
        "heldout": {"records": len(heldout), "ketfaq_int8": hit3(uncached, heldout),
                    "reference": reference_hit3(heldout)},
        "parity": parity,
        "torch_build_s": torch_index.seconds,
    }
    del torch_encoder, torch_answerer, mixed, fp32

    # (3, 4, 6) servers ------------------------------------------------------------------------------
    print("HTTP: cold start, load at 8 and 32 connections, peak memory", flush=True)
    ket_env = {"KETFAQ_CORPUS_DIR": str(corpus), "KETFAQ_INDEX_DIR": str(work / "index"),
               "KETFAQ_MODEL_CACHE_DIR": str(models), "KETFAQ_DB_PATH": str(work / "db.sqlite3"),
               "KETFAQ_RECORD_UNANSWERED": "false", "KETFAQ_CACHE_SIZE": "0"}
    ref_env = {"REF_INDEX_DIR": str(work / "ref-index"), "REF_MODEL_PATH": model_path}
    ketfaq = _Server("ketfaq", "ketfaq.api:create_app", ket_env, "/api/ask")
    ref = _Server("reference", "bench.reference:create_app", ref_env, "/ask")
    # What the README recommends for a busy site: one worker per core, forked by gunicorn.
    ketfaq2 = _Server("ketfaq x2", "ketfaq.api:create_app", ket_env, "/api/ask", workers=2,
                      command=[str(Path(sys.executable).with_name("ketfaq")), "serve", "--workers", "2"])
    http = _http([(ketfaq, (8, 32)), (ref, (8, 32)), (ketfaq2, (32,))], questions, args.seconds)
    res["http"] = {"ketfaq": http["ketfaq"], "reference": http["reference"],
                   "ketfaq_2_workers": http["ketfaq x2"]}
    import resource

    res["bench_process_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2))
    path = write_report(res)
    print(f"wrote {path} and {RESULTS}", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


if __name__ == "__main__":
    main()
