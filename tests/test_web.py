"""The chat page's server side: static files, security headers, framing setting, rate limit, page hygiene."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from ketfaq.settings import Settings
from ketfaq.web import web_directory

WEB = Path(__file__).resolve().parents[1] / "web"


def make_client(settings: Settings, answerer, **changes) -> TestClient:
    """A client over a fresh app whose settings differ from the session's by ``changes``."""
    from ketfaq.api import create_app

    return TestClient(create_app(Settings(**{**settings.model_dump(), **changes}), answerer))


def test_page_is_served_at_root(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<textarea id="question"' in response.text
    for asset, kind in (("app.js", "javascript"), ("render.js", "javascript"), ("styles.css", "text/css")):
        served = client.get(f"/{asset}")
        assert served.status_code == 200 and kind in served.headers["content-type"]


def test_api_routes_win_over_static_files(client: TestClient) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    assert client.get("/api/no-such-route").status_code == 404


@pytest.mark.parametrize("path", ["/", "/app.js", "/api/health", "/api/suggestions"])
def test_security_headers_on_page_and_api(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'self'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "SAMEORIGIN"


def test_security_headers_on_ask_and_errors(client: TestClient) -> None:
    for response in (client.post("/api/ask", json={"question": "What is ketamine therapy?"}),
                     client.post("/api/ask", json={"question": "  "})):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in response.headers


def test_api_docs_get_the_page_csp(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "img-src 'self' data:" in csp  # Swagger UI's stylesheet icons; nothing else differs
    assert response.headers["x-content-type-options"] == "nosniff"


def test_frame_ancestors_setting_reaches_the_header(settings: Settings, answerer) -> None:
    with make_client(settings, answerer, frame_ancestors="'self'  https://www.clinic.example") as c:
        headers = c.get("/").headers
    assert "frame-ancestors 'self' https://www.clinic.example" in headers["content-security-policy"]
    assert "x-frame-options" not in headers  # it cannot name another site; the CSP does


def test_framing_can_be_forbidden(settings: Settings, answerer) -> None:
    with make_client(settings, answerer, frame_ancestors="'none'") as c:
        headers = c.get("/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("value", [
    "*",
    "https://clinic.example; script-src *",
    "'none' https://clinic.example",
    "clinic.example",
    "javascript:alert(1)",
    "",
])
def test_unsafe_or_malformed_frame_ancestors_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="frame_ancestors"):
        Settings(frame_ancestors=value)


def test_rate_limit_answers_429_with_a_readable_message(settings: Settings, answerer) -> None:
    with make_client(settings, answerer, rate_limit="2/minute") as c:
        codes = [c.post("/api/ask", json={"question": "Is ketamine safe?"}).status_code for _ in range(2)]
        limited = c.post("/api/ask", json={"question": "Is ketamine safe?"})
        assert codes == [200, 200]
        assert limited.status_code == 429
        assert 0 < int(limited.headers["retry-after"]) <= 60
        detail = limited.json()["detail"]
        assert "wait" in detail and "second" in detail
        assert c.get("/api/health").status_code == 200  # only asking is limited
    # Another client is counted separately.
    from ketfaq.api import create_app

    app = create_app(Settings(**{**settings.model_dump(), "rate_limit": "1/minute"}), answerer)
    with TestClient(app, client=("10.0.0.1", 1000)) as first, TestClient(app, client=("10.0.0.2", 1000)) as second:
        assert first.post("/api/ask", json={"question": "Is ketamine safe?"}).status_code == 200
        assert first.post("/api/ask", json={"question": "Is ketamine safe?"}).status_code == 429
        assert second.post("/api/ask", json={"question": "Is ketamine safe?"}).status_code == 200


def test_rate_limit_is_off_when_empty(settings: Settings, answerer) -> None:
    with make_client(settings, answerer, rate_limit="") as c:
        assert all(c.post("/api/ask", json={"question": "x?"}).status_code != 429 for _ in range(5))


def test_malformed_rate_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="rate_limit"):
        Settings(rate_limit="lots")


