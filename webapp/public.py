"""Turning the core's results into the API's ``*Public`` shapes."""

from __future__ import annotations

from sqlmodel import Session

from foodtrace.accounts.models import Enterprise, User
from foodtrace.accounts.service import user_codes
from foodtrace.records.service import Recorded
from foodtrace.verify import Report
from schemas.api import (
    EnterprisePublic,
    ProblemPublic,
    RecordedPublic,
    UserPublic,
    VerifyProblemPublic,
    VerifyPublic,
)


def recorded_public(r: Recorded) -> RecordedPublic:
    return RecordedPublic(
        seq=r.seq,
        kind=r.kind,
        hash=r.hash,
        prev_hash=r.prev_hash,
        recorded_at=r.recorded_at,
        event_time=r.event_time,
        body=r.body,
        warnings=[ProblemPublic(loc=list(w.loc), msg=w.msg, type=w.type) for w in r.warnings],
        replayed=r.replayed,
    )


def verify_public(report: Report, *, limit: int = 100) -> VerifyPublic:
    first = report.first
    ordered = sorted(report.problems, key=lambda p: (p.seq is None, p.seq or 0))
    return VerifyPublic(
        credit_code=report.credit_code,
        ok=report.ok,
        size=report.size,
        entries_checked=report.entries_checked,
        first_bad_seq=first.seq if first else None,
        problems=[
            VerifyProblemPublic(seq=p.seq, check=p.check, message=p.message)
            for p in ordered[:limit]
        ],
    )


def enterprise_public(e: Enterprise, ledger_size: int) -> EnterprisePublic:
    return EnterprisePublic(
        credit_code=e.credit_code,
        name=e.name,
        kind=e.kind,
        region_code=e.region_code,
        licence_no=e.licence_no,
        address=e.address,
        contact=e.contact,
        ledger_size=ledger_size,
    )


def user_public(session: Session, u: User) -> UserPublic:
    ent, auth = user_codes(session=session, user=u)
    return UserPublic(
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        enterprise_credit_code=ent,
        authority_credit_code=auth,
    )
