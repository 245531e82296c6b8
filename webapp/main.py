"""The composition root: builds the FastAPI app from each portal's router.

Nothing runs at import time; ``create_app`` takes its settings (and, for the
demo and tests, a clock), and the lifespan opens the database, migrates it and
fixes the platform name on first start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from enterprise_portal import routes as enterprise_portal
from foodtrace.accounts.service import init_platform
from foodtrace.clock import Clock, SystemClock
from foodtrace.config import Settings
from foodtrace.consumer import PublicProver
from foodtrace.db import (
    current_revision,
    head_revision,
    make_engine,
    migrate,
    not_ready,
    read_session,
    write_session,
)
from foodtrace.ledger.checkpoints import check_not_behind_the_signer, open_signer
from platform_portal import routes as platform_portal
from regulator_view import routes as regulator_view
from web import errors, pages
from web.body_limit import BodyLimit
from web.deps import VerifyCache
from web.security import Guard
from web.web import Templates
from webapp import checkpointer


def prepare_database(engine: Engine, settings: Settings, clock: Clock) -> None:
    """Migrate to the newest schema and fix the platform name on an empty database."""
    if current_revision(engine) != head_revision():
        migrate(engine)
    with write_session(engine) as session:
        init_platform(session=session, name=settings.platform_name, now=clock.now())


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, engine: Engine | None = None
) -> FastAPI:
    settings = settings or Settings()
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        app.state.engine = engine or make_engine(
            settings.database_url,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.pool_size,
        )
        prepare_database(app.state.engine, settings, clock)
        with read_session(app.state.engine) as session:
            app.state.signer = open_signer(session=session, key_file=settings.signing_key_file)
            check_not_behind_the_signer(session=session, key_file=settings.signing_key_file)
        app.state.prover = PublicProver(
            engine=app.state.engine, signer=app.state.signer, clock=clock
        )
        task = None
        if settings.checkpoint_interval_s > 0:
            task = asyncio.create_task(
                checkpointer.run(
                    app.state.engine, app.state.signer, clock, settings.checkpoint_interval_s
                )
            )
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if own_engine:
            app.state.engine.dispose()

    app = FastAPI(
        title="foodtrace",
        summary="Food-production traceability records in per-enterprise hash-chained ledgers",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.verify_cache = VerifyCache(settings.verify_cache_s)
    app.state.templates = Templates(
        platform_portal.TEMPLATES, enterprise_portal.TEMPLATES, regulator_view.TEMPLATES
    )
    errors.install(app)
    app.add_middleware(Guard)
    if settings.trusted_proxy_list:
        # X-Forwarded-For and -Proto believed from these peers only (outermost, so that the
        # Guard and the sign-in throttle see the client and the scheme the proxy saw).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    # outermost: a body over its route's limit is refused before anything reads it
    app.add_middleware(
        BodyLimit, default=settings.body_max_bytes, upload=settings.upload_body_max_bytes
    )
    pages.install(app)  # after errors.install: a page's error answered as a page
    app.include_router(platform_portal.router)
    app.include_router(enterprise_portal.router)
    app.include_router(regulator_view.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive (the container's HEALTHCHECK); says nothing of the database."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        responses={503: {"description": "not ready: `reason` says why"}},
    )
    def readyz() -> JSONResponse:
        """Ready for traffic: the database answers and is at the code's newest migration."""
        reason = not_ready(app.state.engine)
        if reason is not None:
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app
