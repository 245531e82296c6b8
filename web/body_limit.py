"""One request-body limit for every route, enforced before the body reaches any route.

A route that checks a file's size after reading it (``file.file.read()``) has
already held the whole body: a 300 MB attachment was refused only after the
server had grown by as much. Here, as a pure ASGI middleware in front of all:

- a ``Content-Length`` over the route's limit is answered 413 without reading a byte
  of the body (the server then closes the connection);
- a body without one (``Transfer-Encoding: chunked``) is counted as it arrives, and
  the moment it passes the limit the route's reading stops and the answer is 413,
  whatever the route was about to say.

Two classes of route (``TRACE_BODY_MAX_BYTES``, ``TRACE_UPLOAD_BODY_MAX_BYTES``):
the upload routes (:data:`UPLOADS`: attachments, imports, record forms carrying
scans) take a file of 20 MB and the form around it; every other route a small body.
The API answers JSON, the pages a page.
"""

from __future__ import annotations

import json
import re
from typing import Any

from web.security import CSP, HEADERS

UPLOADS = re.compile(
    r"/api/v1/attachments|/api/v1/imports/[^/]+|/import|/records/[^/]+/new"
    r"|/ledger/[^/]+/correct"
)
"""The paths whose bodies carry a file (matched whole)."""


class BodyTooLarge(Exception):  # noqa: N818 - what the body is
    """Raised into the route that reads past the limit (its answer is replaced by 413)."""


class BodyLimit:
    """Refuse (413) a request whose body is over its route's limit, before or while reading it."""

    def __init__(self, app: Any, *, default: int, upload: int) -> None:
        self.app = app
        self.default = default
        self.upload = upload

    def limit(self, path: str) -> int:
        return self.upload if UPLOADS.fullmatch(path) else self.default

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        length = chunked = None
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = value
        if length is not None and chunked is None:
            if not length.isdigit() or int(length) > limit:
                await _refuse(scope, send, limit)
                return
            # The server delivers no more than Content-Length: nothing left to count.
            await self.app(scope, receive, send)
            return
        if chunked is None:  # no body at all
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Any, receive: Any, send: Any, limit: int) -> None:
        size = 0
        over = False
        started = False

        async def counting() -> Any:
            nonlocal size, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def sending(message: Any) -> None:
            nonlocal started
            if over:
                return  # the route's own answer to a body cut short: ours is sent instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _refuse(scope, send, limit)


async def _refuse(scope: Any, send: Any, limit: int) -> None:
    mb = f"{limit / (1024 * 1024):g}"
    zh = f"请求内容超过 {mb} MB 的上限，未读取也未保存"
    en = f"the request body is over the {mb} MB limit of this route; nothing was read or saved"
    if scope["path"].startswith("/api/"):
        body = json.dumps(
            {"detail": [{"loc": ["body"], "msg": f"{zh} ({en})", "type": "too_large"}]},
            ensure_ascii=False,
        ).encode()
        media = b"application/json"
    else:
        body = (
            '<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8">'
            '<link rel="stylesheet" href="/static/app.css"><title>413</title></head><body>'
            f'<main><h1>文件太大</h1><p>{zh}。</p><p lang="en">{en}.</p>'
            '<p><a href="/">首页 / Home</a></p></main></body></html>'
        ).encode()
        media = b"text/html; charset=utf-8"
    headers = [
        (b"content-type", media),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *HEADERS,
        (b"content-security-policy", CSP.encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
