"""Backups restored (RELIABILITY.md, "Backup and restore"): the latest state verifies and the
signer goes on from it; an older state is flagged, refused by the signer, and recovered by
re-appending the lost tail from an export of the live ledger's entries.

The stand-ins for real backups: on PostgreSQL ``pg_dump`` piped into ``psql``
for the latest state and ``CREATE DATABASE … TEMPLATE`` for the older copy; on
SQLite the online backup API (``sqlite3.Connection.backup``) for both. The
signer's key and state stay where they are, outside every backup (as they must).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from foodtrace import cli
from foodtrace.config import Settings
from foodtrace.db import make_engine, read_session, write_session
from foodtrace.ledger.checkpoints import RolledBackError, checkpoint, head_root
from foodtrace.ledger.models import Entry, Ledger
from foodtrace.records.restore import append_exported
from foodtrace.tlog.checkpoint import Checkpoint
from foodtrace.tlog.signer import CheckpointSigner, InconsistentCheckpointError, load_signed_state
from foodtrace.verify import verify_consistently
from webapp.main import create_app

from factories import (
    BEVERAGE,
    add,
    beverage_ledger,
    ccp_record,
    customer,
    material_check,
    page_login,
    product,
    production_lot,
    register,
    release_test,
    sale,
    supplier,
)

PLATFORM = "trace.example.cn"
ORIGIN = f"{PLATFORM}/ledger/{BEVERAGE}"


class Backups:
    """Copies of the test's database, by the dialect's own means; dropped at the end."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.url = make_url(db_url)
        self.tmp = tmp_path
        self.made: list[str] = []

    @property
    def pg(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    def _conninfo(self, dbname: str) -> str:
        u = self.url
        info = (
            f"host={u.host or '127.0.0.1'} port={u.port or 5432} user={u.username} dbname={dbname}"
        )
        return info + (f" password={u.password}" if u.password else "")

    def _new_name(self, what: str) -> str:
        name = f"{self.url.database if self.pg else 'db'}_{what}_{uuid.uuid4().hex[:6]}"
        self.made.append(name)
        return name

    def snapshot(self, engine: Engine, what: str) -> str:
        """A copy taken now, restored as a database of its own: its URL.

        PostgreSQL: CREATE DATABASE … TEMPLATE (a file-level copy, as a base backup
        restored to this moment would be). SQLite: the online backup API.
        """
        name = self._new_name(what)
        if self.pg:
            engine.dispose()  # TEMPLATE needs the source without connections
            with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.url.database}"')
            return self.url.set(database=name).render_as_string(hide_password=False)
        return self._sqlite_backup(name)

    def dump_and_restore(self, engine: Engine, what: str) -> str:
        """The latest state through a logical backup: pg_dump | psql, or SQLite's backup API."""
        name = self._new_name(what)
        if not self.pg:
            return self._sqlite_backup(name)
        u = self.url
        args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or ""]
        dump = self.tmp / f"{name}.sql"
        env = {**os.environ, **({"PGPASSWORD": str(u.password)} if u.password else {})}
        subprocess.run(
            ["pg_dump", *args, "--no-owner", "--file", str(dump), u.database or ""],
            check=True,
            capture_output=True,
            env=env,
        )
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        subprocess.run(
            ["psql", *args, "-q", "-v", "ON_ERROR_STOP=1", "-d", name, "-f", str(dump)],
            check=True,
            capture_output=True,
            env=env,
        )
        return u.set(database=name).render_as_string(hide_password=False)

    def _sqlite_backup(self, name: str) -> str:
        path = self.tmp / f"{name}.db"
        src = sqlite3.connect(self.url.database or "")
        dst = sqlite3.connect(path)
        try:
            src.backup(dst)  # a consistent copy while others may write
        finally:
            dst.close()
            src.close()
        return f"sqlite:///{path}"

    def drop_all(self) -> None:
        if not self.pg:
            return
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            for name in self.made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backups(db_url: str, tmp_path: Path) -> Iterator[Backups]:
    b = Backups(db_url, tmp_path)
    yield b
    b.drop_all()


@pytest.fixture
def foodtrace(monkeypatch):  # type: ignore[no-untyped-def]
    """``foodtrace …`` against a given database URL (exit code, output)."""
    cli._load_plugins()
    runner = CliRunner()

    def run(url: str, *args: str):  # type: ignore[no-untyped-def]
        monkeypatch.setenv("TRACE_DATABASE_URL", url)
        return runner.invoke(cli.app, list(args))

    return run


def _signer() -> CheckpointSigner:
    return CheckpointSigner.open(Settings().signing_key_file, name=PLATFORM)


