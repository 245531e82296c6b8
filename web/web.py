"""What every page needs: templates in the user's language, the cookie session, CSRF.

A page is authenticated by the ``ft_session`` cookie, which carries an opaque
token stored hashed like any bearer token (so logging out or a password reset
ends it). Every form posted with that cookie carries a CSRF token derived from
the session token (HMAC-SHA256), checked before anything else; a cross-site
page cannot read the cookie and so cannot forge it; a post whose ``Origin`` is another
site is refused as well. The login form, before any session, carries a random token that
is also in the ``ft_login`` cookie (double submit), so another site cannot sign a browser
in to an account of its choosing (login CSRF). Bearer-token API calls do not use the
cookie and are not subject to CSRF.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from foodtrace.accounts.models import Authority, Enterprise
from foodtrace.accounts.service import ENTERPRISE_ROLES, Principal, Role, resolve_token
from foodtrace.clock import CST
from foodtrace.db import FoodtraceSession
from web.deps import EngineDep, EnterpriseScope, mark_authenticated
from web.i18n import LOCALES, describe_problem, pick_locale, translations
from web.values import say

SESSION_COOKIE = "ft_session"
LOGIN_COOKIE = "ft_login"
"""The login form's pre-session CSRF token (double submit: cookie and form field)."""
LANG_COOKIE = "lang"
STATIC_DIR = Path(__file__).parent / "static"
"""The site's scripts, styles and icon (served at /static)."""
TEMPLATE_DIR = Path(__file__).parent / "templates"
"""The shared templates: the base layout, the message page and the partials both portals use."""


def _local_time(value: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An RFC 3339 UTC instant shown in China Standard Time."""
    if not value:
        return ""
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return instant.astimezone(CST).strftime(fmt)


def _environment(dirs: tuple[Path, ...], locale: str) -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in dirs]),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["local_time"] = _local_time
    env.filters["short_hash"] = lambda h: (h or "")[:12]
    env.filters["urlquote"] = lambda s: quote(str(s), safe="")
    gettext = translations(locale).gettext
    # a record's one-line summary, its stored codes in words (web/values.py)
    env.filters["say"] = lambda summary, names=None: say(summary or "", gettext, names)
    env.globals["LOCALES"] = LOCALES
    return env


@cache
def _environments(dirs: tuple[Path, ...]) -> dict[str, Environment]:
    # once per set of directories: an environment keeps the templates it compiled
    return {locale: _environment(dirs, locale) for locale in LOCALES}


class Templates:
    """The pages' templates, one environment per language: the shared ones first, then the
    portals' directories, which the composition root names (``app.state.templates``); a
    portal's template may extend or include a shared one."""

    def __init__(self, *dirs: Path) -> None:
        self.dirs = (TEMPLATE_DIR, *dirs)
        self.environments = _environments(self.dirs)


def _templates(request: Request) -> Templates:
    """The app's templates (an app without portals has the shared ones only)."""
    found = getattr(request.app.state, "templates", None)
    return found if found is not None else Templates()


def request_locale(request: Request) -> str:
    return pick_locale(request.cookies.get(LANG_COOKIE))


@dataclass
class WebUser:
    """The signed-in user of a page, with what the header shows."""

    principal: Principal
    token: str
    display: str
    organisation: str | None

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"foodtrace csrf", hashlib.sha256).hexdigest()


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def optional_web_user(request: Request, engine: EngineDep) -> WebUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    clock = request.app.state.clock
    with FoodtraceSession(engine) as session:
        principal = resolve_token(session=session, token=token, now=clock.now())
        if principal is None:
            return None
        mark_authenticated(request)
        org = None
        if principal.enterprise_id:
            ent = session.get(Enterprise, principal.enterprise_id)
            org = ent.name if ent else None
        elif principal.authority_id:
            auth = session.get(Authority, principal.authority_id)
            org = auth.name if auth else None
    return WebUser(principal, token, principal.display_name or principal.username, org)


def web_user(
    request: Request, user: Annotated[WebUser | None, Depends(optional_web_user)]
) -> WebUser:
    if user is None:
        raise LoginRequired(
            str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        )
    return user