def test_web_dir_setting_is_used(tmp_path: Path, settings: Settings, answerer) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>Clinic branded</title>", "utf-8")
    assert web_directory(Settings(web_dir=str(tmp_path))) == tmp_path
    with make_client(settings, answerer, web_dir=str(tmp_path)) as c:
        assert "Clinic branded" in c.get("/").text
    with pytest.raises(RuntimeError, match="index.html"):
        make_client(settings, answerer, web_dir=str(tmp_path / "missing"))


class _Inventory(HTMLParser):
    """Every tag with its attributes, and whether any inline script or style appears."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


def test_page_has_no_inline_code_and_no_third_party_urls() -> None:
    page = _Inventory()
    page.feed((WEB / "index.html").read_text("utf-8"))
    assert not page.inline_script
    assert all(tag != "style" for tag, _ in page.tags)
    for tag, attrs in page.tags:
        assert "style" not in attrs, f"inline style on <{tag}>"
        assert not [a for a in attrs if a.startswith("on")], f"inline handler on <{tag}>"
        for name in ("src", "href", "action"):
            value = attrs.get(name) or ""
            assert not re.match(r"^(?:[a-z]+:)?//", value, re.I), f"external {name} on <{tag}>: {value}"
    scripts = [attrs.get("src") for tag, attrs in page.tags if tag == "script"]
    assert scripts == ["app.js"]
    for asset in list(WEB.glob("*.js")) + list(WEB.glob("*.css")):
        text = asset.read_text("utf-8")
        assert not re.search(r"https?://[a-z0-9]", text, re.I), f"absolute URL in {asset.name}"
        assert "@import" not in text


def test_scripts_never_build_html_from_strings() -> None:
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for script in WEB.glob("*.js"):
        assert not forbidden.search(script.read_text("utf-8")), script.name


def test_form_controls_are_labelled() -> None:
    page = _Inventory()
    page.feed((WEB / "index.html").read_text("utf-8"))
    labels = {attrs.get("for") for tag, attrs in page.tags if tag == "label"}
    for tag, attrs in page.tags:
        if tag in ("textarea", "input", "select"):
            assert attrs.get("id") in labels
    html_tag = next(attrs for tag, attrs in page.tags if tag == "html")
    assert html_tag.get("lang") == "en"
    live = [attrs for _, attrs in page.tags if attrs.get("role") == "log" or attrs.get("aria-live")]
    assert live, "new answers must be announced"


def test_page_knows_exactly_the_answer_kinds() -> None:
    """render.js styles each kind: a kind added to (or dropped from) the enum must show up there."""
    from ketfaq.contract import Kind

    script = (WEB / "render.js").read_text(encoding="utf-8")
    table = re.search(r"const KIND_CLASS = \{(.*?)\};", script, re.S)
    assert table, "render.js no longer has its KIND_CLASS table"
    classes = dict(re.findall(r"(\w+):\s*\"([\w-]+)\"", table.group(1)))
    assert set(classes) == {k.value for k in Kind}
    styles = (WEB / "styles.css").read_text(encoding="utf-8")
    unstyled = [c for k, c in classes.items() if k != Kind.ANSWER and f".{c}" not in styles]
    assert not unstyled, f"kinds with no style in styles.css: {unstyled}"


def test_api_docs_are_vendored_and_can_be_turned_off(settings: Settings, answerer) -> None:
    with make_client(settings, answerer) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/") for s in sources), sources  # nothing from a CDN
        assert "<script>" not in page.text  # no inline script: the CSP would block it
        for source in sources:
            assert c.get(source).status_code == 200, source
        assert c.get("/redoc").status_code == 404  # not vendored, so not served
    with make_client(settings, answerer, api_docs=False) as c:
        assert c.get("/docs").status_code == 404
        assert c.get("/docs/assets/swagger-ui-bundle.js").status_code == 404
        assert c.get("/openapi.json").status_code == 404
        assert c.post("/api/ask", json={"question": "Does it hurt?"}).status_code == 200
