"""The ``foodtrace`` command: serve, load the demo, verify ledgers, manage users."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from foodtrace.config import Settings

if TYPE_CHECKING:
    from foodtrace.tlog.note import Verifier

app = typer.Typer(
    help="Food-production traceability records in per-enterprise hash-chained ledgers.",
    no_args_is_help=True,
    add_completion=False,
)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from foodtrace.db import make_engine

    return make_engine(
        settings.database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        pool_size=settings.pool_size,
    )


def prepare(settings: Settings):  # type: ignore[no-untyped-def]
    """Open the database, migrate it and fix the platform name; return the engine."""
    from foodtrace.accounts.service import init_platform
    from foodtrace.clock import SystemClock
    from foodtrace.db import current_revision, head_revision, migrate, write_session

    engine = _engine(settings)
    if current_revision(engine) != head_revision():
        migrate(engine)
    with write_session(engine) as session:
        init_platform(session=session, name=settings.platform_name, now=SystemClock().now())
    return engine


def is_empty(engine) -> bool:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from foodtrace.accounts.models import User
    from foodtrace.db import read_session
    from foodtrace.ledger.models import Ledger

    with read_session(engine) as session:
        ledgers = session.execute(select(func.count()).select_from(Ledger)).scalar_one()
        users = session.execute(select(func.count()).select_from(User)).scalar_one()
    return ledgers == 0 and users == 0


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic) and fix the platform name."""
    settings = Settings()
    prepare(settings)
    typer.echo(f"database ready: {_redact(settings.database_url)}")


@app.command("wait-db")
def wait_db(
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to wait (default TRACE_DB_WAIT_S, 60).", min=0),
    ] = None,
) -> None:
    """Wait until the database accepts connections (the container's first step); exit 1 if not."""
    from sqlalchemy.exc import OperationalError

    from foodtrace.db import wait_for_database

    settings = Settings()
    limit = settings.db_wait_s if timeout is None else timeout
    engine = _engine(settings)
    try:
        wait_for_database(engine, timeout_s=limit)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else repr(exc)
        typer.echo(
            f"database {_redact(settings.database_url)} unreachable after {limit:g} s: {reason}",
            err=True,
        )
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(f"database reachable: {_redact(settings.database_url)}", err=True)


@app.command()
def demo() -> None:
    """Load the demo district (deterministic; needs an empty database)."""
    settings = Settings()
    engine = prepare(settings)
    if not is_empty(engine):
        typer.echo(
            "the database already holds enterprises or users; the demo needs an empty one", err=True
        )
        raise typer.Exit(2)
    load_demo_into(engine)


def load_demo_into(engine) -> None:  # type: ignore[no-untyped-def]
    from foodtrace.demo import load_demo

    summary = load_demo(engine=engine, echo=lambda s: typer.echo(s, err=True))
    typer.echo(summary.describe())


