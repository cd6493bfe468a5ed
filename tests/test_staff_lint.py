"""``ketfaq corpus lint``: each problem class caught on a fixture, the shipped corpus passes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketfaq.cli import app
from ketfaq.lint import lint_corpus
from ketfaq.settings import get_settings

FIXTURES = Path(__file__).parent / "fixtures" / "lint"
CORPUS = Path(__file__).resolve().parents[1] / "corpus"

CASES = [  # fixture folder, finding code, severity, line
    ("url", "url", "error", 17),
    ("phone", "phone", "error", 17),
    ("email", "email", "error", 17),
    ("call-to-action", "call-to-action", "warning", 17),
    ("duplicate-paragraph", "duplicate-paragraph", "warning", 13),
    ("short-chunk", "short-chunk", "warning", 19),
    ("empty-heading", "empty-heading", "warning", 17),
    ("front-matter", "front-matter", "error", 1),
    ("spun-text", "spun-text", "warning", 11),
    ("synonyms", "synonyms", "error", 1),
    ("synonyms-unused", "synonyms", "warning", 1),
]


def _run(*args: str, corpus: Path) -> tuple[int, str]:
    get_settings.cache_clear()  # the CLI reads settings once per process
    result = CliRunner().invoke(app, ["corpus", "lint", *args], env={"KETFAQ_CORPUS_DIR": str(corpus)})
    return result.exit_code, result.output


@pytest.mark.parametrize(("folder", "code", "severity", "line"), CASES)
def test_each_problem_class_is_caught_at_its_line(folder: str, code: str, severity: str, line: int) -> None:
    findings = lint_corpus(FIXTURES / folder).findings
    assert [(f.code, f.severity, f.line) for f in findings] == [(code, severity, line)]


def test_the_clean_fixture_has_no_findings() -> None:
    assert lint_corpus(FIXTURES / "clean").findings == []


@pytest.mark.parametrize(("folder", "code", "severity", "line"), CASES)
def test_errors_fail_the_command_and_warnings_do_not(folder: str, code: str, severity: str, line: int) -> None:
    exit_code, output = _run(corpus=FIXTURES / folder)
    assert exit_code == (1 if severity == "error" else 0), output
    assert f":{line}: {severity} [{code}]" in output


def test_json_output_lists_findings_with_file_and_line() -> None:
    exit_code, output = _run("--json", corpus=FIXTURES / "phone")
    report = json.loads(output)
    assert exit_code == 1 and report["errors"] == 1 and report["warnings"] == 0
    (finding,) = report["findings"]
    assert finding["path"].endswith("102-phone.md") and finding["line"] == 17 and finding["code"] == "phone"


def test_shipped_corpus_passes_with_only_the_spun_article_warned() -> None:
    exit_code, output = _run("--json", corpus=CORPUS)
    report = json.loads(output)
    assert exit_code == 0, output
    assert report["errors"] == 0
    spun = [f for f in report["findings"] if f["code"] == "spun-text"]
    assert [Path(f["path"]).name for f in spun] == ["004-ketamine-assisted-psychotherapy-for-anxiety.md"]


def test_a_contact_detail_added_to_a_shipped_article_fails_lint(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    article = corpus / "001-overcoming-anxiety-with-ketamine-therapy.md"
    article.write_text(article.read_text() + "\nCall our office at 212-555-0199 or email info@clinic.example.com.\n")
    exit_code, output = _run(corpus=corpus)
    assert exit_code == 1
    assert "[phone]" in output and "[email]" in output
