"""The fast paths agree with the plain ones: ONNX vs PyTorch encoder, approximate vs exact index,
cached vs computed answers; and torch stays out of the serving process."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from ketfaq.ann import FLAT_MAX, build_ann_index, choose_kind, index_kind
from ketfaq.answer import Answerer, normalize_question
from ketfaq.settings import get_settings

from .conftest import ROOT, load_qa


def _model_cache_dir() -> Path:
    return get_settings().resolved_model_cache_dir()  # where the session's encoder fixture exported to


def _parity_texts(answerer: Answerer) -> list[str]:
    questions = [r["question"] for r in load_qa() if isinstance(r.get("question"), str)
                 and 0 < len(r["question"].strip()) and len(r["question"]) < 1000]
    return questions + [chunk.text for chunk in answerer.index.chunks]


@pytest.fixture(scope="module")
def torch_encoder(settings):
    from ketfaq.embedding import load_encoder

    return load_encoder(settings.resolved_model_path(), settings.model_name, "torch")


def test_auto_backend_serves_the_int8_onnx_encoder(encoder, built_index, settings) -> None:
    assert encoder.variant == "onnx-int8"
    version = (settings.index_dir / "CURRENT").read_text().strip()
    manifest = json.loads((settings.index_dir / "versions" / version / "manifest.json").read_text())
    assert manifest["encoder"] == "onnx-fp32"  # stored vectors at full precision, questions in int8


@pytest.mark.parametrize(("quantized", "floor", "batch_size"),
                         [(False, 0.99, 32), (True, 0.97, 1), (True, 0.97, 32)])
def test_onnx_vectors_match_pytorch_per_text(quantized, floor, batch_size, settings, answerer,
                                             torch_encoder) -> None:
    """Batch size 1 is the query path, 32 the build path (int8 runs one text per call anyway)."""
    from ketfaq.onnx_encoder import OnnxEncoder, ensure_onnx_model

    path = ensure_onnx_model(settings.resolved_model_path(), _model_cache_dir(), quantized=quantized)
    fast = OnnxEncoder(path)
    texts = _parity_texts(answerer)
    cosines = (fast.encode(texts, batch_size=batch_size) * torch_encoder.encode(texts)).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= floor, f"cosine {cosines[worst]:.4f} for {texts[worst][:80]!r}"
    norms = np.linalg.norm(fast.encode(texts[:5]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)


def test_onnx_batching_and_padding_keep_each_vector(encoder, settings) -> None:
    """Padding is masked out, so fp32 batches are exact; int8 is embedded text by text."""
    from ketfaq.onnx_encoder import OnnxEncoder, ensure_onnx_model

    texts = ["Does it hurt?", "What are the side effects of ketamine infusions for anxiety disorders?", "Cost"]
    fp32 = OnnxEncoder(ensure_onnx_model(settings.resolved_model_path(), _model_cache_dir(), quantized=False))
    np.testing.assert_allclose(fp32.encode(texts, batch_size=3),
                               np.stack([fp32.encode([t])[0] for t in texts]), atol=1e-4)
    # int8 scales would be shared by a batch: the int8 encoder embeds one text per call, so a
    # text gets the same vector whatever else is asked with it (safety exemplars, clauses).
    np.testing.assert_array_equal(encoder.encode(texts, batch_size=3),
                                  np.stack([encoder.encode([t])[0] for t in texts]))


def test_export_is_cached_by_model_hash(settings) -> None:
    from ketfaq.onnx_encoder import ensure_onnx_model, model_hash

    path = ensure_onnx_model(settings.resolved_model_path(), _model_cache_dir())
    assert model_hash(settings.resolved_model_path())[:16] in path.parent.name
    before = path.stat().st_mtime_ns
    assert ensure_onnx_model(settings.resolved_model_path(), _model_cache_dir()) == path
    assert path.stat().st_mtime_ns == before  # found, not exported again


def test_answerer_loads_the_encoder_from_the_configured_model_cache(tmp_path, settings, encoder,
                                                                    built_index) -> None:
    """``load_answerer(settings)`` honours ``settings.model_cache_dir``, not the process-wide one."""
    from ketfaq.runtime import load_answerer

    export = Path(encoder.path).resolve().parent
    cache = tmp_path / "models"
    (cache / export.name).mkdir(parents=True)
    for path in export.iterdir():  # the same export, linked: nothing is exported again
        (cache / export.name / path.name).symlink_to(path)
    answerer = load_answerer(settings.model_copy(update={"model_cache_dir": cache}))
    assert Path(answerer.encoder.path).parent.parent == cache
    assert answerer.ask("Is ketamine therapy safe?").kind == "answer"


def test_model_hash_memo_is_reused_only_while_files_are_unchanged(tmp_path, settings) -> None:
    from ketfaq.onnx_encoder import model_hash

    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(Path(settings.resolved_model_path()) / name, model / name)
    memo = tmp_path / "digests.json"
    first = model_hash(model, memo=memo)
    assert memo.exists() and model_hash(model, memo=memo) == first == model_hash(model)
    config = model / "config.json"
    config.write_text(config.read_text().replace("384", "385", 1))  # size changes too
    assert model_hash(model, memo=memo) == model_hash(model) != first


def test_serving_with_onnx_never_imports_torch(settings, built_index) -> None:
    script = f"""