@app.command()
def verify(
    enterprise: Annotated[
        str | None, typer.Option(help="Credit code of one enterprise; all ledgers if omitted.")
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=0,
            help="Processes verifying ledgers at once (PostgreSQL); 0: one per core.",
        ),
    ] = 1,
) -> None:
    """Verify ledgers from their stored bytes; exit 1 naming the first bad entry.

    Signed checkpoints are checked against the entries; their signatures too
    when the platform's key file (TRACE_SIGNING_KEY_FILE) is here, and every
    ledger against the last checkpoint the signer recorded beside its key (a
    database restored from an older backup is missing signed entries).
    """
    from foodtrace.tlog.signer import SignerError, load_signed_state, load_verifiers
    from foodtrace.verify import verify_parallel

    settings = Settings()
    engine = _engine(settings)
    code = enterprise.upper() if enterprise else None
    try:
        # the current key and those it replaced: older checkpoints were signed by them
        keys = load_verifiers(settings.signing_key_file)
        signed_state = load_signed_state(settings.signing_key_file)
    except (SignerError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    verifier = keys[0] if keys else None
    reports = verify_parallel(
        engine=engine,
        processes=jobs or os.cpu_count() or 1,
        credit_code=code,
        verifiers=keys or None,
        signed_state=signed_state,
    )
    if enterprise and not reports:
        typer.echo(f"no ledger for credit code {enterprise}", err=True)
        raise typer.Exit(2)
    failed = 0
    for r in reports:
        if r.ok:
            signed = f", {r.checkpoints_checked} checkpoints" if r.checkpoints_checked else ""
            typer.echo(f"ok    {r.credit_code}  {r.size} entries{signed}")
            continue
        failed += 1
        first = r.first
        assert first is not None
        where = f"seq {first.seq}" if first.seq is not None else "ledger"
        typer.echo(
            f"FAIL  {r.credit_code}  first bad entry: {where} ({first.check}): {first.message}"
        )
        for p in r.problems[1:6]:
            typer.echo(f"      also seq {p.seq} ({p.check}): {p.message}")
    if failed:
        typer.echo(f"{failed} of {len(reports)} ledgers failed verification", err=True)
        raise typer.Exit(1)
    typer.echo(f"all {len(reports)} ledgers verified")
    if verifier is None:
        typer.echo(
            f"checkpoint signatures not checked: no key file {settings.signing_key_file}", err=True
        )


def _checkpoint_signer(settings: Settings, engine):  # type: ignore[no-untyped-def]
    """The platform's signer (see foodtrace.ledger.checkpoints.open_signer)."""
    from foodtrace.db import read_session
    from foodtrace.ledger.checkpoints import MissingKeyError, open_signer

    with read_session(engine) as session:
        try:
            return open_signer(session=session, key_file=settings.signing_key_file)
        except MissingKeyError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None


@app.command()
def init() -> None:
    """Initialise an installation: migrate, fix the platform name, make the signing key.

    Prints the verifier key to publish. Safe to run again: nothing that exists
    is replaced, and a database that holds signed checkpoints but whose key is
    missing is refused (restore the key from its backup instead).
    """
    settings = Settings()
    engine = prepare(settings)
    signer = _checkpoint_signer(settings, engine)
    typer.echo(f"database ready: {_redact(settings.database_url)}", err=True)
    typer.echo(
        f"signing key: {signer.key_file} (back it up with {signer.state_file.name})", err=True
    )
    typer.echo(signer.verifier.vkey)


@app.command()
def key(
    all_keys: Annotated[
        bool, typer.Option("--all", help="Also the verifier keys of earlier (rotated) keys.")
    ] = False,
) -> None:
    """Print the platform's checkpoint verifier key (C2SP form), creating the key if needed."""
    settings = Settings()
    engine = prepare(settings)
    signer = _checkpoint_signer(settings, engine)
    for verifier in signer.verifiers if all_keys else [signer.verifier]:
        typer.echo(verifier.vkey)


@app.command("rotate-key")
def rotate_key(
    name: Annotated[
        str,
        typer.Option(
            help="The new key's name: <platform>/<suffix>, e.g. trace.example.cn/2027; never "
            "a name used before."
        ),
    ],
) -> None:
    """Replace the checkpoint signing key; the old verifier key is kept to check old checkpoints.

    Stop the server first and start it again after: a running server signs with
    the key it loaded. Publish the new verifier key beside the old one, and back
    up the key file, its .state.json and its .retired together.
    """
    from foodtrace.db import read_session
    from foodtrace.records.service import platform_name
    from foodtrace.tlog.note import NoteError
    from foodtrace.tlog.signer import SignerError
    from foodtrace.tlog.signer import rotate_key as rotate

    settings = Settings()
    engine = prepare(settings)
    _checkpoint_signer(settings, engine)  # refuses a missing key of a signed database
    with read_session(engine) as session:
        platform = platform_name(session)
    try:
        old, new = rotate(settings.signing_key_file, new_name=name, platform=platform)
    except (SignerError, NoteError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"retired: {old.vkey}", err=True)
    typer.echo(
        f"the old secret is set aside as {settings.signing_key_file}.{old.key_id:08x}.old: "
        "archive it offline or destroy it; restart the server to sign with the new key",
        err=True,
    )
    typer.echo(new.vkey)


@app.command()
def checkpoint(
    enterprise: Annotated[
        str | None, typer.Option(help="Credit code of one ledger; all ledgers if omitted.")
    ] = None,
) -> None:
    """Sign a checkpoint of every ledger that grew since its last one; exit 1 if one is refused."""
    from sqlalchemy import select

    from foodtrace.clock import SystemClock
    from foodtrace.db import write_session
    from foodtrace.ledger.checkpoints import checkpoint as sign_checkpoint
    from foodtrace.ledger.models import Ledger
    from foodtrace.tlog.signer import InconsistentCheckpointError, SignerError

    settings = Settings()
    engine = prepare(settings)
    signer = _checkpoint_signer(settings, engine)
    with write_session(engine) as session:
        q = select(Ledger.id, Ledger.credit_code, Ledger.origin).order_by(Ledger.id)
        if enterprise:
            q = q.where(Ledger.credit_code == enterprise.upper())
        ledgers = session.execute(q).all()
    if enterprise and not ledgers:
        typer.echo(f"no ledger for credit code {enterprise}", err=True)
        raise typer.Exit(2)
    refused = 0
    for ledger_id, code, origin in ledgers:
        try:
            with write_session(engine) as session:
                cp = sign_checkpoint(
                    session=session,
                    ledger_id=ledger_id,
                    signer=signer,
                    clock=SystemClock(),
                    force=True,
                )
                size, signed_at = cp.size, cp.signed_at
            last = signer.last_signed(origin)
            if last is not None and last[0] > size:
                # Its own latest checkpoint covers the database, so nothing new was signed,
                # but the signer signed more of this ledger than the database holds.
                raise InconsistentCheckpointError(
                    f"the database ends at size {size}, behind the last signed size "
                    "(restored from an older backup? RELIABILITY.md, 'Recovering the lost tail')",
                    origin=origin,
                    last=last,
                )
            typer.echo(f"ok    {code}  size {size}  signed {signed_at}")
        except SignerError as exc:
            refused += 1
            typer.echo(f"FAIL  {code}  {exc}")
    if refused:
        raise typer.Exit(1)


@app.command()
def declare(
    enterprise: Annotated[
        str | None, typer.Option(help="Credit code of one enterprise; all if omitted.")
    ] = None,
) -> None:
    """Give every released lot without a public declaration its declaration (older ledgers)."""
    from sqlalchemy import select

    from foodtrace.clock import SystemClock
    from foodtrace.db import write_session
    from foodtrace.ledger.models import Ledger
    from foodtrace.records.service import declare_released

    engine = prepare(Settings())
    with write_session(engine) as session:
        q = select(Ledger.id, Ledger.credit_code).where(Ledger.owner_kind == "enterprise")
        if enterprise:
            q = q.where(Ledger.credit_code == enterprise.upper())
        ledgers = session.execute(q.order_by(Ledger.id)).all()
    if enterprise and not ledgers:
        typer.echo(f"no enterprise ledger for credit code {enterprise}", err=True)
        raise typer.Exit(2)
    for ledger_id, code in ledgers:
        with write_session(engine) as session:
            seqs = declare_released(session=session, ledger_id=ledger_id, clock=SystemClock())
        typer.echo(f"ok    {code}  {len(seqs)} declarations appended")


def _verifiers(keys: list[str]) -> list[Verifier]:
    """Verifier keys from ``--key`` values: a vkey, or a file of vkeys (one a line, # comments)."""
    from pathlib import Path

    from foodtrace.tlog.note import NoteError, Verifier

    found: list[Verifier] = []
    for value in keys:
        path = Path(value)
        lines = [value]
        if "+" not in value or path.is_file():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                typer.echo(
                    f"error: --key {value}: neither a verifier key nor a file ({exc})", err=True
                )
                raise typer.Exit(2) from None
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                found.append(Verifier.from_vkey(line))
            except NoteError as exc:
                typer.echo(f"error: --key: {line[:60]!r} is not a verifier key: {exc}", err=True)
                raise typer.Exit(2) from None
    if not found:
        typer.echo("error: give at least one verifier key with --key", err=True)
        raise typer.Exit(2)
    return found


KeyOption = Annotated[
    list[str],
    typer.Option(
        "--key",
        help="The platform's verifier key (name+keyid+base64), or a file of them one a line; "
        "repeat for keys of earlier years after a rotation.",
    ),
]


@app.command("export-ledger")
def export_ledger(
    enterprise: Annotated[
        str, typer.Option(help="Credit code of the ledger's enterprise (or authority).")
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="The bundle file to write.")],
) -> None:
    """Write a ledger's entries (canonical bytes) and signed checkpoints to one bundle file.

    Signs a checkpoint first if the ledger grew; the bundle covers the ledger up
    to that checkpoint. Check it anywhere with ``foodtrace verify-bundle``.
    """
    import io
    from pathlib import Path

    from foodtrace.clock import SystemClock
    from foodtrace.db import read_session
    from foodtrace.errors import NotFound
    from foodtrace.ledger.checkpoints import LedgerDamaged, fresh_checkpoint
    from foodtrace.ledger.checkpoints import export_ledger as write_ledger_bundle
    from foodtrace.ledger.service import get_ledger
    from foodtrace.tlog.signer import SignerError, atomic_write

    settings = Settings()
    engine = prepare(settings)
    signer = _checkpoint_signer(settings, engine)
    code = enterprise.upper()
    try:
        with read_session(engine) as session:
            ledger_id = get_ledger(session=session, credit_code=code).id
        assert ledger_id is not None
        signed = fresh_checkpoint(
            engine=engine, ledger_id=ledger_id, signer=signer, clock=SystemClock()
        )
        buffer = io.BytesIO()
        with read_session(engine) as session:
            size = write_ledger_bundle(
                session=session, ledger_id=ledger_id, signed=signed, out=buffer
            )
    except NotFound as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (LedgerDamaged, SignerError) as exc:
        typer.echo(f"FAIL  {code}  cannot export: {exc}", err=True)
        raise typer.Exit(1) from None
    atomic_write(Path(output), buffer.getvalue())
    typer.echo(f"wrote {output}: {code}, {size} entries up to the checkpoint signed at {size}")


