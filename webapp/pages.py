"""Pages every visitor shares: the start page, logging in and out, the language switch."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session

from foodtrace.accounts.service import (
    ENTERPRISE_ROLES,
    LoginThrottled,
    Role,
    authenticate,
    check_login_throttle,
    issue_token,
    note_login,
    revoke_token,
)
from foodtrace.db import write_session
from webapp.auth import client_address
from webapp.deps import ClockDep, EngineDep, SettingsDep
from webapp.errors import validation_answer, validation_problems
from webapp.i18n import LOCALES, describe_problem, translations
from webapp.web import (
    LANG_COOKIE,
    SESSION_COOKIE,
    CsrfUser,
    LoginRequired,
    OptionalWebUserDep,
    redirect,
    render,
    request_locale,
)

router = APIRouter(include_in_schema=False)


def home_of(role: Role) -> str:
    if role in ENTERPRISE_ROLES:
        return "/today"
    if role is Role.REGULATOR:
        return "/regulator"
    return "/platform"


def _safe_next(url: str | None) -> str | None:
    """Only a local path may follow a login (no open redirect)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return None
    return url


@router.get("/")
def index(request: Request, user: OptionalWebUserDep) -> Response:
    return render(request, "index.html", user=user)


@router.get("/login")
def login_page(request: Request, user: OptionalWebUserDep, next: str | None = None) -> Response:  # noqa: A002
    if user is not None:
        return redirect(_safe_next(next) or home_of(user.principal.role))
    return render(request, "login.html", {"next": _safe_next(next)})


@router.post("/login")
def login(
    request: Request,
    engine: EngineDep,
    clock: ClockDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=2000)] = "",  # noqa: A002
) -> Response:
    address = client_address(request)
    t = translations(request_locale(request))
    with Session(engine) as session:
        try:
            check_login_throttle(
                session=session, username=username.strip(), address=address, now=clock.now()
            )
        except LoginThrottled as exc:
            minutes = exc.retry_after // 60 + 1
            return render(
                request,
                "login.html",
                {
                    "error": t.gettext(
                        "Too many failed sign-ins. Try again in %(minutes)s minutes."
                    )
                    % {"minutes": minutes},
                    "username": username,
                    "next": _safe_next(next),
                },
                status_code=429,
            )
        user = authenticate(session=session, username=username.strip(), password=password)
        session.rollback()
        if user is None:
            with write_session(engine) as ws:
                note_login(
                    session=ws, username=username.strip(), address=address, now=clock.now(),
                    ok=False,
                )  # fmt: skip
            return render(
                request,
                "login.html",
                {
                    "error": t.gettext("Wrong user name or password."),
                    "username": username,
                    "next": _safe_next(next),
                },
                status_code=401,
            )
        ttl = timedelta(minutes=settings.token_ttl_minutes)
        role = Role(user.role)
    with write_session(engine) as ws:
        token = issue_token(session=ws, user=ws.merge(user), now=clock.now(), ttl=ttl, name="web")
        note_login(session=ws, username=user.username, address=address, now=clock.now(), ok=True)
    response = redirect(_safe_next(next) or home_of(role))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(user: CsrfUser, engine: EngineDep) -> Response:
    with Session(engine) as session:
        revoke_token(session=session, token=user.token)
        session.commit()
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def set_language(code: str, next: str | None = None) -> Response:  # noqa: A002
    response = redirect(_safe_next(next) or "/")
    if code in LOCALES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response


def install(app: FastAPI) -> None:
    """Static files, the shared pages, and HTML answers for page errors."""
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(router)

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

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/.well-known/"):
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
