"""Platform initialisation, users, passwords (argon2id) and bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, bindparam, case, delete, select, update
from sqlmodel import Session

from foodtrace.accounts.models import (
    ApiToken,
    Authority,
    Enterprise,
    LoginThrottle,
    Platform,
    RegulatorRead,
    User,
    UserChange,
)
from foodtrace.errors import Conflict, NotFound, RecordError
from schemas.identifiers import IdentifierError, check_credit_code, check_region_code
from schemas.types import format_instant


class Role(StrEnum):
    ENTERPRISE_USER = "enterprise_user"
    ENTERPRISE_ADMIN = "enterprise_admin"
    REGULATOR = "regulator"
    PLATFORM_ADMIN = "platform_admin"


ENTERPRISE_ROLES = (Role.ENTERPRISE_USER, Role.ENTERPRISE_ADMIN)

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106) defaults
_DUMMY_HASH = _hasher.hash("not a password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def init_platform(*, session: Session, name: str, now: datetime) -> Platform:
    """Store the platform name once; later calls return the stored one unchanged."""
    platform = session.get(Platform, 1)
    if platform is None:
        platform = Platform(id=1, name=name, created_at=format_instant(now))
        session.add(platform)
        session.flush()
    return platform


def create_authority(
    *, session: Session, credit_code: str, name: str, region_codes: list[str], now: datetime
) -> Authority:
    """Register a supervising authority and the region codes it covers."""
    try:
        code = check_credit_code(credit_code)
        regions = [check_region_code(r) for r in region_codes]
    except IdentifierError as exc:
        raise RecordError.at(
            "credit_code" if "credit" in str(exc) else "region_codes", msg=str(exc), type=exc.code
        ) from None
    if not regions:
        raise RecordError.at("region_codes", msg="give at least one region code", type="missing")
    if session.execute(select(Authority).where(Authority.credit_code == code)).first():
        raise Conflict(f"authority {code} is already registered")
    authority = Authority(
        credit_code=code, name=name, region_codes=" ".join(regions), created_at=format_instant(now)
    )
    session.add(authority)
    session.flush()
    return authority


def covers(authority: Authority, region_code: str) -> bool:
    """Whether an authority's jurisdiction includes a region code.

    A code ending in ``00`` covers its subdivisions (``370400`` covers every
    district of 枣庄市; ``370000`` the whole province); other codes cover
    themselves only.
    """
    return any(region_covers(code, region_code) for code in authority.region_codes.split())


def region_covers(code: str, region_code: str) -> bool:
    """Whether one jurisdiction code covers a region code (see :func:`covers`)."""
    prefix = code
    while prefix.endswith("00") and len(prefix) > 2:
        prefix = prefix[:-2]
    return region_code.startswith(prefix)


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: Role,
    now: datetime,
    display_name: str | None = None,
    enterprise_id: int | None = None,
    authority_id: int | None = None,
) -> User:
    """Create a user bound to an enterprise (enterprise roles) or an authority (regulator)."""
    role = Role(role)
    if len(password) < 8:
        raise RecordError.at("password", msg="at least 8 characters", type="too_short")
    if (
        not username
        or len(username) > 64
        or not username.replace("_", "").replace(".", "").replace("-", "").isalnum()
    ):
        raise RecordError.at(
            "username", msg="1-64 letters, digits, '.', '-' or '_'", type="invalid"
        )
    if role in ENTERPRISE_ROLES and (enterprise_id is None or authority_id is not None):
        raise RecordError.at(
            "enterprise", msg=f"a {role} belongs to one enterprise", type="missing"
        )
    if role is Role.REGULATOR and (authority_id is None or enterprise_id is not None):
        raise RecordError.at(
            "authority", msg="a regulator belongs to one authority", type="missing"
        )
    if role is Role.PLATFORM_ADMIN and (enterprise_id or authority_id):
        raise RecordError.at(
            "role", msg="a platform admin belongs to no enterprise", type="invalid"
        )
    if session.execute(select(User.id).where(User.username == username)).first():
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        enterprise_id=enterprise_id,
        authority_id=authority_id,
        created_at=format_instant(now),
    )
    session.add(user)
    session.flush()
    return user


def set_password(*, session: Session, username: str, password: str) -> None:
    if len(password) < 8:
        raise RecordError.at("password", msg="at least 8 characters", type="too_short")
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user {username!r}")
    user.password_hash = hash_password(password)
    # A reset password ends every session of the old one.
    session.execute(update(ApiToken).where(ApiToken.user_id == user.id).values(revoked=True))


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (in constant-ish time either way)."""
    if not username or len(username) > 64 or not username.isprintable():
        check_password(_DUMMY_HASH, password)
        return None
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        check_password(_DUMMY_HASH, password)
        return None
    if not check_password(user.password_hash, password) or not user.active:
        return None
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    *, session: Session, user: User, now: datetime, ttl: timedelta | None, name: str = "login"
) -> str:
    """A new bearer token for ``user``; only its hash is stored."""
    token = "ft_" + secrets.token_urlsafe(32)
    assert user.id is not None
    session.add(
        ApiToken(
            token_hash=_token_hash(token),
            user_id=user.id,
            name=name,
            created_at=format_instant(now),
            expires_at=format_instant(now + ttl) if ttl else None,
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class Principal:
    """Who is asking: the user and what they are bound to."""

    user_id: int
    username: str
    role: Role
    enterprise_id: int | None
    authority_id: int | None
    display_name: str | None = None  # the name the pages greet the user by


def resolve_token(*, session: Session, token: str, now: datetime) -> Principal | None:
    """The principal behind a bearer token, or None if it is unknown, expired or revoked."""
    return principal_of(session.connection(), token, now)


def principal_of(conn: Connection, token: str, now: datetime) -> Principal | None:
    """:func:`resolve_token` on a connection: one SELECT, in the connection's transaction.

    Asked on every API request, so the statement is built once (bound parameter,
    compiled once, no ORM): the write path runs it on its own write connection.
    """
    digest = _token_hash(token)
    tok = conn.execute(_TOKEN_LOOKUP, {"b_digest": digest}).first()
    if tok is None:
        return None
    if not hmac.compare_digest(tok.token_hash, digest) or tok.revoked or not tok.active:
        return None
    if (
        tok.expires_at is not None
        and datetime.fromisoformat(tok.expires_at.replace("Z", "+00:00")) <= now
    ):
        return None
    return Principal(
        tok.id, tok.username, Role(tok.role), tok.enterprise_id, tok.authority_id, tok.display_name
    )


_TOKENS = ApiToken.__table__  # type: ignore[attr-defined]
_USERS = User.__table__  # type: ignore[attr-defined]
_TOKEN_LOOKUP = (
    select(
        _TOKENS.c.token_hash,
        _TOKENS.c.revoked,
        _TOKENS.c.expires_at,
        _USERS.c.id,
        _USERS.c.username,
        _USERS.c.role,
        _USERS.c.enterprise_id,
        _USERS.c.authority_id,
        _USERS.c.active,
        _USERS.c.display_name,
    )
    .join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
    .where(_TOKENS.c.token_hash == bindparam("b_digest"))
)


def enterprise_by_code(*, session: Session, credit_code: str) -> Enterprise:
    ent = session.execute(
        select(Enterprise).where(Enterprise.credit_code == credit_code)
    ).scalar_one_or_none()
    if ent is None:
        raise NotFound(f"no enterprise with credit code {credit_code}")
    return ent


def add_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    now: datetime,
    display_name: str | None = None,
    enterprise_credit_code: str | None = None,
    authority_credit_code: str | None = None,
) -> User:
    """Create a user, naming their enterprise or authority by credit code (API and CLI)."""
    try:
        role = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise RecordError.at(
            "role", msg=f"{role!r} is not a role ({allowed})", type="invalid"
        ) from None
    enterprise_id = authority_id = None
    if enterprise_credit_code:
        enterprise_id = enterprise_by_code(
            session=session, credit_code=enterprise_credit_code.upper()
        ).id
    if authority_credit_code:
        authority = session.execute(
            select(Authority).where(Authority.credit_code == authority_credit_code.upper())
        ).scalar_one_or_none()
        if authority is None:
            raise NotFound(f"no authority with credit code {authority_credit_code}")
        authority_id = authority.id
    return create_user(
        session=session,
        username=username,
        password=password,
        role=role,
        now=now,
        display_name=display_name,
        enterprise_id=enterprise_id,
        authority_id=authority_id,
    )


def user_codes(*, session: Session, user: User) -> tuple[str | None, str | None]:
    """The credit codes of a user's enterprise and authority."""
    ent = session.get(Enterprise, user.enterprise_id) if user.enterprise_id else None
    auth = session.get(Authority, user.authority_id) if user.authority_id else None
    return (ent.credit_code if ent else None, auth.credit_code if auth else None)


def revoke_token(*, session: Session, token: str) -> None:
    """End a session or revoke an API token, given the raw token."""
    session.execute(
        update(ApiToken).where(ApiToken.token_hash == _token_hash(token)).values(revoked=True)
    )


API_TOKEN = "api"


def create_api_token(*, session: Session, user_id: int, name: str, now: datetime) -> str:
    """A long-lived token for an ERP or MES, owned by the enterprise admin who made it."""
    name = name.strip()
    if not name or len(name) > 90 or any(ord(c) < 32 for c in name):
        raise RecordError.at("name", msg="1-90 printable characters", type="invalid")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return issue_token(session=session, user=user, now=now, ttl=None, name=f"{API_TOKEN}:{name}")


def list_api_tokens(*, session: Session, enterprise_id: int) -> list[dict[str, object]]:
    """The enterprise's API tokens (never the tokens themselves: only their hash is stored)."""
    rows = session.execute(
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .where(User.enterprise_id == enterprise_id, ApiToken.name.startswith(f"{API_TOKEN}:"))
        .order_by(ApiToken.id)
    ).all()
    return [
        {
            "id": t.id,
            "name": t.name.removeprefix(f"{API_TOKEN}:"),
            "created_at": t.created_at,
            "username": username,
            "revoked": t.revoked,
        }
        for t, username in rows
    ]


def revoke_api_token(*, session: Session, enterprise_id: int, token_id: int) -> None:
    """Revoke one of the enterprise's API tokens; another enterprise's token is not found."""
    row = session.execute(
        select(ApiToken)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.id == token_id,
            User.enterprise_id == enterprise_id,
            ApiToken.name.startswith(f"{API_TOKEN}:"),
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no API token {token_id}")
    row.revoked = True


def enterprise_users(*, session: Session, enterprise_id: int) -> list[User]:
    return list(
        session.execute(
            select(User).where(User.enterprise_id == enterprise_id).order_by(User.id)
        ).scalars()
    )


def change_user(
    *,
    session: Session,
    username: str,
    actor: str,
    now: datetime,
    active: bool | None = None,
    role: Role | str | None = None,
    enterprise_id: int | None = None,
) -> User:
    """Disable, enable or change the role of a user; each change kept in ``user_changes``.

    ``enterprise_id``: the changer is that enterprise's admin, who reaches its own users
    only (any other user is not found) and gives enterprise roles only. Without it, the
    platform admin (API, pages) or the operator of the CLI. A disabled user's sessions and
    tokens are revoked (each stops at its next request; enabling the user again brings
    none back). The last active admin of an enterprise, and the last active platform
    admin, can be neither disabled nor demoted (:class:`Conflict`).
    """
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or (enterprise_id is not None and user.enterprise_id != enterprise_id):
        raise NotFound(f"no user {username!r}" + (" in your enterprise" if enterprise_id else ""))
    # Changes of one enterprise's (one authority's, the platform's) users take turns: its row
    # is locked first, then the user's, always in that order (PostgreSQL; SQLite's write lock
    # serialises anyway). So two admins disabling each other at once cannot both succeed.
    owner: Any = (
        select(Enterprise.id).where(Enterprise.id == user.enterprise_id)
        if user.enterprise_id
        else select(Authority.id).where(Authority.id == user.authority_id)
        if user.authority_id
        else select(Platform.id)
    )
    if active is None and role is None:
        raise RecordError.at("body", msg='give "active" or "role"', type="missing")
    session.execute(owner.with_for_update()).all()
    session.refresh(user, with_for_update=True)
    new_role = Role(user.role)
    if role is not None:
        try:
            new_role = Role(role)
        except ValueError:
            allowed = ", ".join(r.value for r in Role)
            raise RecordError.at(
                "role", msg=f"{role!r} is not a role ({allowed})", type="invalid"
            ) from None
        same_kind = {Role(user.role), new_role} <= set(ENTERPRISE_ROLES) or new_role == user.role
        if enterprise_id is not None and new_role not in ENTERPRISE_ROLES:
            raise RecordError.at("role", msg="enterprise_user or enterprise_admin", type="invalid")
        if not same_kind:
            raise RecordError.at(
                "role",
                msg=f"a {user.role} cannot become a {new_role} (an account stays with its "
                "enterprise, authority or the platform): add a new user instead",
                type="invalid",
            )
    new_active = user.active if active is None else bool(active)
    keeps_admin = new_active and new_role == user.role
    admin = user.role in (Role.ENTERPRISE_ADMIN, Role.PLATFORM_ADMIN)
    if user.active and admin and not keeps_admin:
        _refuse_last_admin(session, user)
    changes = (
        ("active", str(user.active).lower(), str(new_active).lower()),
        ("role", str(user.role), new_role.value),
    )
    for name, old, new in changes:
        if old == new:
            continue
        session.add(
            UserChange(
                user_id=user.id,
                username=user.username,
                field=name,
                old=old,
                new=new,
                actor=actor[:100],
                at=format_instant(now),
            )
        )
    user.active = new_active
    user.role = new_role.value
    if not new_active:
        session.execute(update(ApiToken).where(ApiToken.user_id == user.id).values(revoked=True))
    session.flush()
    return user


def _refuse_last_admin(session: Session, user: User) -> None:
    """Conflict if ``user`` is the only active admin of their enterprise (or of the platform)."""
    others = select(User.id).where(
        User.id != user.id, User.active.is_(True), User.role == user.role
    )
    if user.role == Role.ENTERPRISE_ADMIN:
        others = others.where(User.enterprise_id == user.enterprise_id)
        what = "the enterprise's last active admin"
    else:
        what = "the platform's last active admin"
    if not session.execute(others).first():
        raise Conflict(
            f"{user.username!r} is {what}: make another user admin first, then disable or "
            "demote this one"
        )


def user_changes(
    *, session: Session, user_ids: list[int] | None, limit: int = 200
) -> list[UserChange]:
    """The recorded changes of these users (None: of every user), newest first."""
    query = select(UserChange).order_by(UserChange.id.desc()).limit(limit)
    if user_ids is not None:
        if not user_ids:
            return []
        query = query.where(UserChange.user_id.in_(user_ids))
    return list(session.execute(query).scalars())


def log_reads(
    *,
    session: Session,
    enterprise_ids: set[int],
    authority_id: int,
    username: str,
    what: str,
    now: datetime,
) -> None:
    """Record that a regulator read these enterprises' records; each may see who looked."""
    for eid in sorted(enterprise_ids):
        session.add(
            RegulatorRead(
                enterprise_id=eid,
                authority_id=authority_id,
                username=username,
                at=format_instant(now),
                what=what[:300],
            )
        )
    session.flush()


def reads_of(*, session: Session, enterprise_id: int, limit: int = 200) -> list[dict[str, object]]:
    """Who among the regulators read this enterprise's records, newest first."""
    rows = session.execute(
        select(RegulatorRead, Authority.name)
        .join(Authority, Authority.id == RegulatorRead.authority_id)
        .where(RegulatorRead.enterprise_id == enterprise_id)
        .order_by(RegulatorRead.id.desc())
        .limit(limit)
    ).all()
    return [
        {"at": r.at, "authority": name, "username": r.username, "what": r.what} for r, name in rows
    ]


# ------------------------------------------------------------------ throttling


@dataclass(frozen=True)
class ThrottlePolicy:
    """How sign-in guessing is slowed down (the ``TRACE_LOGIN_*`` settings).

    Two keys are counted for every attempt: the (user name, address) pair and the
    address alone. Once a key has failed ``free`` times, each further failure makes
    that key wait ``delay_s * 2**(failures - free)`` seconds (at most ``max_delay_s``)
    before its next attempt. A user name alone is never a key: another address with
    the right password is not slowed down by what one address tries.
    """

    free_attempts: int = 5
    address_free_attempts: int = 20
    delay_s: int = 30
    max_delay_s: int = 3600
    forget_after_s: int = 24 * 3600  # a key with no failure for this long starts again

    def delay(self, failures: int, free: int) -> int:
        """The wait after the ``failures``-th failure of a key allowed ``free`` ones (0: none)."""
        if failures < free:
            return 0
        return min(self.delay_s << min(failures - free, 32), self.max_delay_s)


class LoginThrottled(Exception):
    """Too many failed sign-ins from this address (for this user name, or for any): wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-ins from your address; try again in {retry_after} seconds"
        )
        self.retry_after = retry_after


def _key(text: str) -> str:
    """A user name or address as stored: unprintable characters escaped (PostgreSQL refuses
    NUL in text, and a log of guesses should not carry control characters)."""
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text[:64]


def address_key(address: str) -> str:
    """The throttled unit of an address: an IPv4 address, or an IPv6 address's /64 (one
    host is usually given a whole /64, so its addresses are one client)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return _key(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is 192.0.2.1
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class LoginAttempt:
    """An attempt counted before its password is checked (so that parallel guesses cannot
    all slip in before the first failure is written); a success takes it back."""

    user_key: str
    address_key: str
    address_blocked_until: int


def _throttle_keys(username: str, address: str) -> tuple[str, str]:
    addr = address_key(address)
    return f"user:{_key(username)}@{addr}", f"address:{addr}"


def begin_login(
    *, session: Session, username: str, address: str, now: datetime, policy: ThrottlePolicy
) -> LoginAttempt:
    """Count a sign-in attempt as a failure until it succeeds; raise :class:`LoginThrottled`
    while the pair or the address must wait (then the caller's transaction, rolled back,
    counts nothing).

    Runs in its own short write transaction, before the password is checked. Each key is
    counted and read in one statement (an upsert returning the row): on PostgreSQL it
    holds the key's row lock to the commit (the pair's key first, then the address's, in
    every transaction, so none waits on another in a circle), on SQLite the write lock
    does. So parallel attempts of one key are counted one after another, and no more of
    them reach the password check than the policy lets through.
    """
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    t = int(now.timestamp())
    stale = t - policy.forget_after_s
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # the same upsert in SQLite's dialect (its own Insert class, as mypy sees it)
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    user_key, addr_key = _throttle_keys(username, address)
    blocked = {}
    for key, free in ((user_key, policy.free_attempts), (addr_key, policy.address_free_attempts)):
        stmt = insert(table).values(key=key, failures=1, last_failure_s=t, blocked_until_s=0)
        upsert = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((table.c.last_failure_s < stale, 1), else_=table.c.failures + 1),
                "last_failure_s": t,
            },
        ).returning(table.c.failures, table.c.blocked_until_s)
        failures, until = session.execute(upsert).one()
        if until > t:
            raise LoginThrottled(until - t)
        wait = policy.delay(failures, free)
        blocked[key] = t + wait if wait else 0
        if wait:
            session.execute(
                update(table).where(table.c.key == key).values(blocked_until_s=blocked[key])
            )
    # Forget what has been quiet for a day, so the table holds only recent guessing.
    session.execute(delete(table).where(table.c.last_failure_s < stale))
    return LoginAttempt(user_key, addr_key, blocked[addr_key])


def login_succeeded(*, session: Session, attempt: LoginAttempt) -> None:
    """Take back a successful attempt: the pair starts again, the address loses the one
    failure this attempt counted (and the wait it alone caused)."""
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    session.execute(delete(table).where(table.c.key == attempt.user_key))
    session.execute(
        update(table)
        .where(table.c.key == attempt.address_key, table.c.failures > 0)
        .values(
            failures=table.c.failures - 1,
            blocked_until_s=case(
                (table.c.blocked_until_s == attempt.address_blocked_until, 0),
                else_=table.c.blocked_until_s,
            ),
        )
    )