WebUserDep = Annotated[WebUser, Depends(web_user)]
OptionalWebUserDep = Annotated[WebUser | None, Depends(optional_web_user)]


def page_enterprise_user(user: WebUserDep) -> tuple[WebUser, EnterpriseScope]:
    p = user.principal
    if p.role not in ENTERPRISE_ROLES or p.enterprise_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="for enterprise users only")
    return user, EnterpriseScope(p, p.enterprise_id)


PageEnterpriseUser = Annotated[tuple[WebUser, EnterpriseScope], Depends(page_enterprise_user)]


def page_enterprise_admin(pair: PageEnterpriseUser) -> tuple[WebUser, EnterpriseScope]:
    if pair[0].principal.role is not Role.ENTERPRISE_ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="for the enterprise's admin only")
    return pair


PageEnterpriseAdmin = Annotated[tuple[WebUser, EnterpriseScope], Depends(page_enterprise_admin)]


def page_platform_admin(user: WebUserDep) -> WebUser:
    if user.principal.role is not Role.PLATFORM_ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="for the platform admin only")
    return user


PagePlatformAdmin = Annotated[WebUser, Depends(page_platform_admin)]


def secure_cookie(request: Request) -> bool:
    """Whether a cookie set in answer to ``request`` is marked Secure: always with
    TRACE_SECURE_COOKIES (behind a TLS proxy the request itself is plain http), else when
    the request came over HTTPS."""
    return bool(request.app.state.settings.secure_cookies) or request.url.scheme == "https"


def same_origin(request: Request) -> bool:
    """False for a request the browser says another site sent (``Sec-Fetch-Site:
    cross-site``, or an ``Origin`` that is neither this host nor TRACE_PUBLIC_BASE_URL's).

    A request without ``Origin`` (an older browser, a script) passes: the CSRF token
    still guards it."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    allowed = {
        request.headers.get("host", "").lower(),
        urlsplit(request.app.state.settings.public_base_url).netloc.lower(),
    }
    return parts.scheme in ("http", "https") and parts.netloc.lower() in allowed - {""}


async def check_csrf(request: Request, user: WebUserDep) -> WebUser:
    """Refuse a cookie-authenticated form post whose CSRF token is missing or wrong, or that
    another site's page sent."""
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a form from another site")
    form = await request.form()
    sent = str(form.get("csrf_token", ""))
    if not hmac.compare_digest(sent, user.csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="CSRF token missing or wrong")
    return user


CsrfUser = Annotated[WebUser, Depends(check_csrf)]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: WebUser | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a template in the request's language."""
    locale = request_locale(request)
    env = _templates(request).environments[locale]
    ctx = {
        "request": request,
        "user": user,
        "locale": locale,
        "path": request.url.path,
        # where the language switch comes back to: the same page with the same query
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "now_local": datetime.now(UTC).astimezone(CST),
        "problem_text": lambda p: describe_problem(p, locale),
        "open_recalls": lambda: _open_recalls(request, user),
        **(context or {}),
    }
    return HTMLResponse(env.get_template(template).render(ctx), status_code=status_code)


def _open_recalls(request: Request, user: WebUser | None) -> int:
    """How many cases wait for the signed-in enterprise's recall actions (the 召回 tab's
    badge); read only by the pages that show it."""

    from foodtrace.accounts.models import Enterprise
    from foodtrace.cases.service import open_recalls

    eid = user.principal.enterprise_id if user is not None else None
    if eid is None:
        return 0
    with FoodtraceSession(request.app.state.engine) as session:
        ent = session.get(Enterprise, eid)
        return len(open_recalls(session, ent)) if ent is not None else 0


def attachment(stem: str, ext: str, now: datetime) -> str:
    """A download's Content-Disposition naming what it is and when, e.g.
    ``PJ-D05-追溯-2026-12-07.csv`` (RFC 6266: ``filename*`` in UTF-8, and an ASCII
    ``filename`` for clients that lack it)."""
    from urllib.parse import quote

    name = f"{stem}-{now.astimezone(CST).date().isoformat()}.{ext}"
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "-._") else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
