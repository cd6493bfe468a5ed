"""The chat page in a real browser: Playwright driving Debian's Chromium against the app on 127.0.0.1.

Needs ``apt-get install chromium`` and ``pip install playwright`` (no ``playwright install``: the
browser is the system one). Without them these tests are skipped locally and fail under ``CI``.
Set ``KETFAQ_SCREENSHOT_DIR`` to keep the desktop and phone screenshots (``docs/screenshots``).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ketfaq.settings import Settings

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("KETFAQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps", "--disable-extensions"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
QUESTION = "How quickly does ketamine therapy work for anxiety?"
CRISIS = "I don't want to be alive anymore. I'm thinking about ending my life."
XSS = "<img src=x onerror=alert(1)>"
ANSWER_WAIT_MS = 60_000  # a generous ceiling, not a speed assertion: CI machines are slow


def _missing_browser() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 in a thread; yields its base URL; stops it after."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def app_for(settings: Settings, answerer, **changes):
    """The real app over the session's index, with a few settings changed."""
    from ketfaq.api import create_app

    return create_app(Settings(**{**settings.model_dump(), **changes}), answerer)


@pytest.fixture(scope="session")
def live_url(settings: Settings, answerer) -> Iterator[str]:
    with serve(app_for(settings, answerer, rate_limit="")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    reason = _missing_browser()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watch:
    """What a page did: every request URL, blocked off-host requests, console errors, dialogs."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []


def open_page(browser, base_url: str, viewport: dict[str, int] = DESKTOP):
    """A fresh context and page; any request for a host other than 127.0.0.1 is recorded and refused."""
    # Reduced motion: scrolling is instant, so screenshots show what the visitor lands on.
    context = browser.new_context(viewport=viewport, service_workers="block", reduced_motion="reduce")
    watch = Watch()

    def guard(route) -> None:
        url = route.request.url
        watch.requests.append(url)
        if urlsplit(url).hostname != "127.0.0.1":
            watch.foreign.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(ANSWER_WAIT_MS)
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.errors.append(str(e)))

    def on_dialog(dialog) -> None:
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(base_url)
    page.locator(".starter").first.wait_for()
    return context, page, watch


@pytest.fixture()
def desktop(browser, live_url: str):
    context, page, watch = open_page(browser, live_url)
    yield page, watch
    context.close()


def ask(page, question: str, *, keyboard: bool = False) -> dict:
    """Type a question, send it, and return the server's JSON once the page has shown the answer."""
    answers = page.locator(".answer")
    before = answers.count()
    with page.expect_response(lambda r: r.url.endswith("/api/ask")) as info:
        page.locator("#question").fill(question)
        if keyboard:
            page.keyboard.press("Enter")
        else:
            page.locator("#ask-button").click()
    body = info.value.json()
    answers.nth(before).wait_for()
    return body


def contrast(page, selector: str) -> float:
    """WCAG contrast ratio of the first element matching ``selector`` against its visible background."""
    return page.locator(selector).first.evaluate("""(node) => {
        const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => {
            const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        let bg = null;
        for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
            const c = rgb(getComputedStyle(n).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3] > 0)) { bg = c.slice(0, 3); break; }
        }
        bg = bg || [255, 255, 255];
        const a = lum(rgb(getComputedStyle(node).color).slice(0, 3)), b = lum(bg);
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    }""")


def screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KETFAQ_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path))
    return path


# --- What a visitor gets ---------------------------------------------------------------------

def test_answer_shows_verbatim_passages_highlight_disclaimer_and_referral(desktop) -> None:
    page, watch = desktop
    body = ask(page, QUESTION)
    assert body["kind"] == "answer" and body["passages"]
    answer = page.locator(".answer").last
    assert answer.locator(".answer-notice").text_content() == body["notice"]
    cards = answer.locator(".passage")
    assert cards.count() == len(body["passages"])
    highlighted = 0
    for i, passage in enumerate(body["passages"]):
        card = cards.nth(i)
        # The text is the article's, byte for byte; the highlight only splits it.
        assert card.locator("blockquote").text_content() == passage["text"]
        assert card.locator("cite").text_content() == passage["source"]["title"]
        if passage["highlight"]:
            start, end = passage["highlight"]["start"], passage["highlight"]["end"]
            assert card.locator("mark").text_content() == passage["text"][start:end]
            highlighted += 1
        else:
            assert card.locator("mark").count() == 0
    assert highlighted, "the server highlighted nothing to check"
    assert answer.locator(".referral").text_content() == body["referral"]
    assert answer.locator(".disclaimer").text_content() == "Please note: " + body["disclaimer"]
    assert page.locator("#question").input_value() == ""  # answered: the box is ready for the next
    assert not watch.errors and not watch.foreign


