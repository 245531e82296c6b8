"""Platform, authorities, enterprises, users and their bearer tokens."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Platform(SQLModel, table=True):
    """One row: the platform's name, fixed at initialisation (DESIGN.md: never recomputed)."""

    __tablename__ = "platform"

    id: int = Field(default=1, primary_key=True)
    name: str = Field(max_length=255)
    created_at: str = Field(max_length=32)


class Authority(SQLModel, table=True):
    """A supervising authority (市场监督管理局) and the region codes it covers."""

    __tablename__ = "authorities"

    id: int | None = Field(default=None, primary_key=True)
    credit_code: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=200)
    region_codes: str = Field(max_length=1000, description="space-separated 6-digit codes")
    created_at: str = Field(max_length=32)


class Enterprise(SQLModel, table=True):
    """The registry row of an enterprise, derived from its ledger's registration entry.

    ``id`` is the id of the enterprise's ledger.
    """

    __tablename__ = "enterprises"

    id: int = Field(primary_key=True)
    record_seq: int
    current_seq: int
    credit_code: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    region_code: str = Field(max_length=6, index=True)
    licence_no: str | None = Field(default=None, max_length=16)
    address: str = Field(max_length=200)
    contact: str = Field(max_length=200)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=200)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=32)
    enterprise_id: int | None = Field(default=None, foreign_key="enterprises.id", index=True)
    authority_id: int | None = Field(default=None, foreign_key="authorities.id")
    active: bool = True
    created_at: str = Field(max_length=32)


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=100)
    created_at: str = Field(max_length=32)
    expires_at: str | None = Field(default=None, max_length=32)
    revoked: bool = False


class RegulatorRead(SQLModel, table=True):
    """A regulator read an enterprise's records: who, when, what. The enterprise sees these."""

    __tablename__ = "regulator_reads"

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(index=True)
    authority_id: int
    username: str = Field(max_length=64)
    at: str = Field(max_length=32)
    what: str = Field(max_length=300)


class LoginThrottle(SQLModel, table=True):
    """Failed sign-ins of one key, counted to slow down password guessing.

    A key is ``user:<user name>@<address>`` or ``address:<address>``, never a user
    name alone: guesses from one address slow down that address only, so nobody
    can lock a user out from everywhere. Times are Unix seconds (compared in SQL).
    """

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=160)
    failures: int
    last_failure_s: int = Field(index=True)
    blocked_until_s: int


class UserChange(SQLModel, table=True):
    """One change of a user account (disabled, enabled, role): who made it and when.

    Appended, never updated: the account's history. User accounts are not ledger
    records, so the account row itself changes; this table keeps what it was.
    """

    __tablename__ = "user_changes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    username: str = Field(max_length=64)
    field: str = Field(max_length=16, description="active or role")
    old: str = Field(max_length=32)
    new: str = Field(max_length=32)
    actor: str = Field(max_length=100)
    at: str = Field(max_length=32)
