"""cli.py: `ketfaq ask` answers through the same path as the API."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ketfaq.cli import app
from ketfaq.messages import DISCLAIMER


def test_ask_json_matches_contract(settings, built_index, monkeypatch) -> None:
    monkeypatch.setenv("KETFAQ_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("KETFAQ_INDEX_DIR", str(settings.index_dir))
    from ketfaq.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ask", "What is the NMDA receptor?", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["kind"] == "answer" and body["disclaimer"] == DISCLAIMER


def test_ask_refuses_empty_question() -> None:
    result = CliRunner().invoke(app, ["ask", "   "])
    assert result.exit_code == 2
    assert "empty" in result.output