@app.command("verify-bundle")
def verify_bundle(
    file: Annotated[str, typer.Argument(help="A bundle written by export-ledger.")],
    key: KeyOption,
) -> None:
    """Verify a ledger bundle with the verifier key alone (no database, no server).

    Exit 0 with a summary line when every entry and checkpoint holds; 1 naming
    the first failing entry or checkpoint.
    """
    from pathlib import Path

    from foodtrace.tlog.bundle import BundleError
    from foodtrace.tlog.bundle import verify_bundle as check

    verifiers = _verifiers(key)
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        verified = check(data, verifiers=verifiers)
    except BundleError as exc:
        typer.echo(f"FAIL  {file}  {exc}")
        raise typer.Exit(1) from None
    typer.echo(verified.summary())


@app.command("recover-ledger")
def recover_ledger(
    file: Annotated[str, typer.Argument(help="A bundle written by export-ledger.")],
) -> None:
    """Re-append a ledger's lost tail from its bundle, after an older backup was restored.

    The bundle is verified first with the platform's verifier keys (every entry
    and signed checkpoint); then its entries the database lacks are appended
    exactly as exported, each checked to follow the ledger's last entry, their
    derived rows written by the projection verification uses, and the Merkle
    root checked against what the signer last signed (RELIABILITY.md,
    "Recovering the lost tail"). One transaction: refused, nothing is written.
    """
    import base64
    import json
    from pathlib import Path

    from sqlalchemy import select

    from foodtrace.db import write_session
    from foodtrace.ledger.models import Ledger
    from foodtrace.records.restore import RestoreError, append_exported
    from foodtrace.tlog.bundle import BundleError
    from foodtrace.tlog.bundle import verify_bundle as check
    from foodtrace.tlog.signer import SignerError, load_signed_state, load_verifiers

    settings = Settings()
    try:
        data = Path(file).read_bytes()
        keys = load_verifiers(settings.signing_key_file)
        state = load_signed_state(settings.signing_key_file)
    except (OSError, SignerError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not keys:
        typer.echo(f"error: no key file {settings.signing_key_file} to check the bundle", err=True)
        raise typer.Exit(2)
    try:
        verified = check(data, verifiers=keys)
    except BundleError as exc:
        typer.echo(f"FAIL  {file}  {exc}")
        raise typer.Exit(1) from None
    entries = [
        base64.b64decode(line["bytes"])
        for line in map(json.loads, data.splitlines()[1 : 1 + verified.size])
    ]
    engine = _engine(settings)
    try:
        with write_session(engine) as session:
            ledger_id = session.execute(
                select(Ledger.id).where(Ledger.origin == verified.origin)
            ).scalar_one_or_none()
            if ledger_id is None:
                typer.echo(f"error: no ledger {verified.origin} in this database", err=True)
                raise typer.Exit(2)
            done = append_exported(
                session=session,
                ledger_id=ledger_id,
                entries=entries,
                signed=state.get(verified.origin),
            )
    except RestoreError as exc:
        typer.echo(f"FAIL  {verified.origin}  {exc}; nothing written")
        raise typer.Exit(1) from None
    typer.echo(
        f"ok    {verified.origin}  {done.appended} entries re-appended, "
        f"{done.already_present} already there, size {done.size}"
    )
    signed = state.get(verified.origin)
    if signed is not None and done.size < signed[0]:
        typer.echo(
            f"the signer signed {signed[0]} entries of this ledger: {signed[0] - done.size} are "
            "still missing (a newer bundle has them)",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def witness(
    server: Annotated[
        str, typer.Option(help="The platform's address, e.g. https://trace.example.cn")
    ],
    key: KeyOption,
    state: Annotated[
        str, typer.Option(help="Where the last checkpoint seen of each ledger is kept.")
    ] = "foodtrace-witness.json",
    ledger: Annotated[
        list[str] | None,
        typer.Option(help="Credit code of a ledger to check (repeatable); default: every ledger."),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option(
            help="The platform name of the origins (<platform>/ledger/<code>); default: the "
            "first key's name up to its first '/'."
        ),
    ] = None,
    audit: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Also check the bytes served for every entry new since the last run and for "
            "this many earlier entries drawn at random (a number at least the ledger's size "
            "audits all): an entry edited behind the server's back no longer proves.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="FOODTRACE_WITNESS_TOKEN",
            help="Bearer token of a regulator (or the enterprise) for --audit of private "
            "entries; better given in the environment than on the command line.",
        ),
    ] = None,
) -> None:
    """Check that every ledger's new checkpoint extends the last one seen (consistency proofs).

    Exit 0 when every ledger holds; 1, naming the ledger and the sizes, when one
    was rewritten, truncated or forked, or its checkpoint cannot be had, or
    (with --audit) an entry's served bytes are not the signed leaf. Only
    ledgers that passed have their new checkpoint kept.
    """
    from pathlib import Path

    import httpx

    from foodtrace.tlog.witness import WitnessError, load_state, save_state
    from foodtrace.tlog.witness import witness as run_witness

    verifiers = _verifiers(key)
    state_path = Path(state)
    name = platform or verifiers[0].name.split("/", 1)[0]
    try:
        seen = load_state(state_path)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        with httpx.Client(base_url=server, timeout=60, headers=headers) as client:
            outcomes = run_witness(
                client=client,
                verifiers=verifiers,
                state=seen,
                platform=name,
                ledgers=ledger,
                audit=audit,
            )
    except WitnessError as exc:
        typer.echo(f"WITNESS FAILED: {exc}", err=True)
        raise typer.Exit(1) from None
    save_state(state_path, seen)
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        typer.echo(f"{'ok  ' if o.ok else 'FAIL'}  {o.credit_code}  {o.message}")
    if failed:
        for o in failed:
            typer.echo(f"WITNESS FAILED: ledger {o.credit_code}: {o.message}", err=True)
        raise typer.Exit(1)
    typer.echo(f"all {len(outcomes)} ledgers consistent with what was seen before", err=True)


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[
        str, typer.Option(help="enterprise_user, enterprise_admin, regulator or platform_admin")
    ],
    enterprise: Annotated[
        str | None, typer.Option(help="Credit code of the user's enterprise")
    ] = None,
    authority: Annotated[
        str | None, typer.Option(help="Credit code of the regulator's authority")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Password (asked for when omitted)", envvar="FOODTRACE_PASSWORD"),
    ] = None,
) -> None:
    """Create a user."""
    from foodtrace.accounts.service import add_user
    from foodtrace.clock import SystemClock
    from foodtrace.db import write_session
    from foodtrace.errors import Conflict, NotFound, RecordError

    settings = Settings()
    engine = prepare(settings)
    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with write_session(engine) as session:
            add_user(
                session=session,
                username=username,
                password=password,
                role=role,
                now=SystemClock().now(),
                display_name=name,
                enterprise_credit_code=enterprise,
                authority_credit_code=authority,
            )
    except (RecordError, NotFound, Conflict) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"user {username} created ({role})")