def test_disclaimer_and_referral_come_with_every_answer(desktop) -> None:
    page, _ = desktop
    first = ask(page, QUESTION)
    second = ask(page, "What are the side effects of ketamine?")
    assert page.locator(".answer").count() == 2
    for i, body in enumerate((first, second)):
        answer = page.locator(".answer").nth(i)
        assert body["disclaimer"] in answer.locator(".disclaimer").text_content()
        assert answer.locator(".referral").text_content() == body["referral"]


def test_source_title_is_a_link_only_for_articles_with_a_url(desktop, answerer) -> None:
    page, _ = desktop
    body = ask(page, QUESTION)
    for i, passage in enumerate(body["passages"]):
        link = page.locator(".answer").last.locator(".passage").nth(i).locator("a.passage-link")
        if passage["source"]["url"]:
            assert link.get_attribute("href") == passage["source"]["url"]
            assert link.get_attribute("rel") == "noopener noreferrer"
        else:
            assert link.count() == 0


def test_crisis_shows_the_emergency_panel_without_passages(desktop, settings: Settings) -> None:
    page, _ = desktop
    body = ask(page, CRISIS)
    assert body["kind"] == "crisis"
    answer = page.locator(".answer").last
    panel = answer.locator(".crisis-panel")
    assert panel.is_visible() and panel.get_attribute("role") == "alert"
    assert " ".join(panel.locator(".crisis-referral").text_content().split()) == " ".join(settings.crisis_referral.split())
    assert answer.locator(".passage").count() == 0
    phones = panel.locator("a[href^='tel:']").evaluate_all("(links) => links.map((a) => a.getAttribute('href'))")
    for number in re.findall(r"\b(988|911)\b", settings.crisis_referral):
        assert f"tel:{number}" in phones
    assert panel.locator("a[href='https://988lifeline.org/']").count() == 1
    assert contrast(page, ".crisis-referral p") >= 4.5
    # The conversation stays open: the next question is answered as usual.
    assert ask(page, QUESTION)["kind"] == "answer"
    assert page.locator(".crisis-panel").count() == 1


@pytest.mark.parametrize("question, kind", [
    ("What dose of ketamine should I take for my anxiety?", "personal_advice"),
    ("Write me a poem about the ocean", "out_of_scope"),
])
def test_other_kinds_read_as_kind_sentences_not_errors(desktop, question: str, kind: str) -> None:
    page, _ = desktop
    body = ask(page, question)
    assert body["kind"] == kind
    answer = page.locator(".answer").last
    assert answer.locator(".answer-notice").text_content() == body["notice"]
    assert answer.locator(".referral").text_content() == body["referral"]
    assert answer.locator(".disclaimer").is_visible()
    assert page.locator("#ask-error").text_content() == ""


def test_starter_questions_come_from_the_server(desktop, client) -> None:
    page, _ = desktop
    expected = client.get("/api/suggestions", params={"limit": 6}).json()["questions"]
    assert page.locator(".starter").all_text_contents() == expected
    with page.expect_response(lambda r: r.url.endswith("/api/ask")) as info:
        page.locator(".starter").first.click()
    assert info.value.json()["question"] == expected[0]
    page.locator(".answer").first.wait_for()


