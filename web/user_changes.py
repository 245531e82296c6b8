"""The pages' side of switching a user off or on and changing a role (the enterprise
admin's users page and the platform admin's page): one form, one answer, in the user's
language."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlmodel import Session

from foodtrace.accounts.service import change_user
from foodtrace.clock import Clock
from foodtrace.errors import Conflict, NotFound, RecordError
from web.i18n import describe_problem, translations
from web.web import request_locale

ACTIONS = {"disable": {"active": False}, "enable": {"active": True}}


@dataclass(frozen=True)
class Outcome:
    """What the page says after the form: a notice, or an error with its status."""

    notice: str | None = None
    error: str | None = None
    status_code: int = 200


def change_user_in(
    *,
    session: Session,
    request: Request,
    clock: Clock,
    actor: str,
    username: str,
    form: dict[str, str],
    enterprise_id: int | None,
) -> Outcome:
    """Apply the posted change in ``session``'s transaction, in a savepoint: a refused
    change rolls back to it and writes nothing; the caller's transaction commits."""
    locale = request_locale(request)
    t = translations(locale)
    action = form.get("action", "")
    if action == "role":
        change: dict[str, object] = {"role": form.get("role", "")}
    elif action in ACTIONS:
        change = dict(ACTIONS[action])
    else:
        return Outcome(error=t.gettext("Choose what to change."), status_code=422)
    try:
        with session.begin_nested():
            change_user(
                session=session,
                username=username.strip(),
                actor=actor,
                now=clock.now(),
                enterprise_id=enterprise_id,
                **change,  # type: ignore[arg-type]
            )
    except NotFound:
        return Outcome(
            error=t.gettext("No user %(name)s here.") % {"name": username}, status_code=404
        )
    except Conflict:
        return Outcome(
            error=t.gettext("%(name)s is the last active admin: make another user admin first.")
            % {"name": username},
            status_code=409,
        )
    except RecordError as exc:
        text = "; ".join(
            describe_problem({"type": p.type, "msg": p.msg, "ctx": p.ctx}, locale)
            for p in exc.problems
        )
        return Outcome(error=text, status_code=422)
    notices = {
        "disable": t.gettext("User %(name)s disabled: their sessions and tokens have ended."),
        "enable": t.gettext("User %(name)s enabled."),
        "role": t.gettext("Role of %(name)s changed."),
    }
    return Outcome(notice=notices[action] % {"name": username})
