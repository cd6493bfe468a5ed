"""Shared fixtures: the real corpus, the real model and a real index built once per test run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ketfaq.settings import Settings
from tests.databases import database_url, postgres_server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = ROOT / "corpus"
QA_DIR = ROOT / "qa"


def load_qa(name: str = "dev_qa.jsonl") -> list[dict]:
    """Records of a QA file in ``qa/``."""
    return [json.loads(line) for line in (QA_DIR / name).read_text("utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the shipped corpus and a fresh index directory for this run."""
    work = tmp_path_factory.mktemp("ketfaq")
    # The ONNX export is shared with the checkout's index/models (made once per machine, not per
    # run); private copies of the index made by staff tests inherit it.
    return Settings(corpus_dir=CORPUS_DIR, index_dir=work / "index", db_path=work / "db.sqlite3",
                    record_unanswered=False, model_cache_dir=ROOT / "index" / "models")


@pytest.fixture(scope="session")
def encoder(settings: Settings):
    from ketfaq.embedding import encoder_for

    return encoder_for(settings)


@pytest.fixture(scope="session")
def built_index(settings: Settings, encoder):
    """Build and publish the index once; returns the build report."""
    from ketfaq.index import build_index

    return build_index(settings, encoder)


@pytest.fixture(scope="session")
def answerer(settings: Settings, encoder, built_index):
    from ketfaq.answer import Answerer

    return Answerer(settings, encoder)


@pytest.fixture(scope="session")
def client(settings: Settings, answerer) -> Iterator[TestClient]:
    """Real HTTP through the real app (in-process ASGI), with the real model and index."""
    from ketfaq.api import create_app

    with TestClient(create_app(settings, answerer)) as test_client:
        yield test_client
