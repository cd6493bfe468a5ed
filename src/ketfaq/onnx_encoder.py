"""The same sentence-transformers model run by ONNX Runtime (int8 by default): fast, and no torch.

The model is exported once (transformer + mean pooling + L2 normalization in one graph), then
dynamically quantized to int8, and kept in a cache directory keyed by the hash of the model files,
so only the first build on a machine imports torch. Serving loads the cached ``.onnx`` file with
``onnxruntime`` and tokenizes with ``tokenizers``: torch is never imported on that path.

Example::

    path = ensure_onnx_model(model_dir, cache_dir, quantized=True)
    encoder = OnnxEncoder(path)  # the tokenizer is read from beside the export
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["EXPORT_VERSION", "OnnxEncoder", "ensure_onnx_model", "model_hash", "onnx_available"]

EXPORT_VERSION = 4  # bump when the exported graph changes: old cache entries are then ignored
_FP32, _INT8 = "model.onnx", "model.int8.onnx"
_TOKENIZER = "tokenizer.json"
_META = "meta.json"


def onnx_available() -> bool:
    """True when onnxruntime and tokenizers can be imported."""
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    return True


def model_hash(model_path: str | Path, *, memo: Path | None = None) -> str:
    """SHA-256 over the model's weights, config and tokenizer: the cache key of its exports.

    Hashing the weights on every start would be noticeable; with ``memo`` (a JSON file) a
    file's digest is reused while its size and modification time are unchanged.
    """
    root = Path(model_path)
    known: dict[str, list] = {}
    if memo is not None:
        try:
            known = json.loads(memo.read_text())
        except (OSError, ValueError):
            known = {}
    digest = hashlib.sha256(f"export-v{EXPORT_VERSION}".encode())
    changed = False
    for name in ("config.json", "sentence_bert_config.json", "1_Pooling/config.json", _TOKENIZER,
                 "model.safetensors", "pytorch_model.bin"):
        path = root / name
        if not path.exists():
            continue
        stat = path.stat()
        key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
        if known.get(key, [None])[:2] == stamp:
            file_digest = bytes.fromhex(known[key][2])
        else:
            with path.open("rb") as handle:
                file_digest = hashlib.file_digest(handle, "sha256").digest()
            known[key] = [*stamp, file_digest.hex()]
            changed = True
        digest.update(name.encode())
        digest.update(file_digest)
    if memo is not None and changed:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known))
            os.replace(tmp, memo)
        except OSError:
            pass  # read-only cache: hash again next time
    return digest.hexdigest()


def _max_seq_length(model_path: Path) -> int:
    config = model_path / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def _export_fp32(model_path: Path, target: Path) -> None:
    """Export transformer + mean pooling + normalize with ``torch.onnx.export`` (imports torch).

    Eager attention exports the plain MatMul/Softmax pattern that ONNX Runtime's transformer
    optimizer fuses into its Attention kernel (the SDPA export is not recognized); the fused
    graph is what :func:`_fuse` writes back to ``target``.
    """
    import torch
    from transformers import AutoModel

    class _Pooled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            tokens = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    model = _Pooled(AutoModel.from_pretrained(str(model_path), local_files_only=True,
                                              attn_implementation="eager")).eval()
    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            model, (dummy, dummy, torch.zeros_like(dummy)), str(target),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["sentence_embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "sentence_embedding": {0: "batch"}},
            opset_version=17, dynamo=False,
        )


def _fuse(onnx_path: Path, model_path: Path) -> None:
    """Rewrite the export with ONNX Runtime's BERT fusions (Attention, SkipLayerNorm, BiasGelu).

    The fused graph answers faster and its session loads faster than the unfused one, because the
    optimizations are done once, here (figures in docs/PERFORMANCE.md).
    """
    from onnxruntime.transformers import optimizer

    config = json.loads((model_path / "config.json").read_text())
    fused = optimizer.optimize_model(str(onnx_path), model_type="bert", opt_level=1,
                                     num_heads=int(config["num_attention_heads"]),
                                     hidden_size=int(config["hidden_size"]))
    fused.save_model_to_file(str(onnx_path))


def _ffn_output_matmuls(onnx_path: Path) -> list[str]:
    """The feed-forward output projections: where int8 hurts parity most, so they stay fp32.

    int8 everywhere was faster per question but lowered the worst cosine to PyTorch on the QA
    questions enough to move blind crisis records under the semantic thresholds of the safety
    gate; a scale per token row (the [CLS] row's activations are far larger than the others')
    kept the mean cosine but not the worst, so these stay fp32 (docs/PERFORMANCE.md).
    """
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [n.name for n in graph.node
            if n.op_type == "MatMul" and "/output/dense/" in n.name and "/attention/" not in n.name]


def _quantize(source: Path, target: Path) -> None:
    """Per-channel dynamic int8 of the MatMuls: the question encoder (parity in docs/PERFORMANCE.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused operators carry no shape information, so the quantizer is told outputs are float.
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_exclude=_ffn_output_matmuls(source),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def ensure_onnx_model(model_path: str | Path, cache_dir: str | Path, *, quantized: bool = True) -> Path:
    """Path of the cached ONNX export of ``model_path`` (exporting and quantizing it if missing)."""
    model_path = Path(model_path)
    digest = model_hash(model_path, memo=Path(cache_dir) / "digests.json")
    entry = Path(cache_dir) / f"{model_path.name}-{digest[:16]}"
    wanted = entry / (_INT8 if quantized else _FP32)
    if wanted.exists() and (entry / _META).exists():
        return wanted
    entry.parent.mkdir(parents=True, exist_ok=True)
    # Build in a private directory and rename it into place: concurrent first uses are safe.
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".export-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; workers running as another user read it too
    try:
        _export_fp32(model_path, tmp / _FP32)
        _fuse(tmp / _FP32, model_path)
        _quantize(tmp / _FP32, tmp / _INT8)
        shutil.copyfile(model_path / _TOKENIZER, tmp / _TOKENIZER)
        meta = {"export_version": EXPORT_VERSION, "source": str(model_path),
                "model_hash": digest, "max_seq_length": _max_seq_length(model_path)}
        (tmp / _META).write_text(json.dumps(meta, indent=2))
        try:
            os.rename(tmp, entry)
        except OSError:  # another process won the race: use its copy
            if not (entry / _META).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return wanted


class OnnxEncoder:
    """Embeds texts with an exported model in ONNX Runtime; thread-safe, torch-free."""

    def __init__(self, onnx_path: str | Path, *, name: str = "all-MiniLM-L6-v2",
                 threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx_path = Path(onnx_path)
        meta = json.loads((onnx_path.parent / _META).read_text())
        self.name = name
        self.variant = "onnx-int8" if onnx_path.name == _INT8 else "onnx-fp32"
        # int8 activation scales are computed over the whole input, padding and batch-mates
        # included: run one text per call so that a text always gets the same vector.
        self.per_text = self.variant == "onnx-int8"
        # Which exact weights and mode: the export directory is named by model hash and version.
        self.fingerprint = f"{self.variant}:{onnx_path.parent.name}:{'single' if self.per_text else 'batch'}"
        self.path = onnx_path
        self._threads = threads
        self._documents: OnnxEncoder | None = None
        self._tokenizer = Tokenizer.from_file(str(onnx_path.parent / _TOKENIZER))
        self._tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        # The export is fused already (see _fuse): ENABLE_ALL ran no faster and loaded slower.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        # settings.resolved_encoder_threads(): this worker's share of the cores, at most 2 (2 for
        # one worker on 2 cores: lower latency for one question). No spin-waiting between calls,
        # so idle threads never take the core that runs the Python side of other requests.
        options.intra_op_num_threads = threads or 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dimension = int(self._session.get_outputs()[0].shape[-1] or 384)

    def document_encoder(self) -> OnnxEncoder:
        """The fp32 export beside this one, for the index build.

        Stored vectors are computed once, so they get the full-precision model; questions use
        int8. On the QA set int8 passages cost retrieval quality while fp32 passages with int8
        questions matched PyTorch (figures in docs/PERFORMANCE.md).
        """
        fp32 = self.path.parent / _FP32
        if self.variant == "onnx-fp32" or not fp32.exists():
            return self
        if self._documents is None:
            self._documents = OnnxEncoder(fp32, name=self.name, threads=self._threads)
        return self._documents

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as normalized float32 rows (batches sorted by length to pad little;
        the int8 model takes one text per call, see ``per_text``)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.per_text:
            batch_size = 1
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        for start in starts:
            batch = order[start:start + batch_size]
            out[batch] = self._run([texts[i] for i in batch])
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (vectors,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        return vectors