def test_loading_state_while_the_server_works(desktop) -> None:
    page, _ = desktop
    held = []
    page.route("**/api/ask", lambda route: held.append(route))  # hold it while we look at the page
    page.locator("#question").fill(QUESTION)
    page.locator("#ask-button").click()
    page.locator(".thinking").wait_for()
    assert page.locator("#ask-form").get_attribute("aria-busy") == "true"
    assert page.locator("#ask-button").get_attribute("aria-disabled") == "true"
    assert page.locator("#ask-status").text_content().startswith("Looking through")
    assert page.locator(".question").last.text_content() == "You asked: " + QUESTION
    page.locator("#ask-button").click(force=True)  # a second press while waiting sends nothing
    assert len(held) == 1
    held[0].continue_()
    page.locator(".answer").first.wait_for()
    assert page.locator(".thinking").count() == 0
    assert page.locator("#ask-form").get_attribute("aria-busy") == "false"
    assert len(held) == 1


# --- Keyboard, screen readers, contrast ------------------------------------------------------

def test_keyboard_only_visitor_can_ask(desktop) -> None:
    page, _ = desktop
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")  # the skip link jumps straight to the question box
    assert page.evaluate("document.activeElement.id") == "question"
    page.keyboard.type("Is ketamine therapy safe?")
    with page.expect_response(lambda r: r.url.endswith("/api/ask")):
        page.keyboard.press("Enter")
    page.locator(".answer").first.wait_for()
    assert page.evaluate("document.activeElement.id") == "question"
    assert page.locator("#question").input_value() == ""
    # Shift+Enter is a new line, not a send.
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    assert page.locator("#question").input_value() == "line one\nline two"
    assert page.locator(".answer").count() == 1
    # Tab order from the box: the Ask button, with a visible focus ring.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "ask-button"
    assert page.locator("#ask-button").evaluate("(b) => getComputedStyle(b).outlineStyle") != "none"


def test_keyboard_reaches_starter_questions_in_order(desktop) -> None:
    page, _ = desktop
    order = []
    for _ in range(12):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.className || document.activeElement.id"))
    assert order[0] == "skip-link" and order[1] == "starter"
    assert order.index("question") < order.index("ask-button")
    assert order.index("starter") < order.index("question")
    page.locator(".starter").nth(1).focus()
    with page.expect_response(lambda r: r.url.endswith("/api/ask")):
        page.keyboard.press("Enter")
    page.locator(".answer").first.wait_for()


def test_answers_are_announced_and_landmarks_exist(desktop) -> None:
    page, _ = desktop
    log = page.locator("#conversation")
    assert log.get_attribute("role") == "log" and log.get_attribute("aria-live") == "polite"
    assert page.locator("#question").evaluate("(t) => t.labels[0].textContent") == "Your question"
    ask(page, QUESTION)
    assert page.locator("#conversation .answer").count() == 1
    labelled = page.locator(".answer").first.get_attribute("aria-labelledby")
    assert page.locator(f"#{labelled}").text_content()
    for landmark in ("header", "main", "footer"):
        assert page.locator(landmark).count() == 1


def test_text_meets_wcag_aa_contrast(desktop) -> None:
    page, _ = desktop
    ask(page, QUESTION)
    for selector in ("h1", ".intro", ".starter", ".question", ".answer-notice", ".passage-text",
                     ".passage-highlight", ".passage-source", ".referral p", ".disclaimer", ".ask-label",
                     ".ask-hint", "#ask-button"):
        assert contrast(page, selector) >= 4.5, selector
    page.locator("#question").fill("")
    page.locator("#ask-button").click()
    assert contrast(page, "#ask-error") >= 4.5


# --- Security ----------------------------------------------------------------------------------

def test_markup_in_a_question_is_shown_as_text_and_runs_nothing(desktop) -> None:
    page, watch = desktop
    body = ask(page, XSS)
    assert body["question"] == XSS
    bubble = page.locator(".question").last
    assert bubble.text_content() == "You asked: " + XSS
    assert page.locator("#conversation img").count() == 0
    assert not watch.dialogs
    assert not [u for u in watch.requests if urlsplit(u).path == "/x"]


