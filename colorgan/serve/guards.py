"""What keeps a local server safe: a body size limit, a locked-down page, known Host names only.

- `BodyLimit` answers 413 before reading a body whose Content-Length is over the limit, and stops
  reading one sent in chunks the moment it passes the limit. (Starlette's own `max_body_size`
  answers in plain text, replacing the app's response; the page wants the JSON line.)
- `SECURITY_HEADERS` let the page load and fetch only from this server (so the browser itself
  enforces that no request leaves the machine) and keep other sites from framing it.
- `allowed_hosts`: a server on loopback answers only to this machine's Host names, so a web page
  elsewhere cannot reach it through DNS rebinding.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = [(k.encode(), v.encode()) for k, v in {
    "content-security-policy": ("default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                                "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}.items()]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(host: str) -> list[str]:
    """Host header values to accept when listening on `host`: this machine's names on loopback."""
    if host in LOOPBACK or host.startswith("127."):
        return [host, *LOOPBACK, "[::1]"]
    return ["*"]


def too_large(limit: int) -> str:
    return f"upload too large: the limit is {limit / 1e6:g} MB (colorgan serve --max-upload-mb)"


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 and one JSON line."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await JSONResponse({"error": too_large(self.limit)}, 413)(scope, receive, send)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # raised inside the endpoint's form parsing: answered as JSON
                raise HTTPException(413, too_large(self.limit))
            return message

        await self.app(scope, limited, send)


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
