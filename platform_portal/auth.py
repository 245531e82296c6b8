"""``POST /api/v1/auth/token``: the OAuth2 password flow, handing out bearer tokens; and the
sign-in both it and the login page use (throttled per address, see ``ThrottlePolicy``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import Engine

from foodtrace.accounts.models import User
from foodtrace.accounts.service import (
    LoginThrottled,
    ThrottlePolicy,
    authenticate,
    begin_login,
    issue_token,
    login_succeeded,
)
from foodtrace.clock import Clock
from foodtrace.config import Settings
from foodtrace.db import FoodtraceSession, write_session
from schemas.api import TokenPublic
from web.deps import ClockDep, EngineDep, SettingsDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def client_address(request: Request) -> str:
    """The caller's address: the TCP peer, or, when the peer is one of TRACE_TRUSTED_PROXIES,
    the client it names in X-Forwarded-For (``webapp.main`` installs uvicorn's
    ProxyHeadersMiddleware for those addresses only; ``foodtrace serve`` turns uvicorn's own,
    which trusts 127.0.0.1, off)."""
    return request.client.host if request.client else "unknown"


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        free_attempts=settings.login_free_attempts,
        address_free_attempts=settings.login_address_free_attempts,
        delay_s=settings.login_delay_s,
        max_delay_s=settings.login_max_delay_s,
    )


def sign_in(
    *,
    request: Request,
    engine: Engine,
    clock: Clock,
    settings: Settings,
    username: str,
    password: str,
    token_name: str,
) -> tuple[User, str] | None:
    """The user with these credentials and a new token of theirs, or None for wrong ones.

    Raises :class:`LoginThrottled` while the caller's address must wait. The attempt is
    counted before the password is checked, and the password checked outside any write
    transaction (on SQLite a write transaction holds the database's write lock, and argon2
    takes a while).
    """
    with write_session(engine) as ws:
        attempt = begin_login(
            session=ws,
            username=username,
            address=client_address(request),
            now=clock.now(),
            policy=throttle_policy(settings),
        )
    with FoodtraceSession(engine) as session:
        user = authenticate(session=session, username=username, password=password)
        if user is not None:
            session.expunge(user)  # loaded, kept for the write session below
        session.rollback()
    if user is None:
        return None
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    with write_session(engine) as ws:
        token = issue_token(
            session=ws, user=ws.merge(user), now=clock.now(), ttl=ttl, name=token_name
        )
        login_succeeded(session=ws, attempt=attempt)
    return user, token


@router.post(
    "/token",
    response_model=TokenPublic,
    responses={429: {"description": "too many failed sign-ins from this address: Retry-After"}},
)
def login(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    engine: EngineDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TokenPublic:
    """Exchange a username and password for a bearer token."""
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1: a token is never cached
    try:
        signed_in = sign_in(
            request=request,
            engine=engine,
            clock=clock,
            settings=settings,
            username=form.username,
            password=form.password,
            token_name="login",
        )
    except LoginThrottled as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=str(exc),
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    if signed_in is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return TokenPublic(access_token=signed_in[1], expires_in=settings.token_ttl_minutes * 60)
