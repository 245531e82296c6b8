"""Settings, read from ``TRACE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///foodtrace.db",
        description="SQLAlchemy URL; SQLite file in the working directory by default, "
        "postgresql+psycopg://user@host:5432/db for PostgreSQL.",
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
        "with mode 0600 on first use; the last checkpoint signed for each ledger is kept "
        "beside it in <file>.state.json. Keep both outside the database and its backups.",
    )
    token_ttl_minutes: int = Field(
        default=12 * 60, ge=1, description="Lifetime of a bearer token from /api/v1/auth/token."
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    pool_size: int = Field(default=10, ge=1, description="PostgreSQL connection pool size.")
