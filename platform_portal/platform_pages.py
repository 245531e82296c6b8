"""The platform admin's pages: register enterprises (with their first admin), reset passwords.

A form's writes run in the request's write session (``WriteSessionDep``, committed when the
handler returns), inside a savepoint: a refused form rolls back to it, writes nothing, and
the page that names the problem is read in the same transaction."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.accounts.service import Role, add_user, set_password, user_changes
from foodtrace.errors import Conflict, NotFound, RecordError
from foodtrace.ledger.models import Ledger
from foodtrace.records.service import register_enterprise
from web.deps import ClockDep, SessionDep, WriteSessionDep
from web.i18n import describe_problem, translations
from web.public import enterprise_public
from web.user_changes import change_user_in
from web.web import CsrfUser, PagePlatformAdmin, render, request_locale

router = APIRouter(include_in_schema=False)


def _page(request: Request, user, session: Session, **extra) -> Response:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(Enterprise, Ledger.size)
        .join(Ledger, Ledger.id == Enterprise.id)
        .order_by(Enterprise.name)
    ).all()
    status_code = extra.pop("status_code", 200)
    changes = user_changes(session=session, user_ids=None, limit=50)
    return render(
        request,
        "platform.html",
        {
            "enterprises": [enterprise_public(e, n) for e, n in rows],
            "values": {},
            "changes": changes,
            **extra,
        },
        user=user,
        status_code=status_code,
    )


@router.get("/platform")
def platform(request: Request, user: PagePlatformAdmin, session: SessionDep) -> Response:
    return _page(request, user, session)


@router.post("/platform/enterprises")
async def register(
    request: Request,
    user: PagePlatformAdmin,
    _csrf: CsrfUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    form = {k: v.strip() for k, v in (await request.form()).items() if isinstance(v, str)}
    locale = request_locale(request)
    data = {
        k: form[k]
        for k in (
            "credit_code",
            "name",
            "kind",
            "licence_no",
            "workshop_registration_no",
            "region_code",
            "address",
            "contact",
        )
        if form.get(k)
    }
    try:
        with session.begin_nested():  # the enterprise and its admin, or neither
            register_enterprise(
                session=session, data=data, actor=user.principal.username, clock=clock
            )
            add_user(
                session=session,
                username=form.get("admin_username", ""),
                password=form.get("admin_password", ""),
                role=Role.ENTERPRISE_ADMIN,
                now=clock.now(),
                enterprise_credit_code=data.get("credit_code"),
            )
    except RecordError as exc:
        errors = [
            f"{'.'.join(map(str, p.loc))}: "
            + describe_problem({"type": p.type, "msg": p.msg, "ctx": p.ctx}, locale)
            for p in exc.problems
        ]
        return _page(request, user, session, errors=errors, values=form, status_code=422)
    except (Conflict, NotFound) as exc:
        return _page(request, user, session, errors=[str(exc)], values=form, status_code=409)
    t = translations(locale)
    return _page(request, user, session, notice=t.gettext("Enterprise registered."))


@router.post("/platform/password")
async def reset(
    request: Request, user: PagePlatformAdmin, _csrf: CsrfUser, session: WriteSessionDep
) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    t = translations(request_locale(request))
    try:
        with session.begin_nested():
            set_password(
                session=session,
                username=form.get("username", "").strip(),
                password=form.get("password", ""),
            )
    except (RecordError, NotFound) as exc:
        return _page(request, user, session, errors=[str(exc)], status_code=422)
    return _page(request, user, session, notice=t.gettext("Password reset."))


@router.post("/platform/users")
async def change(
    request: Request,
    user: PagePlatformAdmin,
    _csrf: CsrfUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    """Disable, enable or change the role of any user."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    outcome = change_user_in(
        session=session,
        request=request,
        clock=clock,
        actor=user.principal.username,
        username=form.get("username", ""),
        form=form,
        enterprise_id=None,
    )
    if outcome.error:
        return _page(
            request, user, session, errors=[outcome.error], status_code=outcome.status_code
        )
    return _page(request, user, session, notice=outcome.notice)
