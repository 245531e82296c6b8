"""The regulator's jurisdiction, written once: which enterprises a regulator may read, and the
log of what they read there.

Every route of the regulator's portal takes one of the dependencies below, and reaches the
enterprises of the jurisdiction through the :class:`Jurisdiction` it gives. The jurisdiction
carries the request's read log (``regulator_view.reads``), so a handler cannot read an
enterprise's records without holding the log their reads go to (``tests/test_jurisdiction.py``
walks the routes to keep it so, and forbids ``covers`` anywhere else in this package).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Authority, Enterprise
from foodtrace.accounts.service import Principal, Role, covers
from foodtrace.db import FoodtraceSession, single_read_engine
from foodtrace.errors import NotFound
from regulator_view.reads import RegulatorReads, RegulatorReadsDep
from web.deps import CurrentPrincipal, CurrentRegulator, EngineDep, SessionDep
from web.web import WebUserDep


@dataclass(frozen=True)
class Jurisdiction:
    """A regulator, the authority they act for, and the log of what they read.

    The jurisdiction is the enterprises whose region the authority covers; the
    records of any other are not shown, and asking for one answers 404 as for
    an enterprise that does not exist (no existence leak).
    """

    principal: Principal
    authority: Authority
    reads: RegulatorReads

    def covers(self, enterprise: Enterprise) -> bool:
        """Whether the enterprise lies in the jurisdiction (its records may be read)."""
        return covers(self.authority, enterprise.region_code)

    def enterprises(self, session: Session) -> list[Enterprise]:
        """The enterprises in the jurisdiction, by name."""
        rows = session.execute(select(Enterprise).order_by(Enterprise.name)).scalars()
        return [e for e in rows if self.covers(e)]

    def enterprise(self, session: Session, credit_code: str) -> Enterprise:
        """The enterprise of ``credit_code`` if it lies in the jurisdiction; ``NotFound``
        (404) for any other, in the same words as for one that does not exist."""
        ent = session.execute(
            select(Enterprise).where(Enterprise.credit_code == credit_code.upper())
        ).scalar_one_or_none()
        if ent is None or not self.covers(ent):
            raise NotFound(f"no enterprise {credit_code} in your jurisdiction")
        return ent

    def read(self, enterprise_ids: Iterable[int], what: str) -> None:
        """Note that the regulator read these enterprises' records (``what``: the view); the
        log is written when the handler returns or fails (``RegulatorReads``)."""
        self.reads.read(self, enterprise_ids, what)


def jurisdiction(regulator: CurrentRegulator, reads: RegulatorReadsDep) -> Jurisdiction:
    """The API caller's jurisdiction: 401 without credentials, 403 for anyone but a regulator."""
    return Jurisdiction(regulator.principal, regulator.authority, reads)


def optional_jurisdiction(
    principal: CurrentPrincipal, session: SessionDep, reads: RegulatorReadsDep
) -> Jurisdiction | None:
    """The API caller's jurisdiction if a regulator calls; None for any other user (a route
    that enterprise users may call too, on their own records)."""
    if principal.role is not Role.REGULATOR or principal.authority_id is None:
        return None
    authority = session.get(Authority, principal.authority_id)
    assert authority is not None  # a foreign key
    return Jurisdiction(principal, authority, reads)


def page_jurisdiction(
    user: WebUserDep, engine: EngineDep, reads: RegulatorReadsDep
) -> Jurisdiction:
    """The signed-in page user's jurisdiction; 403 for anyone but a regulator.

    The authority is read in a session of its own (one SELECT), as the user was: the
    pages open their own sessions where they need them."""
    principal = user.principal
    if principal.role is not Role.REGULATOR or principal.authority_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    with FoodtraceSession(single_read_engine(engine)) as session:
        authority = session.get(Authority, principal.authority_id)
    assert authority is not None  # a foreign key
    return Jurisdiction(principal, authority, reads)


JurisdictionDep = Annotated[Jurisdiction, Depends(jurisdiction)]
OptionalJurisdictionDep = Annotated[Jurisdiction | None, Depends(optional_jurisdiction)]
PageJurisdictionDep = Annotated[Jurisdiction, Depends(page_jurisdiction)]
JURISDICTIONS = (jurisdiction, optional_jurisdiction, page_jurisdiction)
"""The dependencies that give a jurisdiction (one of them is in every regulator route)."""


def regulated_enterprise(
    jurisdiction: JurisdictionDep,
    session: SessionDep,
    credit_code: Annotated[str, Path(min_length=18, max_length=18)],
) -> Enterprise:
    """The enterprise of the path, in the regulator's jurisdiction; 404 for any other."""
    return jurisdiction.enterprise(session, credit_code)


RegulatedEnterprise = Annotated[Enterprise, Depends(regulated_enterprise)]
