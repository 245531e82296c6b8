"""``POST /api/v1/auth/token``: the OAuth2 password flow, handing out bearer tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from foodtrace.accounts.service import authenticate, issue_token
from schemas.api import TokenPublic
from webapp.deps import ClockDep, SettingsDep, WriteSessionDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenPublic)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: WriteSessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TokenPublic:
    """Exchange a username and password for a bearer token."""
    user = authenticate(session=session, username=form.username, password=form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    token = issue_token(session=session, user=user, now=clock.now(), ttl=ttl)
    return TokenPublic(access_token=token, expires_in=int(ttl.total_seconds()))
