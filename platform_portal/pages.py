"""Pages every visitor shares: the start page, logging in and out, the language switch."""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from foodtrace.accounts.service import ENTERPRISE_ROLES, LoginThrottled, Role, revoke_token
from platform_portal.auth import sign_in
from web.deps import ClockDep, EngineDep, SettingsDep, WriteSessionDep
from web.i18n import LOCALES, translations
from web.web import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    STATIC_DIR,
    CsrfUser,
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
    body = (STATIC_DIR / "favicon.svg").read_bytes()
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
def logout(user: CsrfUser, session: WriteSessionDep) -> Response:
    revoke_token(session=session, token=user.token)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def set_language(code: str, next: str | None = None) -> Response:  # noqa: A002
    response = redirect(_safe_next(next) or "/")
    if code in LOCALES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response
