"""Security headers on every response, and the checks of every request's URL and JSON body
(one pure ASGI middleware: no per-request task, one layer rather than three).

The pages run no inline script: behaviour lives in /static/app.js, so the
Content-Security-Policy allows scripts from the site only. Styles may be
inline (a few ``style`` attributes and the label sheet's print CSS). The
OpenAPI pages (/docs, /redoc) load Swagger UI the way FastAPI ships it and keep
FastAPI's defaults; they carry the other headers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from web.errors import control_character_answer

NO_STORE = "foodtrace.no_store"
"""The scope key under which :class:`Guard` leaves a list; a request whose caller was
authenticated appends to it (``web.deps.mark_authenticated``), and its answer then
carries ``Cache-Control: no-store``."""

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


MAX_JSON_BYTES = 2 * 1024 * 1024
"""A JSON request body larger than this is refused (413) before it is parsed."""


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


JSON_BODY = "foodtrace.json_body"
"""The scope key under which :class:`Guard` leaves a JSON request body it parsed:
``(bytes, value)``, for a route that would parse the same bytes again (web.lean)."""

_PLAIN = re.compile(r"[\x21-\x24\x26-\x7e]*")
_PLAIN_BYTES = re.compile(rb"[\x21-\x24\x26-\x7e]*")


class Guard:
    """Every HTTP request's checks and every response's headers, in one ASGI layer.

    In the order the three layers it replaces ran (each was a wrapper of its own, an
    await and a closure more per request):

    1. a URL whose path or query decodes to a control character is refused (422)
       (``web.errors.control_character_answer``);
    2. the security headers go on every response from here on;
    3. a JSON body that names a key twice (422) or is too large (413) is refused:
       ``json.loads`` keeps the last of two equal keys without a word, so a record could
       be read differently by two parsers; a record must mean one thing. The parsed body
       is left in the scope (:data:`JSON_BODY`).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A URL of printable ASCII without "%" cannot decode to a control character;
        # any other is decoded the way the check always did.
        if not (
            _PLAIN.fullmatch(scope["path"])
            and _PLAIN_BYTES.fullmatch(scope.get("query_string", b""))
        ):
            refused = control_character_answer(scope)
            if refused is not None:
                await refused(scope, receive, send)
                return
        path: str = scope.get("path", "")
        https = scope.get("scheme") == "https"
        scope[NO_STORE] = authenticated = []  # web.deps.mark_authenticated appends to it
        if any(k.lower() == b"authorization" for k, _ in scope.get("headers") or []):
            # a bearer request's answer is its caller's alone, whichever check answers it
            # first (a body refused before the token is looked at included)
            authenticated.append(True)

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = list(HEADERS)
                if not path.startswith(DOCS):
                    extra.append((b"content-security-policy", CSP.encode()))
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                if authenticated:  # someone's own answer: no cache may keep it
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    present.discard(b"cache-control")
                    extra.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send_with_headers)
            return
        headers = dict(scope.get("headers") or [])
        if b"json" not in headers.get(b"content-type", b""):
            await self.app(scope, receive, send_with_headers)
            return
        await self._strict_json(scope, receive, send_with_headers)

    async def _strict_json(self, scope: Any, receive: Any, send: Any) -> None:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_JSON_BYTES:
                await _answer(send, 413, "too_large", f"the body is over {MAX_JSON_BYTES} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            scope[JSON_BODY] = (body, json.loads(body, object_pairs_hook=_no_duplicates))
        except _DuplicateKey as exc:
            await _answer(send, 422, "duplicate_key", f"the key {exc.args[0]!r} appears twice")
            return
        except RecursionError:
            await _answer(send, 422, "too_deep", "the JSON is nested too deeply to be a record")
            return
        except ValueError:
            pass  # not JSON at all: the route says so in its own words
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _answer(send: Any, status: int, kind: str, msg: str) -> None:
    data = json.dumps({"detail": [{"loc": ["body"], "msg": msg, "type": kind}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