def _change_user(username: str, **change: object) -> None:
    """Apply one change to a user as the operator of this command, recorded as ``cli:<login>``."""
    import getpass

    from foodtrace.accounts.service import change_user
    from foodtrace.clock import SystemClock
    from foodtrace.db import write_session
    from foodtrace.errors import Conflict, NotFound, RecordError

    engine = prepare(Settings())
    try:
        with write_session(engine) as session:
            user = change_user(
                session=session,
                username=username,
                actor=f"cli:{getpass.getuser()}",
                now=SystemClock().now(),
                **change,  # type: ignore[arg-type]
            )
            state = "active" if user.active else "disabled"
            typer.echo(f"user {username}: {state}, {user.role}")
    except (RecordError, NotFound, Conflict) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Switch a user off: every session and token of theirs stops at its next request."""
    _change_user(username, active=False)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Switch a user back on (they sign in again: no old session comes back)."""
    _change_user(username, active=True)


@user_app.command("role")
def user_role(
    username: str,
    role: Annotated[
        str, typer.Argument(help="enterprise_user or enterprise_admin (within an enterprise)")
    ],
) -> None:
    """Change a user's role (an enterprise's users between operator and admin)."""
    _change_user(username, role=role)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _load_plugins() -> None:
    """Commands other packages add (``serve`` comes from the web layer).

    The core never imports a web framework (STYLE.md), so the command that
    starts the web server is registered through the ``foodtrace.cli`` entry
    point group instead of being imported here.
    """
    from importlib.metadata import entry_points

    for ep in entry_points(group="foodtrace.cli"):
        app.command(name=ep.name)(ep.load())


def main() -> None:
    _load_plugins()
    app(prog_name="foodtrace")


if __name__ == "__main__":  # pragma: no cover
    main()
