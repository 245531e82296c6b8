"""``foodtrace serve``: registered with the core's CLI through the ``foodtrace.cli`` entry point."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo district first if the database is empty.")
    ] = False,
) -> None:
    """Migrate if needed and start the server. Plain serve never loads demo data."""
    import uvicorn

    from foodtrace.cli import is_empty, load_demo_into, prepare
    from foodtrace.config import Settings
    from webapp.main import create_app

    settings = Settings()
    engine = prepare(settings)
    if demo:
        if is_empty(engine):
            load_demo_into(engine)
        else:
            typer.echo("the database is not empty: demo not loaded", err=True)
    typer.echo(f"serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(settings, engine=engine), host=host, port=port)
