"""What the site's pages share at the level of the app: the static files, and the answers
to errors that a browser gets as a page in its language (an API client keeps JSON)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from foodtrace.errors import NotFound
from web.errors import validation_answer, validation_problems
from web.i18n import describe_problem, translations
from web.web import STATIC_DIR, LoginRequired, redirect, render, request_locale


def _wants_json(request: Request) -> bool:
    """An API client (its paths, or a request that asks for JSON, not HTML) gets JSON; a
    browser asking for a page gets a page in its language."""
    if request.url.path.startswith(("/api/", "/.well-known/")):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def install(app: FastAPI) -> None:
    """Static files, and HTML answers for page errors (installed after ``errors.install``,
    whose JSON answers to a validation error and to ``NotFound`` these replace)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return redirect(f"/login?next={quote(exc.next_url, safe='')}")

    from fastapi.exception_handlers import http_exception_handler

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # A page's address with a parameter out of range (/ledger?page=99…9): a page that
        # names the parameter; the API (and every form post) keeps its JSON answer.
        path = request.url.path
        if path.startswith(("/api/", "/.well-known/")) or request.method not in ("GET", "HEAD"):
            return validation_answer(exc)
        locale = request_locale(request)
        t = translations(locale)
        lines = [
            f"{p['loc'][-1] if p['loc'] else ''}: {describe_problem(p, locale)}"
            for p in validation_problems(exc)
        ]
        return render(
            request,
            "message.html",
            {
                "title": t.gettext("The address is not valid"),
                "message": "; ".join(lines),
                "tone": "bad",
            },
            status_code=422,
        )

    @app.exception_handler(NotFound)  # the core's "no such lot / case": a page for a page
    async def _not_found(request: Request, exc: NotFound) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        t = translations(request_locale(request))
        return render(
            request,
            "message.html",
            {"title": t.gettext("Not found"), "message": str(exc), "tone": "bad"},
            status_code=404,
        )

    @app.exception_handler(StarletteHTTPException)  # the router's 404 for an unknown page too
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return await http_exception_handler(request, exc)
        t = translations(request_locale(request))
        titles = {403: t.gettext("Not allowed"), 404: t.gettext("Not found")}
        messages = {
            403: t.gettext("Your account may not open this page."),
            404: t.gettext("There is nothing here."),
        }
        return render(
            request,
            "message.html",
            {
                "title": titles.get(exc.status_code, str(exc.status_code)),
                "message": messages.get(exc.status_code, str(exc.detail)),
                "tone": "bad",
            },
            status_code=exc.status_code,
        )
