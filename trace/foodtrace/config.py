"""Settings, read from ``TRACE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_BASE_URL = "http://127.0.0.1:8000"
"""The public base URL of a local run (``foodtrace serve`` on its default address)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///foodtrace.db",
        description="SQLAlchemy URL; SQLite file in the working directory by default, "
        "postgresql+psycopg://user:password@host:5432/db for PostgreSQL.",
    )
    platform_name: str = Field(
        default="trace.example.cn",
        description="Host name that names the platform's ledgers (origin "
        "<platform>/ledger/<credit code>). Read once, when the database is "
        "initialised; stored there and never recomputed.",
    )
    signing_key_file: str = Field(
        default="foodtrace-signing.key",
        description="The platform's Ed25519 checkpoint key (C2SP signer key text), created "
        "with mode 0600 on first use (a key readable by others is refused); the signer keeps "
        "the last checkpoint it signed for each ledger beside it in <file>.state.json, and "
        "after a key rotation the verifier keys it replaced in <file>.retired. Keep them "
        "outside the database and its backups.",
    )
    checkpoint_interval_s: float = Field(
        default=1.0,
        ge=0,
        description="How often the server signs a checkpoint of every ledger that grew "
        "(DESIGN.md: at most a second apart while a ledger grows); 0 turns the background "
        "signing off (checkpoints are then signed on demand, when a proof is asked for).",
    )
    token_ttl_minutes: int = Field(
        default=12 * 60, ge=1, description="Lifetime of a bearer token from /api/v1/auth/token."
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, ge=0, description="How long a SQLite writer waits for the write lock."
    )
    pool_size: int = Field(default=10, ge=1, description="PostgreSQL connection pool size.")
    public_base_url: str = Field(
        default=LOCAL_BASE_URL,
        description="Scheme and host (and any path prefix) under which consumers reach the "
        "platform, e.g. https://trace.example.cn. Every QR code encodes this followed by the "
        "lot's path, so it must be the public address, not the address the server listens on. "
        "Unset, `foodtrace serve` uses the address it listens on.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        description="Worker processes of `foodtrace serve` (uvicorn); the container runs "
        "several. Only one of them signs checkpoints in the background at a time.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text`: uvicorn's usual lines; `json`: one JSON object a line (time, "
        "level, logger, message, and the request of an access-log line) for a log collector.",
    )
    verify_cache_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="How long a page's verification result (the ledger page's badge) is "
        "reused while the ledger's head (size, head hash), its checkpoints and the signer's "
        "record of it are unchanged; 0 verifies on every view. A stored entry's bytes "
        "tampered with meanwhile are caught at the next change of the head or after this "
        "long: the regulator's verification and `foodtrace verify` always verify in full.",
    )
    db_wait_s: float = Field(
        default=60.0,
        ge=0,
        description="How long `foodtrace wait-db` (the container's first step) waits for the "
        "database to accept connections before giving up.",
    )

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        # Printed on packages: a wrong value here is expensive, so refuse what cannot work.
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL such as https://trace.example.cn: {value!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"must have no query or fragment: {value!r}")
        return value