def _sign(engine: Engine, clock, lid: int) -> int:  # type: ignore[no-untyped-def]
    clock.advance(timedelta(seconds=2))
    with write_session(engine) as s:
        return checkpoint(session=s, ledger_id=lid, signer=_signer(), clock=clock, force=True).size


def _customers(engine: Engine, clock, lid: int, codes: range) -> None:  # type: ignore[no-untyped-def]
    for i in codes:
        add(engine, clock, lid, "customer", customer(code=f"C{i}", name=f"经销商 {i}"))


def _export(engine: Engine, lid: int) -> list[bytes]:
    """The ledger's entries as exported: their canonical bytes, in seq order."""
    with read_session(engine) as s:
        rows = s.execute(select(Entry.body).where(Entry.ledger_id == lid).order_by(Entry.seq))
        return [bytes(b) for b in rows.scalars()]


def _app(url: str):  # type: ignore[no-untyped-def]
    """The web app on a restored copy (no background signing: the tests sign themselves)."""
    return create_app(Settings(database_url=url, checkpoint_interval_s=0))


def _verified(engine: Engine) -> bool:
    signer = _signer()
    reports = verify_consistently(
        engine=engine,
        verifiers=[signer.verifier],
        signed_state=load_signed_state(signer.key_file),
    )
    return all(r.ok for r in reports)


def test_restored_backups_latest_verifies_older_is_flagged_and_recovered(
    engine, clock, backups, foodtrace, tmp_path
) -> None:
    lid = register(engine, clock)
    for kind, data in (("supplier", supplier()), ("customer", customer()), ("product", product())):
        add(engine, clock, lid, kind, data)
    a = _sign(engine, clock, lid)
    older = backups.snapshot(engine, "older")  # taken at a, with its checkpoint at a
    # The tail: a lot's records, each kind with derived rows of its own.
    for kind, data in (
        ("material_check", material_check()),
        ("production_lot", production_lot()),
        ("ccp_record", ccp_record()),
        ("release_test", release_test()),
        ("sale", sale()),
    ):
        add(engine, clock, lid, kind, data)
    b = _sign(engine, clock, lid)
    latest = backups.dump_and_restore(engine, "latest")  # the live state at b
    engine.dispose()  # the live database is lost from here on

    # The latest state verifies, and the signer goes on from it.
    restored = make_engine(latest)
    try:
        result = foodtrace(latest, "verify")
        assert result.exit_code == 0, result.output
        assert f"ok    {BEVERAGE}  {b} entries, 2 checkpoints" in result.output
        _customers(restored, clock, lid, range(17, 18))
        c = _sign(restored, clock, lid)
        assert c == b + 1
        assert _verified(restored)
        export = _export(restored, lid)
        bundle = tmp_path / "ledger.bundle"  # an export of the live ledger
        result = foodtrace(latest, "export-ledger", "--enterprise", BEVERAGE, "-o", str(bundle))
        assert result.exit_code == 0, result.output
    finally:
        restored.dispose()

    # The older state: consistent in itself, but behind what was signed.
    old = make_engine(older)
    try:
        result = foodtrace(older, "verify")
        assert result.exit_code == 1, result.output
        assert (
            f"FAIL  {BEVERAGE}  first bad entry: seq {a + 1} (signer): the signer last signed "
            f"this ledger at size {c}" in result.output
        )
        assert f"signed entries {a + 1}..{c} are missing" in result.output
        result = foodtrace(older, "checkpoint")
        assert result.exit_code == 1, result.output
        assert f"FAIL  {BEVERAGE}  refusing to sign {ORIGIN}: the database ends at size {a}" in (
            result.output
        )
        assert "behind the last signed size" in result.output
        with read_session(old) as s:
            head = s.get(Ledger, lid)
            tree = Checkpoint(head.origin, head.size, head_root(head))
        with pytest.raises(InconsistentCheckpointError, match="behind the last signed size"):
            _signer().sign(tree, prove=lambda a, b: [])
        # Nor will the server start on it: an append would take the place of a signed entry.
        missing = f"{ORIGIN}: the database ends at size {a}, the signer last signed size {c}"
        with pytest.raises(RolledBackError, match=re.escape(missing)), TestClient(_app(older)):
            pass
        result = foodtrace(older, "serve")
        assert result.exit_code == 2, result.output
        assert missing in result.output
        assert "foodtrace recover-ledger" in result.output

        # Recovery: re-append the lost tail from the export, the same bytes.
        result = foodtrace(older, "recover-ledger", str(bundle))
        assert result.exit_code == 0, result.output
        assert f"ok    {ORIGIN}  {c - a} entries re-appended, {a} already there, size {c}" in (
            result.output
        )
        assert _export(old, lid) == export
        with read_session(old) as s:  # the tail's derived rows are back (verify compares them)
            assert s.execute(text("SELECT count(*) FROM sales")).scalar_one() == 1
            assert s.execute(text("SELECT count(*) FROM lot_inputs")).scalar_one() == 1
        result = foodtrace(older, "verify")
        assert result.exit_code == 0, result.output
        assert f"ok    {BEVERAGE}  {c} entries" in result.output
        _customers(old, clock, lid, range(18, 19))
        assert _sign(old, clock, lid) == c + 1  # consistent with the signer again
        assert _verified(old)
        with TestClient(_app(older)) as web:  # and the server starts again
            assert web.get("/healthz").status_code == 200
        result = foodtrace(older, "recover-ledger", str(bundle))  # again: nothing to do
        assert result.exit_code == 0, result.output
        assert f"ok    {ORIGIN}  0 entries re-appended, {c} already there, size {c + 1}" in (
            result.output
        )
    finally:
        old.dispose()


