"""``POST /api/v1/auth/token``: the OAuth2 password flow, handing out bearer tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from foodtrace.accounts.service import (
    LoginThrottled,
    authenticate,
    check_login_throttle,
    issue_token,
    note_login,
)
from foodtrace.db import write_session
from schemas.api import TokenPublic
from webapp.deps import ClockDep, EngineDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def client_address(request: Request) -> str:
    """The caller's address, as the server sees it (behind a proxy, run uvicorn with
    --proxy-headers and --forwarded-allow-ips so that this is the client's)."""
    return request.client.host if request.client else "unknown"


@router.post("/token", response_model=TokenPublic)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    engine: EngineDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TokenPublic:
    """Exchange a username and password for a bearer token."""
    # The password is checked outside any write transaction: on SQLite a write
    # transaction holds the database's write lock, and argon2 takes a while.
    address = client_address(request)
    try:
        check_login_throttle(
            session=session, username=form.username, address=address, now=clock.now()
        )
    except LoginThrottled as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=str(exc),
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    user = authenticate(session=session, username=form.username, password=form.password)
    session.rollback()
    if user is None:
        with write_session(engine) as ws:
            note_login(
                session=ws, username=form.username, address=address, now=clock.now(), ok=False
            )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    with write_session(engine) as ws:
        token = issue_token(session=ws, user=ws.merge(user), now=clock.now(), ttl=ttl)
        note_login(session=ws, username=user.username, address=address, now=clock.now(), ok=True)
    return TokenPublic(access_token=token, expires_in=int(ttl.total_seconds()))
