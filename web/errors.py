"""The core's errors as HTTP answers: 422 naming fields, 404, 409, 403."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError

from foodtrace.canonical import CanonicalError
from foodtrace.errors import AccessDenied, Conflict, NotFound, RecordError

_NAMED = re.compile(r"^([a-z_]+)(?: or [a-z_]+)?: (.+)$", re.S)


def control_character_answer(scope: Any) -> JSONResponse | None:
    """The 422 for a URL whose path or query decodes to a control character, else None.

    Checked for every request by ``web.security.Guard`` (a pure ASGI middleware:
    ``@app.middleware("http")``, Starlette's ``BaseHTTPMiddleware``, runs every
    request's app in a task of its own and streams the response through a queue).
    """
    url = Request(scope).url
    target = unquote(url.path) + unquote(url.query)
    if not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in target):
        return None
    return JSONResponse(
        {
            "detail": [
                {
                    "loc": ["path"],
                    "msg": "control characters are not allowed in URLs",
                    "type": "control_character",
                }
            ]
        },
        status_code=422,
    )


def validation_problems(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The request's problems, each with loc, msg, type and ctx (the input left out)."""
    problems = []
    for e in exc.errors():
        loc = list(e.get("loc", ()))
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        named = _NAMED.match(msg)
        if named and loc == ["body"]:
            loc, msg = ["body", named.group(1)], named.group(2)
        ctx = {k: v for k, v in (e.get("ctx") or {}).items() if k != "error"}
        problems.append({"loc": loc, "msg": msg, "type": e.get("type", "invalid"), "ctx": ctx})
    return problems


def validation_answer(exc: RequestValidationError) -> JSONResponse:
    """The API's 422: FastAPI's own answer, without echoing the input back (it may be 1 MB).

    A model-level check names its field at the start of its message ("ended_at: …"): the
    field goes in ``loc`` too, as the core does (records.service.problems_from)."""
    detail = [
        {"loc": p["loc"], "msg": p["msg"], "type": p["type"]} for p in validation_problems(exc)
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def install(app: FastAPI) -> None:
    @app.exception_handler(RecordError)
    async def _record(_: Request, exc: RecordError) -> JSONResponse:
        detail = [{"loc": ["body", *p.loc], "msg": p.msg, "type": p.type} for p in exc.problems]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_answer(exc)

    @app.exception_handler(CanonicalError)
    async def _canonical(_: Request, exc: CanonicalError) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": str(exc), "type": "canonical"}]}, status_code=422
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced for the same unique key (a user name, an upload); the
        # loser's transaction was rolled back and nothing of it was written.
        return JSONResponse(
            {"detail": "conflicts with a record written at the same moment; retry"},
            status_code=409,
        )

    @app.exception_handler(OperationalError)
    async def _busy(_: Request, exc: OperationalError) -> JSONResponse:
        # SQLite's write lock was not free within the busy timeout: nothing was
        # written, and the request can simply be sent again.
        if "database is locked" in str(exc.orig):
            return JSONResponse(
                {"detail": "the database is busy; nothing was written, retry shortly"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        raise exc

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(AccessDenied)
    async def _denied(_: Request, exc: AccessDenied) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)
