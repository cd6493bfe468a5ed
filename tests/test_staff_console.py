"""The staff console's security and its actions, over HTTP through the real app."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ketfaq.answer import Answerer
from ketfaq.api import create_app
from ketfaq.index import build_index, current_version
from ketfaq.staff.accounts import StaffStore
from tests.staff_helpers import edit, private_copy

NAME, PASSWORD = "dana", "correct horse battery staple"
ARTICLE = "003-ketamine-for-anxiety.md"


@pytest.fixture()
def own(tmp_path: Path, settings, encoder, built_index, database_url: str):
    """A private corpus and index, the records in SQLite or in a fresh PostgreSQL database."""
    own = private_copy(settings, tmp_path, admin_failure_limit="5/minute", database_url=database_url)
    build_index(own, encoder)
    StaffStore(own.db_path, url=database_url).add(NAME, PASSWORD)
    return own


def _records(own) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or every row in PostgreSQL."""
    if not own.database_url:
        return b"".join(p.read_bytes() for p in own.db_path.parent.glob(own.db_path.name + "*"))
    import sqlalchemy as sa

    from ketfaq.storage import METADATA, engine_for

    with engine_for(own.database_url).connect() as conn:
        return repr([conn.execute(sa.select(t)).all() for t in METADATA.sorted_tables]).encode()


@pytest.fixture()
def client(own, encoder):
    with TestClient(create_app(own, Answerer(own, encoder)), base_url="https://clinic.test") as c:
        yield c


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, password: str = PASSWORD):
    page = client.get("/staff/login")
    return client.post("/staff/login", data={"name": NAME, "password": password, "csrf": _csrf(page.text)},
                       follow_redirects=False)