import sys
from pathlib import Path
from fastapi.testclient import TestClient
from ketfaq.api import create_app
from ketfaq.settings import Settings
s = Settings(corpus_dir=Path({str(settings.corpus_dir)!r}), index_dir=Path({str(settings.index_dir)!r}),
             model_cache_dir=Path({str(_model_cache_dir().resolve())!r}), record_unanswered=False,
             encoder_backend="auto")
with TestClient(create_app(s)) as client:
    body = client.post("/api/ask", json={{"question": "Is ketamine therapy safe?"}}).json()
assert body["kind"] == "answer" and body["passages"], body
print("TORCH_LOADED" if "torch" in sys.modules else "NO_TORCH")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "NO_TORCH"


# --- answer cache -----------------------------------------------------------------------------------


def test_normalized_question_ignores_case_and_spacing() -> None:
    assert normalize_question("  Does   Ketamine\tHURT? ") == normalize_question("does ketamine hurt?")
    assert normalize_question("does ketamine hurt?") != normalize_question("does ketamine help?")


def test_repeated_question_is_served_from_cache_with_the_question_as_asked(answerer) -> None:
    first = answerer.ask("How long does a ketamine session last?")
    hits = answerer.cache.hits
    again = answerer.ask("  how long does a KETAMINE session last? ")
    assert answerer.cache.hits == hits + 1
    assert again.question == "  how long does a KETAMINE session last? "
    assert again.model_dump(exclude={"question"}) == first.model_dump(exclude={"question"})


def test_cache_is_bounded_and_can_be_off(settings, encoder, built_index) -> None:
    small = Answerer(settings.model_copy(update={"cache_size": 2}), encoder)
    for q in ("Is ketamine safe?", "Does it hurt?", "How much does it cost?"):
        small.ask(q)
    assert len(small.cache) == 2
    off = Answerer(settings.model_copy(update={"cache_size": 0}), encoder)
    off.ask("Is ketamine safe?")
    off.ask("Is ketamine safe?")
    assert len(off.cache) == 0 and off.cache.hits == 0


def test_reload_to_a_new_index_version_never_serves_a_cached_old_answer(settings, encoder, built_index,
                                                                        tmp_path) -> None:
    from ketfaq.index import build_index

    local = settings.model_copy(update={"index_dir": tmp_path / "index"})
    shutil.copytree(settings.index_dir, local.index_dir)  # the embedding cache comes along: fast rebuild
    answerer = Answerer(local, encoder)
    question = "What are the side effects of ketamine?"
    old = answerer.ask(question)
    assert answerer.ask(question).index_version == old.index_version
    new_version = build_index(local, encoder).version
    assert answerer.reload() is True
    misses = answerer.cache.misses
    fresh = answerer.ask(question)
    assert fresh.index_version == new_version != old.index_version
    assert answerer.cache.misses == misses + 1


