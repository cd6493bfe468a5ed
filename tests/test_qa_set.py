"""The QA set is well formed, verbatim, large enough and asks about every article section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketfaq.chunking import split_sections
from ketfaq.corpus import load_corpus
from ketfaq.evaluation.qa import DEFAULT_QA_FILES, collapse, load_qa, validate_qa

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
QA_PATHS = [ROOT / "qa" / name for name in DEFAULT_QA_FILES if (ROOT / "qa" / name).is_file()]
GOOD = {"id": "t-r-001", "kind": "answer", "question": "what is GAD?",
        "anchors": ["Individuals with GAD experience persistent and excessive worry about various aspects of life."],
        "docs": ["000"]}


def test_project_qa_set_is_valid() -> None:
    assert validate_qa(QA_PATHS, CORPUS) == []


def test_project_qa_set_is_big_enough_and_has_every_kind() -> None:
    records = load_qa(QA_PATHS)
    assert len(records) >= 150
    assert {r.kind for r in records} == {"answer", "crisis", "personal_advice", "out_of_scope", "bad_input"}
    assert sum(r.is_ranked for r in records) >= 100


def test_every_article_section_is_asked_about() -> None:
    anchors = [collapse(a) for r in load_qa(QA_PATHS) for a in r.anchors]
    missing = []
    for article in load_corpus(CORPUS):
        for section in split_sections(article):
            text = collapse(article.body[section.start:section.end])
            if len(text) >= 40 and not any(a in text for a in anchors):
                missing.append(f"{article.id[:3]} {' › '.join(section.headings) or '(intro)'}")
    assert missing == []


def _problems(tmp_path: Path, *records: dict) -> list[str]:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    return validate_qa([path], CORPUS)


def test_a_good_record_passes(tmp_path: Path) -> None:
    assert _problems(tmp_path, GOOD) == []


def test_anchor_whitespace_is_collapsed(tmp_path: Path) -> None:
    spaced = {**GOOD, "anchors": ["Individuals with GAD  experience persistent and\texcessive worry about various aspects"]}
    assert _problems(tmp_path, spaced) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"anchors": ["Individuals with GAD experience persistent and excessive worry about EVERYTHING."]}, "not found verbatim"),
    ({"anchors": ["Individuals with GAD experience"]}, "chars"),
    ({"docs": ["004"]}, "but docs say"),
    ({"docs": ["000", "004"]}, "have no anchor"),
    ({"kind": "answerr"}, "is not one of"),
    ({"id": "bad id"}, "must look like"),
    ({"question": ""}, "question is empty"),
    ({"anchors": [], "docs": []}, "near-miss"),
    ({"extra": 1}, "unknown field"),
])
def test_validator_reports_each_problem(tmp_path: Path, change: dict, expected: str) -> None:
    problems = _problems(tmp_path, {**GOOD, **change})
    assert any(expected in p for p in problems), problems


def test_duplicate_ids_and_anchors_on_safety_records_are_reported(tmp_path: Path) -> None:
    crisis = {"id": "t-s-001", "kind": "crisis", "question": "x", "anchors": GOOD["anchors"], "docs": ["000"]}
    problems = _problems(tmp_path, GOOD, GOOD, crisis)
    assert any("duplicate id" in p for p in problems)
    assert any("take no anchors" in p for p in problems)


def test_cli_validate_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ketfaq.cli import app
    from ketfaq.settings import get_settings

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("KETFAQ_CORPUS_DIR", str(CORPUS))
    get_settings.cache_clear()
    runner = CliRunner()
    ok = runner.invoke(app, ["qa", "validate"])
    assert ok.exit_code == 0, ok.output
    assert "records" in ok.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**GOOD, "docs": ["004"]}) + "\n", "utf-8")
    assert runner.invoke(app, ["eval", "--validate", "--qa", str(bad)]).exit_code == 2
    get_settings.cache_clear()