PROTECTED = [("get", "/staff"), ("post", "/staff/publish"), ("post", "/staff/rollback"),
             ("post", "/staff/logout"), ("post", "/staff/unanswered/1/handled"),
             ("post", "/staff/feedback/1/handled")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_staff_route_refuses_without_a_session(client: TestClient, method: str, path: str) -> None:
    response = getattr(client, method)(path, follow_redirects=False)
    assert response.status_code == 401
    assert response.json() == {"detail": "Sign in at /staff/login first."}  # never a page of the console


@pytest.mark.parametrize(("method", "path"), [p for p in PROTECTED if p[0] == "post"])
def test_forms_without_the_csrf_token_are_refused(client: TestClient, method: str, path: str) -> None:
    assert sign_in(client).status_code == 303
    assert client.post(path, data={"version": "x"}).status_code == 403
    assert client.post(path, data={"version": "x", "csrf": "forged"}).status_code == 403


def test_sign_in_form_needs_its_own_csrf_cookie(client: TestClient) -> None:
    client.get("/staff/login")
    response = client.post("/staff/login", data={"name": NAME, "password": PASSWORD, "csrf": "guess"})
    assert response.status_code == 403


def test_sign_in_sets_a_fresh_strict_httponly_secure_cookie(client: TestClient) -> None:
    client.cookies.set("ketfaq_staff", "planted-by-an-attacker", domain="clinic.test", path="/staff")
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/staff"
    cookie = [h for h in response.headers.get_list("set-cookie") if h.startswith("ketfaq_staff=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie and "Path=/staff" in cookie
    session = re.match(r"ketfaq_staff=([^;]+)", cookie).group(1)
    assert session != "planted-by-an-attacker"  # session fixation: a new id at every sign-in
    page = client.get("/staff")
    assert page.status_code == 200 and "Signed in as" in page.text
    assert "script" not in page.text.lower()  # the console runs no script at all
    client.cookies.clear()
    client.cookies.set("ketfaq_staff", "planted-by-an-attacker", domain="clinic.test", path="/staff")
    assert client.get("/staff").status_code == 401


def test_wrong_passwords_are_throttled_and_never_stored_or_logged(client: TestClient, own,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    wrong = "not-the-password-" + "x" * 8
    with caplog.at_level(logging.DEBUG):
        codes = [sign_in(client, wrong).status_code for _ in range(7)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert sign_in(client).status_code == 429  # even the right password waits
    raw = _records(own)
    assert PASSWORD.encode() not in raw and wrong.encode() not in raw and b"$argon2id$" in raw
    assert PASSWORD not in caplog.text and wrong not in caplog.text


def test_publish_rollback_and_the_audit_log(client: TestClient, own) -> None:
    sign_in(client)
    csrf = _csrf(client.get("/staff").text)
    first = current_version(own.index_dir)
    unchanged = client.post("/staff/publish", data={"csrf": csrf})
    assert unchanged.status_code == 200 and "Nothing to publish" in unchanged.text
    edit(own.corpus_dir / ARTICLE, "- Trembling", "- Trembling or shaking")
    assert "differ from the published index" in client.get("/staff").text
    published = client.post("/staff/publish", data={"csrf": csrf})
    assert "Published" in published.text
    second = current_version(own.index_dir)
    assert second != first
    answer = client.post("/api/ask", json={"question": "What are the symptoms of anxiety?"}).json()
    assert answer["index_version"] == second  # served at once, no restart
    rolled = client.post("/staff/rollback", data={"csrf": csrf, "version": first})
    assert "published again" in rolled.text and current_version(own.index_dir) == first
    assert client.post("/api/ask", json={"question": "Is ketamine addictive?"}).json()["index_version"] == first
    log = [(e.name, e.action, e.detail) for e in StaffStore(own.db_path, url=own.database_url).audit_log()]
    assert (NAME, "published", second) in log and (NAME, "rolled back to", first) in log
    assert client.post("/staff/rollback", data={"csrf": csrf, "version": "no-such"}).status_code == 404
    assert client.post("/staff/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/staff").status_code == 401


def test_staff_cli_adds_accounts_without_echoing_the_password(own, monkeypatch) -> None:
    from typer.testing import CliRunner

    from ketfaq.cli import app
    from ketfaq.settings import get_settings

    monkeypatch.setenv("KETFAQ_DB_PATH", str(own.db_path))
    monkeypatch.setenv("KETFAQ_DATABASE_URL", own.database_url)
    get_settings.cache_clear()
    try:
        short = CliRunner().invoke(app, ["staff", "add", "lee"], input="short\nshort\n")
        added = CliRunner().invoke(app, ["staff", "add", "lee"], input="a long enough password\n" * 2)
        listed = CliRunner().invoke(app, ["staff", "list"])
    finally:
        get_settings.cache_clear()
    assert short.exit_code == 2 and "at least 12" in short.output
    assert added.exit_code == 0 and "a long enough password" not in added.output
    assert listed.stdout.split() == ["dana", "lee"]
    assert StaffStore(own.db_path, url=own.database_url).verify("lee", "a long enough password")


def test_upload_edit_preview_and_try_against_the_draft(client: TestClient, own) -> None:
    """Upload an article, see the checker's finding, fix it with a preview, try a question against
    the draft beside the published answer, then publish."""
    sign_in(client)
    csrf = _csrf(client.get("/staff").text)
    page = ("<html><body><h1>Parking at the clinic</h1><p>Patients park free in the garage under the "
            "clinic building on Level 2; bring your ticket to the front desk to have it validated.</p>"
            "<p>Call now to book your free consultation today!</p></body></html>")
    uploaded = client.post("/staff/articles", data={"csrf": csrf},
                           files={"file": ("parking.html", page.encode(), "text/html")}, follow_redirects=False)
    assert uploaded.status_code == 303
    editor = client.get(uploaded.headers["location"])
    assert editor.status_code == 200 and "call-to-action" in editor.text and "The passages visitors" in editor.text
    doc_id = uploaded.headers["location"].rsplit("/", 1)[1]
    text = re.search(r"<textarea[^>]*>(.*?)</textarea>", editor.text, re.S).group(1)
    import html

    fixed = html.unescape(text).replace("Call now to book your free consultation today!", "")
    preview = client.post(f"/staff/articles/{doc_id}", data={"csrf": csrf, "text": fixed, "action": "preview"})
    assert "call-to-action" not in preview.text and "Level 2" in preview.text
    assert "Call now" in (own.corpus_dir / f"{doc_id}.md").read_text()  # a preview saves nothing
    saved = client.post(f"/staff/articles/{doc_id}", data={"csrf": csrf, "text": fixed, "action": "save"})
    assert saved.status_code == 200 and "Saved." in saved.text
    assert "Call now" not in (own.corpus_dir / f"{doc_id}.md").read_text()
    broken = client.post(f"/staff/articles/{doc_id}", data={"csrf": csrf, "text": "no front matter", "action": "save"})
    assert broken.status_code == 422 and "front matter" in broken.text
    tried = client.post("/staff/try", data={"csrf": csrf, "question": "Where do I park for my appointment?"})
    assert tried.status_code == 200 and "Published now" in tried.text and "After you publish" in tried.text
    assert tried.text.count("Level 2") == 1  # only the draft has the new article
    assert current_version(own.index_dir) != re.findall(r"index (\S+)</p>", tried.text)[-1]
    assert "Published" in client.post("/staff/publish", data={"csrf": csrf}).text
    answer = client.post("/api/ask", json={"question": "Where do I park for my appointment?"}).json()
    assert any("Level 2" in p["text"] for p in answer["passages"])
    retired = client.post(f"/staff/articles/{doc_id}/retire", data={"csrf": csrf})
    assert "Retired" in retired.text and not (own.corpus_dir / f"{doc_id}.md").exists()
    actions = [e.action for e in StaffStore(own.db_path, url=own.database_url).audit_log()]
    assert {"added", "edited", "published", "retired"} <= set(actions)