def test_answers_are_computed_off_the_event_loop(settings, answerer) -> None:
    from fastapi.testclient import TestClient

    from ketfaq.api import create_app

    loops: list[bool] = []
    real_ask = answerer.ask

    def ask(question: str, **kw):  # type: ignore[no-untyped-def]
        try:
            asyncio.get_running_loop()
            loops.append(True)
        except RuntimeError:
            loops.append(False)
        return real_ask(question, **kw)

    answerer.ask = ask
    try:
        with TestClient(create_app(settings, answerer)) as client:
            response = client.post("/api/ask", json={"question": "How long does an infusion take?"})
    finally:
        del answerer.ask
    assert response.status_code == 200 and response.json()["passages"]
    assert loops == [False]  # a worker thread answered: the event loop stayed free


def test_start_up_objects_are_frozen_out_of_garbage_collection(settings, answerer) -> None:
    from fastapi.testclient import TestClient

    from ketfaq.api import create_app

    gc.unfreeze()
    with TestClient(create_app(settings, answerer)) as client:
        assert gc.get_freeze_count() > 10_000  # modules, validators, index: walked by no full collection
        assert client.post("/api/ask", json={"question": "Is ketamine safe?"}).status_code == 200


# --- index kind by corpus size --------------------------------------------------------------------------


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((64, dim)).astype(np.float32)
    x = centers[rng.integers(0, 64, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_index_kind_follows_corpus_size() -> None:
    assert choose_kind(300) == "flat"
    assert choose_kind(FLAT_MAX) == "flat"
    assert choose_kind(FLAT_MAX + 1) == "ivf"
    assert choose_kind(5_000_000) == "ivf"
    with pytest.raises(ValueError, match="valid: auto, flat, hnsw, ivf"):
        build_ann_index(np.zeros((2, 4), dtype=np.float32), "lsh")


def test_shipped_corpus_gets_an_exact_index(answerer) -> None:
    assert index_kind(answerer.index.faiss_index) == "flat"
    assert answerer.index.manifest.index_type == "flat"


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_index_matches_exact_search(kind, tmp_path) -> None:
    base, queries = _clustered(20_000, 48, 1), _clustered(200, 48, 2)
    exact_scores = queries @ base.T
    exact = np.argsort(-exact_scores, axis=1)[:, :10]
    index = build_ann_index(base, kind)
    faiss.write_index(index, str(tmp_path / "i.faiss"))
    index = faiss.read_index(str(tmp_path / "i.faiss"))  # search parameters survive a save
    assert index_kind(index) == kind
    scores, rows = index.search(queries, 10)
    recall = np.mean([len(set(rows[i]) & set(exact[i])) / 10 for i in range(len(queries))])
    assert recall >= 0.9, f"{kind} recall@10 {recall:.3f}"
    # Scores are cosines for every kind, like the exact index: the threshold means the same.
    np.testing.assert_allclose(scores[:, 0], exact_scores[np.arange(len(queries)), rows[:, 0]], atol=1e-4)


def test_flat_index_is_exact() -> None:
    base, queries = _clustered(2_000, 32, 3), _clustered(20, 32, 4)
    scores, rows = build_ann_index(base, "flat").search(queries, 5)
    np.testing.assert_array_equal(rows, np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :5])


def test_safety_exemplar_cache_gives_the_same_vectors(encoder, tmp_path) -> None:
    """The cold-start cache of crisis exemplar vectors returns exactly what the encoder gives."""
    from ketfaq.safety.cache import exemplar_vectors as _exemplar_vectors

    texts = ["I want to end my life", "how long does an infusion take?"]
    fresh = _exemplar_vectors(encoder, texts, tmp_path)
    assert len(list(tmp_path.glob("exemplars-*.npy"))) == 1
    cached = _exemplar_vectors(encoder, texts, tmp_path)
    assert np.array_equal(fresh, cached)
    other = _exemplar_vectors(encoder, texts + ["a new exemplar"], tmp_path)
    assert other.shape[0] == 3 and len(list(tmp_path.glob("exemplars-*.npy"))) == 2
