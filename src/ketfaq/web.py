"""The chat page's server side: static files at ``/``, security headers and a per-client rate limit.

The page itself lives in ``web/`` (plain HTML, CSS and JavaScript modules, no build step, no CDN).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ketfaq.settings import Settings

if TYPE_CHECKING:
    pass

__all__ = ["ApiPathsStayApi", "BodyLimit", "ReadableBody", "SecurityHeaders", "content_security_policy", "mount_web", "web_directory"]

# The repository's web/ folder (src layout: src/ketfaq/web.py -> ../../web).
_BUNDLED_WEB_DIR = Path(__file__).resolve().parents[2] / "web"


def web_directory(settings: Settings) -> Path:
    """The folder the chat page is served from: ``KETFAQ_WEB_DIR`` or the repository's ``web/``."""
    return Path(settings.web_dir) if settings.web_dir else _BUNDLED_WEB_DIR


def content_security_policy(frame_ancestors: str) -> str:
    """A CSP that allows only this origin's own files: no inline script or style, no third party."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}"
    )


class SecurityHeaders:
    """ASGI middleware adding CSP, nosniff, a referrer policy and framing rules to every response.

    The API docs (``/docs``) run the vendored Swagger UI under the same policy, except that its
    stylesheet's icons are ``data:`` images.

    Example::

        app.add_middleware(SecurityHeaders, frame_ancestors="'self' https://clinic.example")
    """

    def __init__(self, app: ASGIApp, *, frame_ancestors: str = "'self'") -> None:
        self.app = app
        self.csp = content_security_policy(frame_ancestors)
        self.docs_csp = self.csp.replace("img-src 'self'", "img-src 'self' data:")
        self.headers: dict[str, str] = {
            "X-Content-Type-Options": "nosniff",
            # Visitors' questions are health information: tell linked sites nothing.
            "Referrer-Policy": "no-referrer",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        # Old browsers ignore frame-ancestors; X-Frame-Options can only say "same origin" or "never".
        if frame_ancestors == "'self'":
            self.headers["X-Frame-Options"] = "SAMEORIGIN"
        elif frame_ancestors == "'none'":
            self.headers["X-Frame-Options"] = "DENY"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self.docs_csp if scope["path"].startswith("/docs") else self.csp

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413 before anything parses it.

    A declared Content-Length over the cap is refused at once; a chunked body is counted as it
    arrives and refused the moment it passes the cap, so memory never holds more than the cap.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, send: Send) -> None:
        body = (b'{"detail": "The request is too large: send one question of at most '
                + str(self.max_bytes // 1024).encode() + b' KB."}')
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        seen = 0
        refused = False

        async def counted_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer 413 now; the app sees the client go away and its reply is dropped.
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise


class ReadableBody:
    """Give a request body that is not valid UTF-8 a U+FFFD for each bad byte, before parsing.

    A message with one stray byte (a broken keyboard layout, a mangled copy-paste) is then read,
    screened for crisis and answered like any other, instead of refused unread.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left (or BodyLimit refused it)
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            body = body.decode("utf-8", errors="replace").encode("utf-8")
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}],
                                      receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class ApiPathsStayApi:
    """In front of the chat page's files: ``/api/...`` paths the API doesn't serve get the API's
    JSON 404, or 405 with the route's real ``Allow`` methods, never the static files' answer."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app, self.api = app, api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(("/api/", "/openapi.json", "/docs")):
            await self.app(scope, receive, send)
            return
        allowed = [method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
                   if any(route.matches({**scope, "method": method})[0] == Match.FULL
                          for route in self.api.router.routes if not isinstance(route, Mount))]
        if allowed:
            response = JSONResponse({"detail": "Method Not Allowed"}, status_code=405,
                                    headers={"Allow": ", ".join(allowed)})
        else:
            response = JSONResponse({"detail": "Not Found"}, status_code=404)
        await response(scope, receive, send)


_API_DOCS_DIR = Path(__file__).resolve().parent / "data" / "apidocs"
_API_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>ketfaq API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" href="/favicon.svg" type="image/svg+xml">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/docs.js"></script>
</body>
</html>
"""


def mount_api_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from files shipped in the package (no CDN, no inline script)."""

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(_API_DOCS_PAGE)

    app.mount("/docs/assets", StaticFiles(directory=_API_DOCS_DIR), name="api-docs")


def mount_web(app: FastAPI, settings: Settings) -> None:
    """Serve the chat page at ``/``; API routes registered earlier keep precedence."""
    directory = web_directory(settings)
    if not (directory / "index.html").is_file():
        raise RuntimeError(f"the chat page is missing: no index.html in {directory} (KETFAQ_WEB_DIR)")
    app.mount("/", ApiPathsStayApi(StaticFiles(directory=directory, html=True), app), name="web")
