"""Fixtures: every database test runs on SQLite and on PostgreSQL (one parameter).

Each test gets a database of its own, already migrated: on SQLite a copy of a
migrated template file, on PostgreSQL ``CREATE DATABASE … TEMPLATE`` of a
migrated template database. With ``CI=true`` an unreachable PostgreSQL fails
the run instead of skipping its tests.
"""

from __future__ import annotations

import copy
import fcntl
import itertools
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from foodtrace.accounts.service import init_platform
from foodtrace.clock import SimulatedClock
from foodtrace.db import make_engine, migrate, write_session

PG_URL = os.environ.get("TRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LONG = os.environ.get("FOODTRACE_LONG", "") == "1"
"""FOODTRACE_LONG=1 runs the tests marked ``slow`` (larger sweeps); they are skipped otherwise."""
START = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
PLATFORM = "trace.example.cn"

_counter = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # ``@pytest.mark.db("postgresql")``: a test of one database kind's behaviour is not
    # collected for the other kind at all (rather than collected and skipped).
    kept, dropped = [], []
    for item in items:
        only = item.get_closest_marker("db")
        kind = getattr(item, "callspec", None) and item.callspec.params.get("db_url")
        (dropped if only and kind and kind not in only.args else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    if LONG:
        return
    skip = pytest.mark.skip(reason="long run: set FOODTRACE_LONG=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _pg_conninfo(url: str) -> str:
    u = make_url(url)
    parts = [
        f"host={u.host or '127.0.0.1'}",
        f"port={u.port or 5432}",
        f"user={u.username or 'postgres'}",
        f"dbname={u.database or 'postgres'}",
    ]
    if u.password:
        parts.append(f"password={u.password}")
    return " ".join(parts)


def _pg_admin() -> psycopg.Connection:
    return psycopg.connect(_pg_conninfo(PG_URL), autocommit=True, connect_timeout=5)


def _pg_available() -> str | None:
    try:
        with _pg_admin() as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)


def pg_url(name: str) -> str:
    """The URL of the test server's PostgreSQL database ``name``."""
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@contextmanager
def new_pg_database(prefix: str) -> Iterator[str]:
    """The name of a new, empty PostgreSQL database (``prefix``_random), dropped afterwards.
    With PostgreSQL unreachable the test is skipped, or fails with ``CI=true``."""
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable ({problem}); set CI=true to make this fail")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database on PostgreSQL, dropped at the end of the run."""
    with new_pg_database("ft_tmpl") as name:
        engine = make_engine(pg_url(name))
        migrate(engine)
        engine.dispose()
        yield name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


DEMO_TODAY = date(2026, 11, 1)
"""The day the demo district of ``@pytest.mark.demo`` tests ends (its records run up to it)."""


def _load_demo(url: str) -> None:
    from foodtrace.demo import load_demo

    engine = make_engine(url)
    with write_session(engine) as session:
        init_platform(session=session, name=PLATFORM, now=START)  # as the engine fixture does
    load_demo(engine=engine, today=DEMO_TODAY)
    engine.dispose()


def _xdist_shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path | None:
    """Under pytest-xdist, a directory all workers of this run share; None without xdist."""
    if not hasattr(request.config, "workerinput"):
        return None
    return tmp_path_factory.getbasetemp().parent


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


SHARED_DEMO_DB = "ft_demo_run_{controller}"
"""The demo database all xdist workers of a run copy (the controller is their parent);
the controller drops it when the run ends (``pytest_sessionfinish``)."""


@pytest.fixture(scope="session")
def sqlite_demo_template(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The demo district loaded once per run (it takes seconds) for the tests that read it:
    under xdist by the first worker that needs it, for all of them."""

    def build(path: Path) -> None:
        building = path.with_name(f"{path.name}.{os.getpid()}")  # whole, or not there
        shutil.copyfile(sqlite_template, building)
        _load_demo(f"sqlite:///{building}")
        building.rename(path)

    shared = _xdist_shared(request, tmp_path_factory)
    if shared is None:
        path = tmp_path_factory.mktemp("demo") / "demo.db"
        build(path)
        return path
    path = shared / "demo.db"
    with _file_lock(shared / "demo.db.lock"):
        if not path.exists():
            build(path)
    return path


@pytest.fixture(scope="session")
def pg_demo_template(
    request: pytest.FixtureRequest, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    def build(name: str) -> None:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
        _load_demo(pg_url(name))

    shared = _xdist_shared(request, tmp_path_factory)
    if shared is None:
        name = f"ft_demo_{uuid.uuid4().hex[:10]}"
        build(name)
        yield name
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    name = SHARED_DEMO_DB.format(controller=os.getppid())
    with _file_lock(shared / "pg-demo.lock"):
        if not (shared / "pg-demo.done").exists():
            build(name)
            (shared / "pg-demo.done").touch()
    yield name


def pytest_sessionfinish(session: pytest.Session) -> None:
    # The xdist controller (not a worker, and only if workers ran) drops the shared demo.
    if hasattr(session.config, "workerinput"):
        return
    if getattr(session.config.option, "numprocesses", None) and _pg_available() is None:
        with _pg_admin() as conn:
            name = SHARED_DEMO_DB.format(controller=os.getpid())
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DataBuilder = Callable[[Engine, SimulatedClock], Any]
_DATA_BUILDERS: dict[str, DataBuilder] = {}


def data_fixture(build: DataBuilder) -> Any:
    """A fixture of test data built once per run, worker and database kind, not once per test.

    ``build(engine, clock)`` writes the data into a fresh database (platform initialised,
    clock at START) and returns plain values (ids). That database becomes a template: a
    test asking for the fixture gets a copy of it as its own database (``db_url``), the
    value ``build`` returned, and its ``clock`` where ``build`` left it. The copy is the
    same data the builder would have written for the test itself; only the random salts
    and password-hash salts are shared between tests, which no test relies on.
    """
    name = build.__name__
    key = f"{build.__module__}.{build.__qualname__}"  # modules have builders of one name
    _DATA_BUILDERS[key] = build

    def fixture(db_url: str, clock: SimulatedClock, _data_templates: dict[Any, Any]) -> Any:
        _template, value, now = _data_templates[_kind(db_url), key]
        clock.set(now)
        return copy.deepcopy(value)  # a test may change what it was given

    fixture.__doc__ = build.__doc__
    fixture.builds = key  # type: ignore[attr-defined]
    return pytest.fixture(name=name)(fixture)


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


@pytest.fixture(scope="session")
def _data_templates() -> Iterator[dict[Any, Any]]:
    """(kind, data fixture) -> (template: a file or a database name, value, clock after)."""
    built: dict[Any, Any] = {}
    yield built
    for (kind, _name), (template, _value, _now) in built.items():
        if kind == "postgresql":
            with _pg_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')


def _data_template(request: pytest.FixtureRequest, kind: str, base: Any) -> Any:
    """The template of the test's data fixture (built on first use), or ``base`` without one."""
    # A test module's own fixture of the same name (a local ``world``) is not the data fixture.
    defs = request.node._fixtureinfo.name2fixturedefs  # noqa: SLF001 - which fixture wins
    names = [getattr(defs[n][-1].func, "builds", None) for n in request.fixturenames if n in defs]
    names = [n for n in names if n is not None]
    if not names:
        return base
    if len(names) > 1 or request.node.get_closest_marker("demo") is not None:
        raise pytest.UsageError(f"{request.node.nodeid}: one data fixture at most, not on demo")
    built: dict[Any, Any] = request.getfixturevalue("_data_templates")
    key = (kind, names[0])
    if key not in built:
        clock = SimulatedClock(START)
        if kind == "sqlite":
            template: Any = base.with_name(f"{names[0]}.db")  # beside the migrated one
            shutil.copyfile(base, template)
            url = f"sqlite:///{template}"
        else:
            template = f"ft_data_{uuid.uuid4().hex[:10]}"
            with _pg_admin() as conn:
                conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{base}"')
            url = pg_url(template)
        engine = make_engine(url)
        try:
            with write_session(engine) as session:
                init_platform(session=session, name=PLATFORM, now=clock.now())
            value = _DATA_BUILDERS[names[0]](engine, clock)
        finally:
            engine.dispose()
        built[key] = (template, value, clock.now())
    return built[key][0]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database of each kind; with ``@pytest.mark.demo``, a
    copy of a database holding the demo district (``foodtrace.demo``, up to DEMO_TODAY);
    for a test of a :func:`data_fixture`, a copy of a database holding that data."""
    demo = request.node.get_closest_marker("demo") is not None
    if request.param == "sqlite":
        template: Path = request.getfixturevalue(
            "sqlite_demo_template" if demo else "sqlite_template"
        )
        path = tmp_path / "test.db"
        shutil.copyfile(_data_template(request, "sqlite", template), path)
        yield f"sqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("pg_demo_template" if demo else "pg_template")
    template_name = _data_template(request, "postgresql", template_name)
    name = f"ft_{os.getpid()}_{next(_counter)}"
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    yield pg_url(name)
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _own_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test signs with a key (and signer state) of its own, never one in the checkout;
    background checkpointing is off unless a test turns it on (it would race the test);
    web import jobs and import slots live in the test's own directory."""
    monkeypatch.setenv("TRACE_SIGNING_KEY_FILE", str(tmp_path / "signing.key"))
    monkeypatch.setenv("TRACE_CHECKPOINT_INTERVAL_S", "0")
    monkeypatch.setenv("TRACE_IMPORT_DIR", str(tmp_path / "imports"))  # jobs and import slots


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def engine(db_url: str, clock: SimulatedClock) -> Iterator[Engine]:
    """An engine on the fresh database, with the platform initialised."""
    eng = make_engine(db_url)
    with write_session(eng) as session:
        init_platform(session=session, name=PLATFORM, now=clock.now())
    yield eng
    eng.dispose()


@pytest.fixture
def dialect(engine: Engine) -> str:
    return engine.dialect.name


@pytest.fixture
def app(db_url: str, engine: Engine, clock: SimulatedClock):  # type: ignore[no-untyped-def]
    """The web app on the test's database and simulated clock."""
    from foodtrace.config import Settings
    from webapp.main import create_app

    return create_app(Settings(database_url=db_url), clock=clock, engine=engine)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def invoke(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``foodtrace …`` on the test's database, as the installed command runs it (with the
    commands other packages add): ``invoke("verify")``; ``input=`` answers its prompts."""
    from typer.testing import CliRunner

    from foodtrace import cli

    monkeypatch.setenv("TRACE_DATABASE_URL", db_url)
    cli._load_plugins()
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:  # noqa: A002
        return runner.invoke(cli.app, list(args), input=input)

    return run


ACCESS_PASSWORD = "access pass 2026"


@data_fixture
def world(engine: Engine, clock: SimulatedClock) -> dict[str, int]:
    """Enterprise A (a beverage maker with lot PJ20260301A, GTIN 6921234560013), enterprise B
    (a sugar maker), the district's authority and the next district's, and one user of each
    kind: ent_a, ent_a_admin, ent_b, reg_in, reg_out, admin (password ACCESS_PASSWORD)."""
    from foodtrace.accounts.service import Role, add_user, create_authority
    from schemas.identifiers import credit_code_check_char

    import factories as f

    in_auth = "11370404MB2854321" + credit_code_check_char("11370404MB2854321")
    out_auth = "11370402MB2854333" + credit_code_check_char("11370402MB2854333")
    a = f.beverage_ledger(engine, clock)
    b = f.register(engine, clock, f.SUGAR, name="枣庄鲁南糖业有限公司")
    with write_session(engine) as s:
        for code, name, region in (
            (in_auth, "峄城区市场监督管理局", "370404"),
            (out_auth, "市中区市场监督管理局", "370402"),
        ):
            create_authority(
                session=s, credit_code=code, name=name, region_codes=[region], now=clock.now()
            )
        for user, role, ent, auth in (
            ("ent_a", Role.ENTERPRISE_USER, f.BEVERAGE, None),
            ("ent_a_admin", Role.ENTERPRISE_ADMIN, f.BEVERAGE, None),
            ("ent_b", Role.ENTERPRISE_USER, f.SUGAR, None),
            ("reg_in", Role.REGULATOR, None, in_auth),
            ("reg_out", Role.REGULATOR, None, out_auth),
            ("admin", Role.PLATFORM_ADMIN, None, None),
        ):
            add_user(
                session=s, username=user, password=ACCESS_PASSWORD, role=role, now=clock.now(),
                enterprise_credit_code=ent, authority_credit_code=auth,
            )  # fmt: skip
    return {"a": a, "b": b}
