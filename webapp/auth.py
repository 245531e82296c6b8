"""``POST /api/v1/auth/token``: the OAuth2 password flow, handing out bearer tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from foodtrace.accounts.service import authenticate, issue_token
from foodtrace.db import write_session
from schemas.api import TokenPublic
from webapp.deps import ClockDep, EngineDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenPublic)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    engine: EngineDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TokenPublic:
    """Exchange a username and password for a bearer token."""
    # The password is checked outside any write transaction: on SQLite a write
    # transaction holds the database's write lock, and argon2 takes a while.
    user = authenticate(session=session, username=form.username, password=form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    with write_session(engine) as ws:
        token = issue_token(session=ws, user=ws.merge(user), now=clock.now(), ttl=ttl)
    return TokenPublic(access_token=token, expires_in=int(ttl.total_seconds()))