def test_recover_ledger_refuses_a_forked_ledger_and_a_changed_bundle(
    engine, clock, backups, foodtrace, tmp_path
) -> None:
    lid = beverage_ledger(engine, clock)
    a = _sign(engine, clock, lid)
    older = backups.snapshot(engine, "older")
    _customers(engine, clock, lid, range(20, 23))
    bundle = tmp_path / "ledger.bundle"
    assert foodtrace(backups.url.render_as_string(hide_password=False), "export-ledger",
                     "--enterprise", BEVERAGE, "-o", str(bundle)).exit_code == 0  # fmt: skip
    engine.dispose()
    old = make_engine(older)
    try:
        changed = tmp_path / "changed.bundle"
        changed.write_bytes(bundle.read_bytes().replace(b'"seq":3}', b'"seq":4}', 1))
        result = foodtrace(older, "recover-ledger", str(changed))
        assert result.exit_code == 1, result.output
        assert f"FAIL  {changed}" in result.output
        _customers(old, clock, lid, range(30, 31))  # the restored ledger went on: a fork
        result = foodtrace(older, "recover-ledger", str(bundle))
        assert result.exit_code == 1, result.output
        assert f"entry {a + 1}: the ledger holds another entry" in result.output
        assert "nothing written" in result.output
        with read_session(old) as s:
            assert s.get(Ledger, lid).size == a + 1
    finally:
        old.dispose()


# ------------------------------------------------------------------ point-in-time recovery