def test_highlight_splits_text_by_code_points_and_unsafe_links_stay_text(desktop) -> None:
    page, _ = desktop
    result = page.evaluate("""async () => {
        const { highlightedText, renderPassage, contactLinks } = await import('./render.js');
        const box = document.createElement('div');
        box.append(highlightedText('\\u{1F600} calm <b>bold</b> end', { start: 2, end: 6 }));
        const bad = document.createElement('div');
        bad.append(highlightedText('short', { start: 3, end: 99 }));
        const card = renderPassage({ text: 'x', source: { title: 'T', section: 'S', url: 'javascript:alert(1)' } });
        const crisis = document.createElement('p');
        crisis.append(contactLinks('Call or text 988, chat at 988lifeline.org, or call 911. Oprima 2.'));
        return {
            text: box.textContent, mark: box.querySelector('mark').textContent, bold: box.querySelectorAll('b').length,
            badMarks: bad.querySelectorAll('mark').length, badText: bad.textContent,
            links: card.querySelectorAll('a').length,
            crisisText: crisis.textContent,
            hrefs: [...crisis.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        };
    }""")
    assert result["text"] == "\N{GRINNING FACE} calm <b>bold</b> end"
    assert result["mark"] == "calm"
    assert result["bold"] == 0
    assert result["badMarks"] == 0 and result["badText"] == "short"
    assert result["links"] == 0
    assert result["crisisText"] == "Call or text 988, chat at 988lifeline.org, or call 911. Oprima 2."
    assert result["hrefs"] == ["tel:988", "https://988lifeline.org/", "tel:911"]


def test_no_request_leaves_127_0_0_1_and_the_csp_holds(desktop) -> None:
    page, watch = desktop
    ask(page, QUESTION)
    ask(page, CRISIS)
    page.locator(".starter").first.click()
    page.locator(".answer").nth(2).wait_for()
    assert watch.requests and all(urlsplit(u).hostname == "127.0.0.1" for u in watch.requests)
    assert not watch.foreign
    assert not [e for e in watch.errors if "Content Security Policy" in e], watch.errors
    assert not watch.errors


# --- Error states --------------------------------------------------------------------------------

def test_empty_question_asks_for_text_without_calling_the_server(desktop) -> None:
    page, watch = desktop
    calls = len([u for u in watch.requests if u.endswith("/api/ask")])
    page.locator("#question").fill("   ")
    page.locator("#ask-button").click()
    assert page.locator("#ask-error").text_content() == "Please type a question first."
    assert page.locator("#question").get_attribute("aria-invalid") == "true"
    assert len([u for u in watch.requests if u.endswith("/api/ask")]) == calls


def test_422_shows_the_servers_sentence_and_keeps_the_text(desktop) -> None:
    page, _ = desktop
    long_question = "Is ketamine safe? " * 60  # over 1,000 characters
    with page.expect_response(lambda r: r.url.endswith("/api/ask")) as info:
        page.locator("#question").fill(long_question)
        page.locator("#ask-button").click()
    assert info.value.status == 422
    error = page.locator("#ask-error")
    error.filter(has_text="characters").wait_for()
    assert error.text_content() == info.value.json()["detail"]
    assert error.get_attribute("role") == "alert"
    assert page.locator("#question").input_value() == long_question
    assert page.locator(".exchange").count() == 0
    page.locator("#question").press("End")
    page.keyboard.type("x")  # typing again clears the error
    assert error.text_content() == ""


def test_429_asks_the_visitor_to_wait_and_keeps_the_text(browser, settings: Settings, answerer) -> None:
    with serve(app_for(settings, answerer, rate_limit="1/minute")) as url:
        context, page, _ = open_page(browser, url)
        try:
            ask(page, QUESTION)
            with page.expect_response(lambda r: r.url.endswith("/api/ask")) as info:
                page.locator("#question").fill("Is ketamine addictive?")
                page.locator("#ask-button").click()
            assert info.value.status == 429
            error = page.locator("#ask-error")
            error.filter(has_text="wait").wait_for()
            assert error.text_content() == info.value.json()["detail"]
            assert page.locator("#question").input_value() == "Is ketamine addictive?"
            assert page.locator(".answer").count() == 1
        finally:
            context.close()


