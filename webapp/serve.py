"""``foodtrace serve``: registered with the core's CLI through the ``foodtrace.cli`` entry point."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo district first if the database is empty.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (default TRACE_WORKERS, 1)."),
    ] = None,
) -> None:
    """Migrate if needed and start the server. Plain serve never loads demo data."""
    import os

    import uvicorn

    from foodtrace.cli import is_empty, load_demo_into, prepare
    from foodtrace.config import Settings
    from foodtrace.logs import log_config
    from webapp.main import create_app

    settings = Settings()
    workers = workers or settings.workers
    if "public_base_url" not in settings.model_fields_set:
        # A local run: the QR codes point at this server. Any real installation sets
        # TRACE_PUBLIC_BASE_URL, since the address a server listens on is rarely public.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        settings = settings.model_copy(update={"public_base_url": f"http://{shown}:{port}"})
    engine = prepare(settings)
    _refuse_what_cannot_start(settings, engine)
    if demo:
        if is_empty(engine):
            load_demo_into(engine)
        else:
            typer.echo("the database is not empty: demo not loaded", err=True)
    # on stderr: stdout carries the server's log, one JSON object a line with TRACE_LOG_FORMAT=json
    typer.echo(f"serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)", err=True)
    typer.echo(f"QR codes point to {settings.public_base_url} (TRACE_PUBLIC_BASE_URL)", err=True)
    # uvicorn would believe X-Forwarded-For from 127.0.0.1 (its default): the app believes it
    # from TRACE_TRUSTED_PROXIES only (webapp.main), so uvicorn's own is off.
    options: dict[str, Any] = {"proxy_headers": False}
    if (cfg := log_config(settings.log_format)) is not None:
        options["log_config"] = cfg
    if workers == 1:
        uvicorn.run(create_app(settings, engine=engine), host=host, port=port, **options)
        return
    # Each worker process builds its app from the environment (uvicorn imports the factory
    # there), so what was decided here travels as an environment variable. The schema is at
    # head already (prepare above), so no worker migrates.
    engine.dispose()
    os.environ["TRACE_PUBLIC_BASE_URL"] = settings.public_base_url
    uvicorn.run(
        "webapp.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=20,
        **options,
    )


def _refuse_what_cannot_start(settings, engine) -> None:  # type: ignore[no-untyped-def]
    """The start-up checks of the app, with a plain message and exit code 2 instead of a trace."""
    from foodtrace.db import read_session
    from foodtrace.ledger.checkpoints import (
        MissingKeyError,
        RolledBackError,
        check_not_behind_the_signer,
        open_signer,
    )

    with read_session(engine) as session:
        try:
            open_signer(session=session, key_file=settings.signing_key_file)
            check_not_behind_the_signer(session=session, key_file=settings.signing_key_file)
        except (MissingKeyError, RolledBackError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
