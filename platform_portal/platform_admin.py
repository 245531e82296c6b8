"""The platform admin's API: register enterprises and authorities, create users, reset passwords."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from foodtrace.accounts.models import Enterprise
from foodtrace.accounts.service import add_user, change_user, create_authority, set_password
from foodtrace.ledger.models import Ledger
from foodtrace.records.service import register_enterprise
from schemas.api import (
    AuthorityCreate,
    AuthorityPublic,
    EnterprisesPublic,
    PasswordReset,
    RecordedPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from schemas.records import EnterpriseCreate
from web.deps import (
    ClockDep,
    CurrentPlatformAdmin,
    SessionDep,
    UsernamePath,
    WriteSessionDep,
)
from web.public import enterprise_public, recorded_public, user_public

router = APIRouter(prefix="/api/v1/admin", tags=["platform admin"])


@router.post("/enterprises", status_code=status.HTTP_201_CREATED, response_model=RecordedPublic)
def register(
    data: EnterpriseCreate, admin: CurrentPlatformAdmin, session: WriteSessionDep, clock: ClockDep
) -> RecordedPublic:
    """Register an enterprise: creates its ledger, whose first entry is the registration."""
    return recorded_public(
        register_enterprise(session=session, data=data, actor=admin.username, clock=clock)
    )


@router.get("/enterprises", response_model=EnterprisesPublic)
def enterprises(admin: CurrentPlatformAdmin, session: SessionDep) -> EnterprisesPublic:
    """Every registered enterprise (the registry: names and codes, not records)."""
    rows = session.execute(
        select(Enterprise, Ledger.size)
        .join(Ledger, Ledger.id == Enterprise.id)
        .order_by(Enterprise.id)
    ).all()
    data = [enterprise_public(e, size) for e, size in rows]
    return EnterprisesPublic(data=data, count=len(data))


@router.post("/authorities", status_code=status.HTTP_201_CREATED, response_model=AuthorityPublic)
def authority(
    data: AuthorityCreate, admin: CurrentPlatformAdmin, session: WriteSessionDep, clock: ClockDep
) -> AuthorityPublic:
    a = create_authority(
        session=session,
        credit_code=data.credit_code,
        name=data.name,
        region_codes=data.region_codes,
        now=clock.now(),
    )
    return AuthorityPublic(
        credit_code=a.credit_code, name=a.name, region_codes=a.region_codes.split()
    )


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
def user(
    data: UserCreate, admin: CurrentPlatformAdmin, session: WriteSessionDep, clock: ClockDep
) -> UserPublic:
    u = add_user(
        session=session,
        username=data.username,
        password=data.password,
        role=data.role,
        now=clock.now(),
        display_name=data.display_name,
        enterprise_credit_code=data.enterprise_credit_code,
        authority_credit_code=data.authority_credit_code,
    )
    return user_public(session, u)


@router.post("/users/{username}/password", status_code=status.HTTP_204_NO_CONTENT)
def reset_password(
    username: str, data: PasswordReset, admin: CurrentPlatformAdmin, session: WriteSessionDep
) -> None:
    """Set a new password; every token of the old one stops working."""
    set_password(session=session, username=username, password=data.password)


@router.patch(
    "/users/{username}",
    response_model=UserPublic,
    responses={
        404: {"description": "no such user"},
        409: {"description": "the last active admin of an enterprise or of the platform"},
    },
)
def change(
    username: UsernamePath,
    data: UserUpdate,
    admin: CurrentPlatformAdmin,
    session: WriteSessionDep,
    clock: ClockDep,
) -> UserPublic:
    """Disable or enable any user, or change their role within their kind; recorded.

    A disabled user's sessions and tokens stop at their next request (401). The last active
    admin of an enterprise, or of the platform, can be neither disabled nor demoted (409).
    """
    user = change_user(
        session=session,
        username=username,
        actor=admin.username,
        now=clock.now(),
        active=data.active,
        role=data.role,
    )
    return user_public(session, user)
