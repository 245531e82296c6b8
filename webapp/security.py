"""Security headers on every response (a pure ASGI middleware: no per-request task overhead).

The pages run no inline script: behaviour lives in /static/app.js, so the
Content-Security-Policy allows scripts from the site only. Styles may be
inline (a few ``style`` attributes and the label sheet's print CSS). The
OpenAPI pages (/docs, /redoc) load Swagger UI the way FastAPI ships it and keep
FastAPI's defaults; they carry the other headers.
"""

from __future__ import annotations

from typing import Any

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
DOCS = ("/docs", "/redoc")


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = list(HEADERS)
                if not path.startswith(DOCS):
                    extra.append((b"content-security-policy", CSP.encode()))
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
