"""Request-scoped dependencies: sessions, the clock, who is asking, and what they may touch.

Each access rule is written once, here: an enterprise user's ledger comes from
their account, never from the request, so no handler can reach another
enterprise's ledger; a regulator's enterprise must lie in their jurisdiction.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, HTTPException, Path, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from foodtrace.accounts.models import Authority, Enterprise
from foodtrace.accounts.service import ENTERPRISE_ROLES, Principal, Role, covers, resolve_token
from foodtrace.clock import Clock
from foodtrace.config import Settings
from foodtrace.db import FoodtraceSession, single_read_engine, write_session
from foodtrace.ledger.models import Ledger
from foodtrace.tlog.signer import load_signed_state
from foodtrace.verify import Report, verify_consistently
from web.security import NO_STORE


def verify_against_signer(request: Request, *ledger_ids: int) -> list[Report]:
    """Verify ledgers from their stored bytes, and against what the platform signed.

    The checkpoint signatures are checked with the platform's keys (current and
    rotated), and the ledger against the signer's record kept beside its key:
    a database restored from an older backup under a running server is missing
    signed entries, which nothing inside the database can show. The record is
    read once, before the ledgers' snapshots (``verify_consistently``).
    """
    signer = request.app.state.signer
    keys, signed = signer.verifiers, load_signed_state(signer.key_file)
    engine = request.app.state.engine
    return [
        verify_consistently(engine=engine, ledger_id=i, verifiers=keys, signed_state=signed)[0]
        for i in ledger_ids
    ]


class VerifyCache:
    """Verification reports of ledgers, kept while their head is unchanged (and at most
    ``ttl`` seconds): the ledger page shows a verification badge on every view, and a full
    verification reads every entry (0.6 s at 22.5k entries).

    The key is what a new entry, a new checkpoint or a restored backup changes: the head's
    size and hash, the count and largest size of its signed checkpoints, and the signer's
    record of its last (size, root). Tampering with a stored entry's bytes changes none of
    them: that is caught at the ledger's next append, after ``ttl``, and always by a full
    verification (the regulator's, ``foodtrace verify``), which never uses this cache.
    """

    def __init__(self, ttl: float, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._reports: OrderedDict[int, tuple[tuple[Any, ...], float, Report]] = OrderedDict()
        self._lock = threading.Lock()

    def report(self, request: Request, ledger_id: int) -> Report:
        """The ledger's report: the cached one if its key still holds, else a fresh one."""
        signer = request.app.state.signer
        engine = request.app.state.engine
        signed = load_signed_state(signer.key_file)
        key = _head_key(engine, ledger_id, signed)
        now = time.monotonic()
        with self._lock:
            hit = self._reports.get(ledger_id)
            if hit and hit[0] == key and now - hit[1] < self.ttl:
                self._reports.move_to_end(ledger_id)
                return hit[2]
        (report,) = verify_consistently(
            engine=engine, ledger_id=ledger_id, verifiers=signer.verifiers, signed_state=signed
        )
        if key is not None:
            with self._lock:
                self._reports[ledger_id] = (key, now, report)
                self._reports.move_to_end(ledger_id)
                while len(self._reports) > self.size:
                    self._reports.popitem(last=False)
        return report


def _head_key(engine: Engine, ledger_id: int, signed: Any) -> tuple[Any, ...] | None:
    """What a change of the ledger changes (see :class:`VerifyCache`); None: no such ledger."""
    from foodtrace.ledger.models import SignedCheckpoint

    with FoodtraceSession(engine) as session:
        head = session.execute(
            select(Ledger.size, Ledger.head_hash, Ledger.origin).where(Ledger.id == ledger_id)
        ).first()
        if head is None:
            return None
        checkpoints = session.execute(
            select(func.count(), func.max(SignedCheckpoint.size)).where(
                SignedCheckpoint.ledger_id == ledger_id
            )
        ).one()
    state = signed.get(head.origin)
    return (head.size, bytes(head.head_hash), tuple(checkpoints), state)


def verify_cached(request: Request, ledger_id: int) -> Report:
    """A ledger's verification for a page that shows it on every view (:class:`VerifyCache`)."""
    cache: VerifyCache | None = getattr(request.app.state, "verify_cache", None)
    if cache is None or cache.ttl <= 0:
        return verify_against_signer(request, ledger_id)[0]
    return cache.report(request, ledger_id)


# The three below are ``async def`` although they never wait: FastAPI runs a plain ``def``
# dependency in the thread pool, a hand-off to a worker thread and back for an attribute read.


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A read session for the request."""
    with FoodtraceSession(engine) as session:
        yield session


@contextmanager
def public_session(engine: Engine) -> Iterator[Session]:
    """A read session for the public pages (a lot's page and QR code), opened inside the
    route rather than as a dependency: a sync generator dependency enters and exits in the
    thread pool, two more hand-offs to a worker thread and back than the route's own.

    On PostgreSQL each statement is its own transaction (autocommit, ``single_read_engine``):
    under READ COMMITTED a transaction gives each statement its own snapshot anyway, and
    its BEGIN and ROLLBACK were two round trips for nothing. SQLite keeps its transaction."""
    with FoodtraceSession(single_read_engine(engine)) as session:
        yield session


def get_write_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """One write transaction for the request: committed before the response is sent,
    rolled back if anything raised (then nothing was written)."""
    with write_session(engine) as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
# scope="function": the commit happens before the response is sent, so a 2xx
# always means the record is on disk.
WriteSessionDep = Annotated[Session, Depends(get_write_session, scope="function")]
IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="A retried request with the same key returns the first result.",
    ),
]


def mark_authenticated(request: Request) -> None:
    """This answer is someone's own: no cache (a browser's, a proxy's) may keep it."""
    flags = request.scope.get(NO_STORE)
    if flags is not None:
        flags.append(True)


UsernamePath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="user name")
]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def current_principal(
    request: Request,
    engine: EngineDep,
    clock: ClockDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The user behind the bearer token; 401 without valid credentials."""
    mark_authenticated(request)  # a refusal is not for caches either
    if not token:
        raise _unauthorized("not authenticated: send Authorization: Bearer <token>")
    with FoodtraceSession(single_read_engine(engine)) as session:  # resolve_token sends one SELECT
        principal = resolve_token(session=session, token=token, now=clock.now())
    if principal is None:
        raise _unauthorized("the token is unknown, expired or revoked")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def optional_principal(
    request: Request,
    engine: EngineDep,
    clock: ClockDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal | None:
    """The user behind the bearer token, or None without one; 401 for a bad token.

    For routes anyone may call, where credentials only widen what is shown.
    """
    if not token:
        return None
    return current_principal(request, engine, clock, token)


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


@dataclass(frozen=True)
class EnterpriseScope:
    """An enterprise user and the one ledger they may read and write."""

    principal: Principal
    enterprise_id: int

    @property
    def actor(self) -> str:
        return self.principal.username


def current_enterprise_user(principal: CurrentPrincipal) -> EnterpriseScope:
    if principal.role not in ENTERPRISE_ROLES or principal.enterprise_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="for enterprise users only")
    return EnterpriseScope(principal, principal.enterprise_id)


def current_enterprise_admin(
    scope: Annotated[EnterpriseScope, Depends(current_enterprise_user)],
) -> EnterpriseScope:
    if scope.principal.role is not Role.ENTERPRISE_ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="for the enterprise's admin only")
    return scope


CurrentEnterpriseUser = Annotated[EnterpriseScope, Depends(current_enterprise_user)]
CurrentEnterpriseAdmin = Annotated[EnterpriseScope, Depends(current_enterprise_admin)]


@dataclass(frozen=True)
class RegulatorScope:
    principal: Principal
    authority: Authority


def current_regulator(principal: CurrentPrincipal, session: SessionDep) -> RegulatorScope:
    if principal.role is not Role.REGULATOR or principal.authority_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="for regulators only")
    authority = session.get(Authority, principal.authority_id)
    if authority is None:  # pragma: no cover - foreign key
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="no authority")
    return RegulatorScope(principal, authority)


CurrentRegulator = Annotated[RegulatorScope, Depends(current_regulator)]


M = TypeVar("M", Enterprise, Ledger)


def _by_credit_code(session: Session, model: type[M], credit_code: str) -> M | None:
    """The enterprise or ledger of a credit code as a path gives it (any case)."""
    from sqlalchemy import select

    found: M | None = session.execute(
        select(model).where(model.credit_code == credit_code.upper())
    ).scalar_one_or_none()
    return found


def regulated_enterprise(
    regulator: CurrentRegulator,
    session: SessionDep,
    credit_code: Annotated[str, Path(min_length=18, max_length=18)],
) -> Enterprise:
    """An enterprise in the regulator's jurisdiction; 404 for any other (no existence leak)."""
    ent = _by_credit_code(session, Enterprise, credit_code)
    if ent is None or not covers(regulator.authority, ent.region_code):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no enterprise {credit_code} in your jurisdiction"
        )
    return ent


