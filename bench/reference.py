"""The reference pipeline most tutorials give: LangChain FAISS + HuggingFaceEmbeddings, same model.

RecursiveCharacterTextSplitter(1000, 200) over corpus/*.md, library defaults elsewhere, and
``similarity_search_with_score(k=5)``. ``create_app`` wraps it in a minimal FastAPI app the
way a team would (a sync endpoint, so FastAPI runs it in its threadpool).

Environment for the app: ``REF_INDEX_DIR`` (a saved store), ``REF_MODEL_PATH``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from pydantic import BaseModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", category=DeprecationWarning)


def embeddings(model_path: str):  # type: ignore[no-untyped-def]
    """HuggingFaceEmbeddings over the bundled model directory (sentence-transformers on torch)."""
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=model_path, model_kwargs={"device": "cpu"})


def build(corpus_dir: Path, model_path: str, embedder=None):  # type: ignore[no-untyped-def]
    """Load, split, embed and index the corpus: the reference's whole build."""
    from langchain_community.document_loaders import TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = []
    for path in sorted(Path(corpus_dir).glob("*.md")):
        docs.extend(TextLoader(str(path), encoding="utf-8").load())
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    return FAISS.from_documents(chunks, embedder or embeddings(model_path))


def load(index_dir: Path, model_path: str):  # type: ignore[no-untyped-def]
    """A saved store, as a server would load it at start-up."""
    from langchain_community.vectorstores import FAISS

    return FAISS.load_local(str(index_dir), embeddings(model_path), allow_dangerous_deserialization=True)


def search(store, question: str, k: int = 5) -> list[tuple[str, float, str]]:  # type: ignore[no-untyped-def]
    """(text, score, source) of the ``k`` nearest chunks."""
    return [(d.page_content, float(s), d.metadata.get("source", ""))
            for d, s in store.similarity_search_with_score(question, k=k)]


class Ask(BaseModel):
    """The request body."""

    question: str


def create_app():  # type: ignore[no-untyped-def]
    """The minimal FastAPI wrapper: POST /ask {"question": ...} -> the 5 passages."""
    from fastapi import FastAPI

    store = load(Path(os.environ["REF_INDEX_DIR"]), os.environ["REF_MODEL_PATH"])
    app = FastAPI()

    @app.post("/ask")
    def ask(body: Ask) -> dict:
        return {"passages": [{"text": t, "score": s, "source": src}
                             for t, s, src in search(store, body.question)]}

    return app
