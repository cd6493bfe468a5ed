"""Learn a linear map of question vectors toward the articles' wording (training only).

Visitors ask in lay words ("is a nurse with me the whole time"); the articles answer in theirs
("patients are monitored closely"). A 384x384 matrix ``W`` applied to the question's MiniLM
vector, kept close to the identity, is fitted so that the passages (and sentences) that answer the
training questions score above all others: a softmax over the whole corpus, one positive set per
question. Serving multiplies one vector by it (``RankingModel.adapt``), a few microseconds.
Deterministic: full-batch Adam from a zero start, one thread, fixed epochs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ADAPTER_EPOCHS", "ADAPTER_L2", "ADAPTER_TEMPERATURE", "fit_adapter"]

ADAPTER_L2, ADAPTER_TEMPERATURE, ADAPTER_EPOCHS, ADAPTER_LR = 0.1, 0.05, 200, 1e-3


def fit_adapter(questions: np.ndarray, relevant: Sequence[set[int]], chunk_vectors: np.ndarray,
                sentence_vectors: np.ndarray, sentence_chunk: np.ndarray) -> np.ndarray:
    """``W`` (dim x dim, float32) minimising softmax loss of each question's relevant chunks, both
    by the chunk's own vector and by its best sentence, plus ``ADAPTER_L2 * ||W - I||^2``."""
    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dim = questions.shape[1]
        n_chunks = len(chunk_vectors)
        q = torch.tensor(np.asarray(questions, np.float32))
        chunks = torch.tensor(np.asarray(chunk_vectors, np.float32))
        sentences = torch.tensor(np.asarray(sentence_vectors, np.float32))
        owner = torch.tensor(np.asarray(sentence_chunk, np.int64)).expand(len(q), -1)
        mask = torch.zeros(len(q), n_chunks, dtype=torch.bool)
        for i, rel in enumerate(relevant):
            mask[i, sorted(rel)] = True
        delta = torch.zeros(dim, dim, requires_grad=True)
        eye = torch.eye(dim)
        optimiser = torch.optim.Adam([delta], lr=ADAPTER_LR)
        for _ in range(ADAPTER_EPOCHS):
            optimiser.zero_grad()
            adapted = torch.nn.functional.normalize(q @ (eye + delta).T, dim=-1)
            by_chunk = adapted @ chunks.T
            by_sentence = torch.full((len(q), n_chunks), -1.0).scatter_reduce(
                1, owner, adapted @ sentences.T, reduce="amax")
            loss = ADAPTER_L2 * (delta ** 2).sum()
            for scores in (by_chunk, by_sentence):
                logits = scores / ADAPTER_TEMPERATURE
                loss = loss + (torch.logsumexp(logits, 1)
                               - torch.logsumexp(logits.masked_fill(~mask, -1e9), 1)).mean()
            loss.backward()
            optimiser.step()
        return (eye + delta).detach().numpy().astype(np.float32)
    finally:
        torch.set_num_threads(threads)