def test_server_down_shows_a_readable_message_and_keeps_the_text(browser, settings: Settings, answerer) -> None:
    with serve(app_for(settings, answerer)) as url:
        context, page, watch = open_page(browser, url)
    try:  # the server has stopped; the page is still open
        page.locator("#question").fill(QUESTION)
        page.locator("#ask-button").click()
        error = page.locator("#ask-error")
        error.filter(has_text="can't reach").wait_for()
        assert "Your question is still in the box" in error.text_content()
        assert page.locator("#question").input_value() == QUESTION
        assert page.locator(".exchange").count() == 0
        assert page.locator("#ask-button").get_attribute("aria-disabled") == "false"
    finally:
        context.close()


def test_server_error_is_not_shown_as_raw_text(desktop) -> None:
    page, _ = desktop
    # A 500 from a proxy, say: the page must not show the body, only its own kind sentence.
    page.route("**/api/ask", lambda route: route.fulfill(status=502, body="<h1>Bad gateway</h1>",
                                                        content_type="text/html"))
    page.locator("#question").fill(QUESTION)
    page.locator("#ask-button").click()
    error = page.locator("#ask-error")
    error.filter(has_text="went wrong").wait_for()
    assert "Bad gateway" not in error.text_content()
    assert page.locator("#question").input_value() == QUESTION


# --- Layout and embedding ----------------------------------------------------------------------

