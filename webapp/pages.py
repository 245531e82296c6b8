"""Pages every visitor shares: the start page, logging in and out, the language switch."""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from foodtrace.accounts.service import ENTERPRISE_ROLES, LoginThrottled, Role, revoke_token
from foodtrace.db import FoodtraceSession
from foodtrace.errors import NotFound
from webapp.auth import sign_in
from webapp.deps import ClockDep, EngineDep, SettingsDep
from webapp.errors import validation_answer, validation_problems
from webapp.i18n import LOCALES, describe_problem, translations
from webapp.web import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CsrfUser,
    LoginRequired,
    OptionalWebUserDep,
    redirect,
    render,
    request_locale,
    same_origin,
    secure_cookie,
)

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE_AGE = 24 * 3600  # a login form left open for a day still works
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


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


def _login_form(request: Request, status_code: int = 200, **context: object) -> Response:
    """The login page with its pre-session CSRF token, in a cookie and in the form (double
    submit): a cross-site page can neither read the cookie nor set it for this site."""
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not _TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(32)
    response = render(
        request, "login.html", {"login_csrf": token, **context}, status_code=status_code
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_COOKIE_AGE,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request),
        path="/login",
    )
    response.headers["Cache-Control"] = "no-store"  # the token is this browser's only
    return response


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page says: the site's icon, not a 404."""
    body = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()
    return Response(
        body, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/login")
def login_page(request: Request, user: OptionalWebUserDep, next: str | None = None) -> Response:  # noqa: A002
    if user is not None:
        return redirect(_safe_next(next) or home_of(user.principal.role))
    return _login_form(request, next=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    engine: EngineDep,
    clock: ClockDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=2000)] = "",  # noqa: A002
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    t = translations(request_locale(request))
    again = {"username": username, "next": _safe_next(next)}
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if (
        not same_origin(request)
        or not cookie
        or not hmac.compare_digest(csrf_token.encode(), cookie.encode())
    ):
        # Login CSRF: a page elsewhere must not sign this browser in (as its own account).
        return _login_form(
            request,
            status_code=403,
            error=t.gettext(
                "The sign-in form had expired or came from another site. Sign in again."
            ),
            **again,
        )
    try:
        signed_in = sign_in(
            request=request,
            engine=engine,
            clock=clock,
            settings=settings,
            username=username.strip(),
            password=password,
            token_name="web",
        )
    except LoginThrottled as exc:
        response = _login_form(
            request,
            status_code=429,
            error=t.gettext(
                "Too many failed sign-ins from your address. Try again in %(seconds)s seconds."
            )
            % {"seconds": exc.retry_after},
            **again,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if signed_in is None:
        return _login_form(
            request, status_code=401, error=t.gettext("Wrong user name or password."), **again
        )
    user, token = signed_in
    response = redirect(_safe_next(next) or home_of(Role(user.role)))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.token_ttl_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request),
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/logout")
def logout(user: CsrfUser, engine: EngineDep) -> Response:
    with FoodtraceSession(engine) as session:
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


def _wants_json(request: Request) -> bool:
    """An API client (its paths, or a request that asks for JSON, not HTML) gets JSON; a
    browser asking for a page gets a page in its language."""
    if request.url.path.startswith(("/api/", "/.well-known/")):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


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
