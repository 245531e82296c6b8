"""The record-append routes' lean path: one hand-off to a worker thread per request.

A record route declared the FastAPI way (a sync endpoint taking the caller, a write
session and the clock as dependencies) costs five hand-offs between the event loop and
the thread pool per request: the token check, entering the write session, the endpoint,
checking its answer against the response model, leaving the session. Each is a wake-up
of another thread, and on a server bound to one core by its own Python they were most of
what an append cost besides the append itself (BENCHMARKS.md, "Missed targets").

:class:`RecordRoute` keeps the route as it was declared (the same endpoint, so the same
OpenAPI operation, dependencies and answers), and answers a well-formed request itself:
the body and the ``Idempotency-Key`` header checked by FastAPI's own functions, then the
token check, the append and the commit in **one** worker thread on one connection
(:func:`append_for_token`), and the answer serialised by the route's response field.
Anything else (no bearer token, a body or header FastAPI refuses, a token that is not an
enterprise user's) goes to the declared route, which answers it exactly as before: a
refused request costs a second pass, an accepted one never does. Nothing was written
when it is handed over (the lean transaction is rolled back first).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from sqlalchemy import Engine

from foodtrace.accounts.service import ENTERPRISE_ROLES, Principal, principal_of
from foodtrace.clock import Clock
from foodtrace.db import FoodtraceSession, write_engine
from foodtrace.records.service import Recorded, record
from schemas.records import RecordKind
from web.deps import mark_authenticated, oauth2_scheme
from web.public import recorded_public
from web.security import JSON_BODY

RECORD_KIND = "foodtrace_record_kind"
"""The attribute of a record route's endpoint naming the kind it records."""


def _ledger_of(principal: Principal | None) -> int | None:
    """The enterprise whose ledger ``principal`` writes; None unless an enterprise user."""
    if principal is None or principal.role not in ENTERPRISE_ROLES:
        return None
    return principal.enterprise_id


def append_for_token(
    *,
    engine: Engine,
    clock: Clock,
    token: str,
    kind: RecordKind,
    data: Any,
    idempotency_key: str | None,
) -> Recorded | None:
    """Check the bearer token and append the record to its enterprise's ledger, committed.

    None, with nothing written, when the token is not an enterprise user's (unknown,
    expired, revoked, or another role's): the caller answers that as the declared route
    does. The token is looked up on every call, never remembered: a revoked token
    fails on the next request.

    PostgreSQL: the lookup is the write transaction's first statement, on its
    connection. SQLite: a write transaction takes the database's write lock at its
    first statement, so the lookup reads first, outside it, and a request with a bad
    token never waits for (or holds) that lock.
    """
    now = clock.now()
    with FoodtraceSession(write_engine(engine)) as session:
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                principal = principal_of(conn, token, now)
        else:
            principal = principal_of(session.connection(), token, now)
        ledger_id = _ledger_of(principal)
        if principal is None or ledger_id is None:
            return None
        result = record(
            session=session,
            ledger_id=ledger_id,
            kind=kind,
            data=data,
            actor=principal.username,
            clock=clock,
            idempotency_key=idempotency_key,
        )
        session.commit()
    return result


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json"


class RecordRoute(APIRoute):
    """A record route answering well-formed requests on the lean path (module docstring)."""

    lean = True
    """False: every request goes to the declared route (the tests compare the two)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()
        kind: RecordKind = getattr(self.endpoint, RECORD_KIND)
        body_fields = self.dependant.body_params
        header_params = self.dependant.header_params
        assert [(p.name, p.alias) for p in header_params] == [
            ("idempotency_key", "Idempotency-Key")
        ]
        embed = self._embed_body_fields
        response_field = self.response_field
        assert response_field is not None
        assert self.status_code is not None
        created = self.status_code

        route = self

        async def handler(request: Request) -> Response:
            if not route.lean:
                return await declared(request)
            token = await oauth2_scheme(request)
            if not token or not _is_json(request.headers.get("content-type")):
                return await declared(request)
            mark_authenticated(request)
            body = await request.body()  # Request keeps it: the declared route reads it again
            parsed = request.scope.get(JSON_BODY)
            if parsed is not None and parsed[0] is body:  # parsed by the Guard already
                received = parsed[1]
            else:
                try:
                    received = json.loads(body)
                except ValueError:
                    return await declared(request)
            if request.headers.get("idempotency-key") is not None:
                headers, header_errors = request_params_to_args(header_params, request.headers)
            else:  # FastAPI's answer for the optional header left out, without asking it
                headers, header_errors = {"idempotency_key": None}, []
            values, body_errors = await request_body_to_args(
                body_fields=body_fields, received_body=received, embed_body_fields=embed
            )
            if header_errors or body_errors:
                return await declared(request)
            state = request.app.state
            result = await run_in_threadpool(
                append_for_token,
                engine=state.engine,
                clock=state.clock,
                token=token,
                kind=kind,
                data=values["data"],
                idempotency_key=headers.get("idempotency_key"),
            )
            if result is None:
                return await declared(request)
            # as the declared route answers: checked against the response model, then dumped
            answer, errors = response_field.validate(recorded_public(result), {}, loc=("response",))
            if errors:  # pragma: no cover - recorded_public builds the model itself
                raise ResponseValidationError(errors=errors, body=answer)
            content = response_field.serialize_json(answer)
            return Response(
                content=content,
                media_type="application/json",
                status_code=200 if result.replayed else created,
            )

        return handler