class Cluster:
    """A PostgreSQL cluster of the test's own (initdb), run as the ``postgres`` OS user."""

    def __init__(self, root: Path, name: str) -> None:
        self.bindir = Path(
            subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        )
        self.data = root / name
        self.root = root
        self.port = _free_port()

    def run(self, *cmd: str, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
        exe = str(self.bindir / cmd[0]) if (self.bindir / cmd[0]).exists() else cmd[0]
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, exe, *cmd[1:]], capture_output=True, text=True, **kw)
        assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
        return done

    def configure(self, **settings: str) -> None:
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = '{value}'\n")

    def start(self) -> None:
        self.configure(port=str(self.port), listen_addresses="127.0.0.1")
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str = "foodtrace") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, query: str, db: str = "postgres") -> list[tuple]:
        info = f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"
        with psycopg.connect(info, autocommit=True) as conn:
            cur = conn.execute(query)
            return cur.fetchall() if cur.description else []


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pitr_root() -> Iterator[Path]:
    """A directory the postgres OS user owns (the test's tmp_path is root's alone)."""
    import shutil
    import tempfile

    if not shutil.which("pg_config"):
        pytest.fail("pg_config (postgresql server binaries) is needed for the PITR test")
    root = Path(tempfile.mkdtemp(prefix="ft-pitr-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_point_in_time_recovery_from_a_base_backup_and_archived_wal(
    clock, pitr_root, foodtrace
) -> None:
    """The documented procedure, for real: archive_mode on, pg_basebackup, recovery to a
    moment (an older state: flagged, then recovered from an export) and to the archive's end
    (the latest state: verifies, signs on)."""
    from foodtrace.accounts.service import init_platform
    from foodtrace.db import migrate

    wal = pitr_root / "wal"
    live = Cluster(pitr_root, "live")
    live.run("initdb", "-D", str(live.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    live.run("mkdir", "-p", str(wal))
    live.configure(
        wal_level="replica", archive_mode="on", archive_command=f"cp %p {wal}/%f", fsync="off"
    )
    started: list[Cluster] = []
    try:
        live.start()
        started.append(live)
        live.sql("CREATE DATABASE foodtrace")
        engine = make_engine(live.url())
        migrate(engine)
        with write_session(engine) as s:
            init_platform(session=s, name=PLATFORM, now=clock.now())
        lid = beverage_ledger(engine, clock)
        _customers(engine, clock, lid, range(10, 13))
        _sign(engine, clock, lid)
        base = pitr_root / "base"
        live.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(live.port), "-U", "postgres",
            "-D", str(base), "-Fp", "-X", "stream", "--checkpoint=fast",
        )  # fmt: skip
        _customers(engine, clock, lid, range(13, 17))
        at_target = _sign(engine, clock, lid)
        target = live.sql("SELECT now()")[0][0]
        time.sleep(1.1)
        _customers(engine, clock, lid, range(17, 21))
        last = _sign(engine, clock, lid)
        assert last == at_target + 4
        export = _export(engine, lid)
        engine.dispose()
        segment = live.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
        deadline = time.monotonic() + 60
        while (live.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") < segment:
            assert time.monotonic() < deadline, "WAL was not archived"
            time.sleep(0.2)
        live.stop()  # the disaster

        def recover(name: str, **target_settings: str) -> Cluster:
            c = Cluster(pitr_root, name)
            c.run("cp", "-a", str(base), str(c.data))
            # archive_mode off: a promoted copy must not archive its new timeline into the
            # archive the next recovery reads (it would follow that timeline).
            c.configure(restore_command=f"cp {wal}/%f %p", archive_mode="off", **target_settings)
            c.run("touch", str(c.data / "recovery.signal"))
            c.start()
            started.append(c)
            deadline = time.monotonic() + 60
            while c.sql("SELECT pg_is_in_recovery()")[0][0]:
                assert time.monotonic() < deadline, "recovery did not finish"
                time.sleep(0.2)
            return c

        # To the end of the archive: the latest state verifies, and the signer goes on.
        latest = recover("latest")
        result = foodtrace(latest.url(), "verify")
        assert result.exit_code == 0, result.output
        assert f"ok    {BEVERAGE}  {last} entries, 3 checkpoints" in result.output
        latest.stop()

        # To the moment before the last four entries: an older state, flagged and recovered.
        older = recover(
            "older", recovery_target_time=target.isoformat(), recovery_target_action="promote"
        )
        result = foodtrace(older.url(), "verify")
        assert result.exit_code == 1, result.output
        assert f"signed entries {at_target + 1}..{last} are missing" in result.output
        old = make_engine(older.url())
        try:
            with write_session(old) as s:
                done = append_exported(
                    session=s,
                    ledger_id=lid,
                    entries=export[at_target:],
                    signed=load_signed_state(Settings().signing_key_file)[ORIGIN],
                )
            assert (done.appended, done.size) == (4, last)
            assert foodtrace(older.url(), "verify").exit_code == 0
            _customers(old, clock, lid, range(21, 22))
            assert _sign(old, clock, lid) == last + 1
        finally:
            old.dispose()
    finally:
        for c in started:
            c.stop()


def test_a_running_server_checks_every_ledger_against_the_signer(
    engine, clock, backups, world
) -> None:
    """A database restored from an older backup under a running server is flagged by every
    verification the web offers: the enterprise's, the regulator's API and page. Here the
    server runs on a copy taken at size a, while the signer goes on signing the live ledger."""
    from conftest import ACCESS_PASSWORD

    lid = world["a"]
    a = _sign(engine, clock, lid)
    older = backups.snapshot(engine, "older")
    with TestClient(_app(older)) as web:

        def bearer(user: str) -> dict[str, str]:
            r = web.post("/api/v1/auth/token", data={"username": user, "password": ACCESS_PASSWORD})
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        ent, reg = bearer("ent_a"), bearer("reg_in")
        assert web.get("/api/v1/ledger/verify", headers=ent).json()["ok"] is True

        _customers(engine, clock, lid, range(20, 23))  # the live ledger goes on, and is signed
        c = _sign(engine, clock, lid)
        assert c == a + 3

        reports = [
            web.get("/api/v1/ledger/verify", headers=ent).json(),
            web.get(f"/api/v1/regulator/enterprises/{BEVERAGE}/verify", headers=reg).json(),
            *[
                r
                for r in web.get("/api/v1/regulator/verify", headers=reg).json()
                if r["credit_code"] == BEVERAGE
            ],
        ]
        for report in reports:
            assert report["ok"] is False, report
            assert report["size"] == a
            first = report["problems"][0]
            assert (first["seq"], first["check"]) == (a + 1, "signer"), report
            assert f"the signer last signed this ledger at size {c}" in first["message"]

        page_login(web, "reg_in", ACCESS_PASSWORD)
        page = web.get("/regulator/verify", params={"run": "1", "credit_code": BEVERAGE})
        assert page.status_code == 200
        assert f"the signer last signed this ledger at size {c}" in page.text