RegulatedEnterprise = Annotated[Enterprise, Depends(regulated_enterprise)]


@dataclass(frozen=True)
class LedgerAccess:
    """A ledger named in the path, and whether the caller may see its private entries.

    Public, to anyone: the ledger's existence, checkpoints, consistency proofs
    (only hashes and sizes) and the proofs of its public entries. Private
    entries: the enterprise's own users, and regulators whose jurisdiction
    covers the enterprise; for an authority's ledger, that authority's own
    regulators.
    """

    ledger: Ledger
    principal: Principal | None
    private: bool

    def require_private(self, what: str) -> None:
        """401 for an anonymous caller, 403 for one who may not see private entries."""
        if self.private:
            return
        if self.principal is None:
            raise _unauthorized(f"{what} is private: send the credentials of its enterprise")
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"{what} is private: for {self.ledger.credit_code}'s own users and the "
            "regulators over it only",
        )

    @property
    def regulator_of_enterprise(self) -> bool:
        """Whether a regulator reads an enterprise's ledger (such reads are logged)."""
        return (
            self.private
            and self.principal is not None
            and self.principal.role is Role.REGULATOR
            and self.ledger.owner_kind == "enterprise"
        )


def _may_read_private(session: Session, principal: Principal | None, ledger: Ledger) -> bool:
    if principal is None:
        return False
    if principal.role in ENTERPRISE_ROLES:
        return ledger.owner_kind == "enterprise" and principal.enterprise_id == ledger.id
    if principal.role is Role.REGULATOR and principal.authority_id is not None:
        authority = session.get(Authority, principal.authority_id)
        if authority is None:  # pragma: no cover - foreign key
            return False
        if ledger.owner_kind == "authority":
            return authority.credit_code == ledger.credit_code
        enterprise = session.get(Enterprise, ledger.id)
        return enterprise is not None and covers(authority, enterprise.region_code)
    return False


def ledger_access(
    session: SessionDep,
    principal: OptionalPrincipal,
    credit_code: Annotated[str, Path(min_length=18, max_length=18)],
) -> LedgerAccess:
    """The ledger of ``credit_code`` (an enterprise's or an authority's); 404 if there is none."""
    ledger = _by_credit_code(session, Ledger, credit_code)
    if ledger is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no ledger {credit_code}")
    return LedgerAccess(ledger, principal, _may_read_private(session, principal, ledger))


LedgerAccessDep = Annotated[LedgerAccess, Depends(ledger_access)]


def current_platform_admin(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.PLATFORM_ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="for the platform admin only")
    return principal


CurrentPlatformAdmin = Annotated[Principal, Depends(current_platform_admin)]
