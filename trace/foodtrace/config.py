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

    import_max_rows: int = Field(
        default=100_000,
        ge=1,
        description="Rows a spreadsheet import may have, the header and blank rows included "
        "(its last row number). A sheet declaring more (<dimension ref>), or reaching more as "
        "it is read, is refused (413) before its rows are checked.",
    )
    import_max_columns: int = Field(
        default=64,
        ge=18,
        description="Cells a row of an import may have, blank ones included (the widest "
        "template has 18 columns). Past it the file is refused (413).",
    )
    import_max_cell_chars: int = Field(
        default=32_767,
        ge=1,
        description="Characters in one cell or CSV field of an import (Excel's own limit).",
    )
    import_max_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="Size of one uploaded import file (XLSX or CSV); larger is refused (413).",
    )
    import_concurrency: int = Field(
        default=2,
        ge=1,
        description="Imports (API calls and web checks or confirms) reading or writing at "
        "once in all, across the server's processes; one more is refused with 429 and "
        "Retry-After.",
    )
    import_concurrency_per_enterprise: int = Field(
        default=1,
        ge=1,
        description="Imports running at once for one enterprise; one more gets 429.",
    )
    import_dir: str = Field(
        default="",
        description="Directory for web import jobs (the uploaded file and its check, until "
        "confirmed or expired) and the import slots' lock files; shared by the server's "
        "processes. Empty: foodtrace-imports in the system's temp directory.",
    )
    import_job_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        description="How long an unconfirmed web import job is kept on disk.",
    )
    import_jobs_per_user: int = Field(
        default=5,
        ge=1,
        description="Web import jobs kept per user: a new upload removes the user's oldest "
        "finished one; with this many still running, it is refused (429).",
    )
    body_max_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Request body of every route but the uploads below: a larger "
        "Content-Length is refused (413) before the body is read, and a chunked body "
        "as soon as it passes the limit.",
    )
    upload_body_max_bytes: int = Field(
        default=21 * 1024 * 1024,
        ge=1024,
        description="Request body of the upload routes (attachments, imports, record "
        "forms with scans): the 20 MB file limits plus room for the form around them.",
    )

    login_free_attempts: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins one address may make for one user name before each "
        "further attempt from there waits (429 with Retry-After); other addresses are not "
        "affected, so nobody can lock a user out.",
    )
    login_address_free_attempts: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins one address (an IPv6 /64) may make, for any user names, "
        "before each further attempt from there waits.",
    )
    login_delay_s: int = Field(
        default=30,
        ge=1,
        description="The first wait once an address is over its free attempts; it doubles "
        "with each further failure, up to TRACE_LOGIN_MAX_DELAY_S.",
    )
    login_max_delay_s: int = Field(
        default=3600, ge=1, description="The longest wait between sign-in attempts."
    )
    trusted_proxies: str = Field(
        default="",
        description="Addresses (or networks, e.g. 172.16.0.0/12) of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed, comma-separated. Empty (the "
        "default): no proxy is trusted, the client is the TCP peer. The sign-in throttle "
        "counts per client address, so set this to the TLS proxy in front of the server and "
        "nothing else.",
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the session and sign-in cookies Secure (sent over HTTPS only) "
        "whatever the scheme of the request: on behind a TLS proxy (the production compose "
        "file); off for a local http run. Requests that arrive over HTTPS get Secure cookies "
        "either way.",
    )

    @property
    def trusted_proxy_list(self) -> list[str]:
        """TRACE_TRUSTED_PROXIES as a list (empty: trust none)."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        import ipaddress

        for item in (p.strip() for p in value.split(",")):
            if not item:
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"must be IP addresses or networks, comma-separated: {item!r}"
                ) from None
        return value

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