def test_phone_layout_fits_375px(browser, live_url: str, tmp_path: Path) -> None:
    context, page, _ = open_page(browser, live_url, PHONE)
    try:
        screenshot(page, "phone-start.png", tmp_path)
        ask(page, QUESTION)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways ({width}px)"
        for selector in ("#question", "#ask-button"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            assert box["y"] + box["height"] <= PHONE["height"], f"{selector} is below the screen"
        for card in page.locator(".passage-figure").all():
            box = card.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert page.locator("#ask-button").bounding_box()["height"] >= 44  # a thumb-sized target
        screenshot(page, "phone.png", tmp_path)
        ask(page, CRISIS)
        screenshot(page, "phone-crisis.png", tmp_path)
    finally:
        context.close()


def test_desktop_screenshot(browser, live_url: str, tmp_path: Path) -> None:
    context, page, _ = open_page(browser, live_url, DESKTOP)
    try:
        screenshot(page, "desktop-start.png", tmp_path)
        body = ask(page, QUESTION)
        page.locator(".exchange").last.scroll_into_view_if_needed()
        assert screenshot(page, "desktop.png", tmp_path).stat().st_size > 0
        assert body["passages"]
    finally:
        context.close()


class ClinicSite:
    """A stand-in clinic website on another origin (127.0.0.1, another port) that embeds the page."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def embed(self, chat_url: str) -> str:
        """Put the README's iframe snippet for ``chat_url`` on the site; returns the page URL."""
        (self.folder / "index.html").write_text(
            "<!doctype html><title>Clinic</title><h1>Our clinic</h1>"
            f'<iframe src="{chat_url}" title="Questions about ketamine therapy" '
            'style="width:100%;max-width:480px;height:640px;border:0"></iframe>', "utf-8")
        return self.origin + "/index.html"


@pytest.fixture()
def clinic_site(tmp_path: Path) -> Iterator[ClinicSite]:
    site = ClinicSite(tmp_path)
    site.server.RequestHandlerClass.log_message = lambda *args: None
    site.thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()
    site.thread.join(timeout=10)


def framed_heading(browser, page_url: str) -> str | None:
    """The chat page's heading as seen inside the clinic's iframe, or None when framing is refused."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_url, wait_until="load")  # the load event waits for the iframe too
        child = page.main_frame.child_frames[0]
        if child.url.startswith("chrome-error:") or child.locator("h1").count() == 0:
            return None
        return child.locator("h1").text_content()
    finally:
        context.close()


def test_other_sites_cannot_frame_the_page_by_default(browser, live_url: str, clinic_site: ClinicSite) -> None:
    assert framed_heading(browser, clinic_site.embed(live_url)) is None


def test_a_site_named_in_frame_ancestors_can_embed_the_page(browser, settings: Settings, answerer,
                                                            clinic_site: ClinicSite) -> None:
    app = app_for(settings, answerer, frame_ancestors=f"'self' {clinic_site.origin}")
    with serve(app) as url:
        assert framed_heading(browser, clinic_site.embed(url)) == "Questions about ketamine therapy"


def test_the_check_in_line_is_shown_above_the_answer_with_tappable_numbers(desktop, answerer) -> None:
    """The safety gate's uncertain band: a normal answer plus the fixed check-in line."""
    from ketfaq.messages import CHECK_IN
    from tests.conftest import load_qa

    candidates = [r["question"] for r in load_qa("safety_extra.jsonl") + load_qa()
                  if r["kind"] in ("answer", "personal_advice")]
    question = next((q for q in candidates if answerer.gate.classify(q).check_in
                     and answerer.gate.classify(q).kind is None), None)
    assert question, "no QA question falls in the check-in band: nothing to show"
    page, _ = desktop
    body = ask(page, question)
    assert body["check_in"] == CHECK_IN
    line = page.locator(".answer").last.locator(".check-in")
    assert line.text_content() == CHECK_IN
    assert line.locator("a[href='tel:988']").count() == 1
    # First thing in the card after its heading: read before the passages.
    assert page.locator(".answer").last.locator(":scope > *").nth(1).get_attribute("class") == "check-in"


def test_api_docs_render_from_vendored_files_under_the_csp(browser, live_url: str) -> None:
    """/docs: Swagger UI shows the API with no third-party request and no CSP violation."""
    context = browser.new_context(viewport=DESKTOP, service_workers="block")
    foreign: list[str] = []
    problems: list[str] = []

    def guard(route) -> None:
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            foreign.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        response = page.goto(live_url + "docs")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.locator(".opblock-summary-path", has_text="/api/ask").first.wait_for(timeout=30_000)
        assert page.locator(".opblock").count() >= 3
    finally:
        context.close()
    assert not foreign, foreign
    assert not problems, problems


def test_visitor_feedback_reaches_the_review_queue_and_crisis_answers_take_none(
        browser, settings: Settings, answerer, tmp_path: Path) -> None:
    """Keyboard only: "No", a comment (with an e-mail the store must not keep), Send; staff see it."""
    import httpx

    token = "feedback-review-admin-token"
    app = app_for(settings, answerer, rate_limit="", admin_token=token, db_path=tmp_path / "db.sqlite3")
    with serve(app) as url:
        context, page, watch = open_page(browser, url)
        try:
            answered = ask(page, QUESTION)
            exchange = page.locator(".exchange").last
            feedback = exchange.locator(".feedback")
            feedback.wait_for()
            no = feedback.get_by_role("button", name="No")
            no.focus()
            page.keyboard.press("Enter")
            comment = feedback.locator("textarea")
            comment.wait_for()
            assert comment.evaluate("(n) => n === document.activeElement")  # focus moved to the comment
            page.keyboard.type("Nothing about parking. Write to me at pat@example.com")
            page.keyboard.press("Tab")
            with page.expect_response(lambda r: r.url.endswith("/api/feedback")) as sent:
                page.keyboard.press("Enter")
            assert sent.value.status == 200 and sent.value.json() == {"recorded": True}
            feedback.locator(".feedback-status", has_text="Thank you").wait_for()
            assert ask(page, CRISIS)["kind"] == "crisis"
            assert page.locator(".exchange").last.locator(".feedback").count() == 0
            queue = httpx.get(url + "api/admin/feedback", headers={"Authorization": f"Bearer {token}"},
                              timeout=10).json()
        finally:
            context.close()
    assert len(queue) == 1 and queue[0]["helpful"] is False and queue[0]["kind"] == answered["kind"]
    assert queue[0]["question"] == QUESTION and queue[0]["index_version"] == answered["index_version"]
    assert queue[0]["passage_ids"] == [p["id"] for p in answered["passages"]]
    assert "[email]" in queue[0]["comment"] and "pat@example.com" not in queue[0]["comment"]
    assert not watch.errors and not watch.foreign


def test_staff_upload_fix_try_publish_and_roll_back(browser, settings: Settings, encoder,
                                                    tmp_path: Path) -> None:
    """The issue's staff story in a real browser: sign in (keyboard only), upload an article, see
    the checker's finding, fix it, try a question against the draft, publish, see the chat page
    answer from the new version without a restart, roll back; then a visitor's "not helpful"
    reaches the console's queue. The console fits a 375 px phone."""
    from ketfaq.answer import Answerer
    from ketfaq.index import build_index, current_version
    from ketfaq.staff.accounts import StaffStore
    from tests.staff_helpers import private_copy

    own = private_copy(settings, tmp_path)
    build_index(own, encoder)
    StaffStore(own.db_path).add("dana", "correct horse battery staple")
    first = current_version(own.index_dir)
    upload = tmp_path / "parking.html"
    upload.write_text("<h1>Parking at the clinic</h1><p>Patients park free in the garage under "
                      "the building on Level 2; the front desk validates tickets.</p>"
                      "<p>Call now to book your free consultation today!</p>", encoding="utf-8")
    question = "Where do I park for my appointment?"
    with serve(app_for(own, Answerer(own, encoder), rate_limit="")) as url:
        context = browser.new_context(viewport=PHONE, service_workers="block")
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            page.goto(url + "staff/login")
            page.keyboard.press("Tab")
            page.keyboard.type("dana")
            page.keyboard.press("Tab")
            page.keyboard.type("correct horse battery staple")
            page.keyboard.press("Enter")
            page.get_by_text("Signed in as").wait_for()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            if os.environ.get("KETFAQ_SCREENSHOT_DIR"):
                page.screenshot(path=str(Path(os.environ["KETFAQ_SCREENSHOT_DIR"]) / "staff-phone.png"))

            page.locator("#upload").set_input_files(str(upload))
            page.get_by_role("button", name="Add", exact=True).click()
            page.get_by_text("call-to-action").first.wait_for()  # the checker's finding, in the editor
            text = page.locator("#text")
            text.fill(text.input_value().replace("Call now to book your free consultation today!", ""))
            page.get_by_role("button", name="Save").click()
            page.get_by_text("Saved. Visitors see it once you publish").wait_for()
            assert page.get_by_text("call-to-action").count() == 0
            page.get_by_role("link", name="Back to the console").click()

            page.set_viewport_size(DESKTOP)
            page.locator("#try").fill(question)
            page.get_by_role("button", name="Try it").click()
            page.get_by_role("heading", name="After you publish").wait_for()
            assert page.locator("section[aria-label='After you publish']").get_by_text("Level 2").count() == 1
            assert page.locator("section[aria-label='Published now']").get_by_text("Level 2").count() == 0
            if os.environ.get("KETFAQ_SCREENSHOT_DIR"):
                page.screenshot(path=str(Path(os.environ["KETFAQ_SCREENSHOT_DIR"]) / "staff-try.png"))
            page.get_by_role("link", name="Back to the console").click()
            page.get_by_role("button", name="Publish the articles as they are now").focus()
            page.keyboard.press("Enter")
            page.get_by_text("Published: visitors now get answers").wait_for()
            second = current_version(own.index_dir)
            assert second != first

            chat = context.new_page()
            chat.goto(url)
            chat.locator(".starter").first.wait_for()
            answered = ask(chat, question)
            assert answered["index_version"] == second
            assert any("Level 2" in p["text"] for p in answered["passages"])
            page.locator("form[action='/staff/rollback']").filter(
                has=page.locator(f"input[value='{first}']")).get_by_role("button").click()
            page.get_by_text("That version is published again.").wait_for()
            assert current_version(own.index_dir) == first
            assert ask(chat, question)["index_version"] == first

            chat.locator(".exchange").last.locator(".feedback").get_by_role("button", name="No").click()
            chat.locator(".exchange").last.get_by_role("button", name="Send").click()
            chat.get_by_text("Thank you: the clinic's team reads this.").wait_for()
            page.reload()
            queue = page.locator("section[aria-labelledby='feedback-h']")
            assert queue.get_by_text(question).count() == 1
            assert page.get_by_text("rolled back to").count() >= 1  # the audit log names who and what
        finally:
            context.close()
    assert not errors, errors
