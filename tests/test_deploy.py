"""The production container, tested without a Docker engine (none runs here).

- docker/entrypoint.sh run directly against a fresh PostgreSQL database: it waits,
  migrates, makes the signing key on its directory, and starts the server with
  several workers, which answers /healthz and /readyz, logs JSON, and has one
  background signer;
- /readyz on SQLite and PostgreSQL: 200 at head, 503 naming the reason otherwise;
- docker/compose.yaml validated by Debian's docker-compose (`config`, no engine
  needed) and its structure asserted;
- docker/Dockerfile parsed: slim Python 3.11, the committed constraints file,
  a non-root USER, a HEALTHCHECK; and its RUN step replayed in a clean virtual
  environment, from which the image's ENTRYPOINT and CMD start the app;
- README's settings table is the Settings model's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from conftest import IN_CI, _pg_admin, new_pg_database, pg_url

from servers import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
VENV_BIN = Path(sys.executable).parent
SECRET = "a wrong guess 4471"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (not migrated), dropped afterwards."""
    with new_pg_database("ft_deploy") as name:
        yield pg_url(name)


def pg_execute(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True
    ) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


class Server:
    """A process group started from a command line; its output kept in files."""

    def __init__(self, argv: list[str], env: dict[str, str], tmp: Path, port: int) -> None:
        self.out, self.err = tmp / "stdout.log", tmp / "stderr.log"
        self.base = f"http://127.0.0.1:{port}"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=err, cwd=tmp, start_new_session=True
            )

    def logs(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"no /healthz within {timeout} s:\n{self.logs()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def base_env(tmp: Path, db_url: str, bin_dir: Path) -> dict[str, str]:
    signing = tmp / "signing"
    signing.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        TRACE_DATABASE_URL=db_url,
        TRACE_SIGNING_KEY_FILE=str(signing / "platform.key"),
        TRACE_CHECKPOINT_INTERVAL_S="0.5",
        TRACE_DB_WAIT_S="20",
    )
    return env


def check_ready_then_not_migrated(server: Server, db_url: str) -> None:
    """/healthz and /readyz 200; with the migration mark removed /readyz is 503 and says why."""
    assert httpx.get(server.base + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.base + "/readyz")
    assert ready.status_code == 200, ready.text
    version = pg_execute(db_url, "SELECT version_num FROM alembic_version")[0][0]
    pg_execute(db_url, "DELETE FROM alembic_version")
    try:
        r = httpx.get(server.base + "/readyz")
        assert r.status_code == 503
        assert "not migrated" in r.json()["reason"]
        assert httpx.get(server.base + "/healthz").status_code == 200  # alive all the same
    finally:
        pg_execute(db_url, f"INSERT INTO alembic_version VALUES ('{version}')")
    assert httpx.get(server.base + "/readyz").status_code == 200


# ---------------------------------------------------------------- the entrypoint


def test_entrypoint_migrates_makes_the_key_and_serves_with_workers(fresh_pg, tmp_path) -> None:
    from webapp.checkpointer import LEADER_LOCK_ID

    port = free_port()
    env = base_env(tmp_path, fresh_pg, VENV_BIN)
    env.update(TRACE_WORKERS="2", TRACE_LOG_FORMAT="json")
    argv = ["sh", str(DOCKER / "entrypoint.sh"), "--host", "127.0.0.1", "--port", str(port)]
    server = Server(argv, env, tmp_path, port)
    try:
        server.wait_healthy()
        check_ready_then_not_migrated(server, fresh_pg)
        key = tmp_path / "signing" / "platform.key"
        assert key.stat().st_mode & 0o777 == 0o600  # made on the volume, private
        # a failed sign-in: its password must not reach the JSON log
        denied = httpx.post(
            server.base + "/api/v1/auth/token", data={"username": "nobody", "password": SECRET}
        )
        assert denied.status_code == 401
        # a page renders (templates and static files are there) and is logged as JSON
        assert httpx.get(server.base + "/login").status_code == 200
        # two workers, one background signer: the advisory lock has exactly one holder
        deadline = time.monotonic() + 15
        holders: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline and len(holders) != 1:
            time.sleep(0.5)
            holders = pg_execute(
                fresh_pg,
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                f"AND objid = {LEADER_LOCK_ID & 0xFFFFFFFF} AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
            )
        assert len(holders) == 1, holders
        workers = server.logs().count("Started server process")
        assert workers == 2, server.logs()
    finally:
        server.stop()
    out = server.out.read_text().splitlines()
    docs = [json.loads(line) for line in out if line.startswith("{")]
    assert docs, server.logs()
    assert len(docs) == len([line for line in out if line.strip()])  # every stdout line is JSON
    access = [d for d in docs if d["logger"] == "uvicorn.access"]
    assert {"method": "GET", "path": "/login", "status": 200}.items() <= access[-1].items()
    assert "checkpoint verifier key (publish it): trace.example.cn+" in server.logs()
    assert "is not a mounted volume" in server.logs()  # tmp_path is no mount: said, not fatal
    assert "/api/v1/auth/token" in server.logs()
    assert SECRET not in server.logs()


def test_entrypoint_refuses_a_signing_directory_that_is_not_there(tmp_path) -> None:
    env = base_env(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none", VENV_BIN)
    env["TRACE_SIGNING_KEY_FILE"] = str(tmp_path / "not-mounted" / "platform.key")
    r = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh")], env=env, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2
    assert f"{tmp_path / 'not-mounted'} does not exist: mount the signing volume" in r.stderr
    assert not (tmp_path / "not-mounted").exists()  # no key made somewhere else


def test_entrypoint_gives_up_on_an_unreachable_database(tmp_path) -> None:
    port = free_port()  # nothing listens there
    env = base_env(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{port}/x", VENV_BIN)
    env["TRACE_DB_WAIT_S"] = "2"
    t = time.monotonic()
    r = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    assert time.monotonic() - t >= 2  # it waited
    assert f"127.0.0.1:{port}/x unreachable after 2 s" in r.stderr


# ---------------------------------------------------------------- /readyz on both databases


def test_readyz_is_503_naming_the_reason_until_the_database_is_at_head(app, engine) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from foodtrace.db import head_revision

    with TestClient(app) as c:
        assert c.get("/readyz").json() == {"status": "ok"}
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["reason"] == (
            f"database at migration 0005, code at {head_revision()}: run foodtrace migrate"
        )
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version"))
        assert "database not migrated" in c.get("/readyz").json()["reason"]
        assert c.get("/healthz").status_code == 200


def test_readyz_is_503_when_the_database_is_gone(fresh_pg, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from foodtrace.config import Settings
    from webapp.main import create_app

    app = create_app(Settings(database_url=fresh_pg, checkpoint_interval_s=0))
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        app.state.engine.dispose()
        name = make_url(fresh_pg).database
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["reason"].startswith("database unreachable: ")
        assert name in r.json()["reason"]  # PostgreSQL says which database does not exist


# ---------------------------------------------------------------- compose.yaml


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def docker_compose() -> str:
    tool = shutil.which("docker-compose")
    if tool is None:
        if IN_CI:
            pytest.fail("docker-compose is missing: scripts/test installs it (apt-get)")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    return tool


def compose_config(tool: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FOODTRACE_DB_PASSWORD="pw", TRACE_PUBLIC_BASE_URL="https://t.example")
    return subprocess.run(
        [tool, "-f", str(path), "config"], env=env, capture_output=True, text=True, timeout=60
    )


def test_compose_file_is_valid_for_docker_compose(tmp_path) -> None:
    tool = docker_compose()
    ok = compose_config(tool, DOCKER / "compose.yaml")
    assert ok.returncode == 0, ok.stderr
    resolved = yaml.safe_load(ok.stdout)
    assert resolved["services"]["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    # the validator is no rubber stamp: a misspelt condition is refused
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        (DOCKER / "compose.yaml").read_text().replace("service_healthy", "service_healty")
    )
    refused = compose_config(tool, bad)
    assert refused.returncode != 0
    assert "service_healty" in refused.stderr


def test_compose_runs_the_app_after_a_healthy_postgres_16_with_the_key_on_a_volume() -> None:
    doc = compose()
    db, app = doc["services"]["db"], doc["services"]["app"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert app["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    assert app["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    # the signing key: on a named volume of its own, where TRACE_SIGNING_KEY_FILE points
    env = app["environment"]
    key_dir = str(Path(env["TRACE_SIGNING_KEY_FILE"]).parent)
    mounts = dict(v.split(":", 1) for v in app["volumes"])
    assert mounts == {"signing": key_dir}
    assert set(doc["volumes"]) == {"pgdata", "signing"}
    # configuration only through TRACE_* variables; no password or key written in the file
    assert all(k.startswith("TRACE_") for k in env)
    assert "${FOODTRACE_DB_PASSWORD:?" in env["TRACE_DATABASE_URL"]
    assert "${FOODTRACE_DB_PASSWORD:?" in db["environment"]["POSTGRES_PASSWORD"]
    text = (DOCKER / "compose.yaml").read_text()
    assert "PRIVATE+KEY" not in text
    assert "secrets:" not in text
    # the settings it names exist
    from foodtrace.config import Settings

    known = {f"TRACE_{n.upper()}" for n in Settings.model_fields}
    assert set(env) <= known, set(env) - known


# ---------------------------------------------------------------- the Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each instruction, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            word, _, args = pending.partition(" ")
            out.append((word.upper(), args.strip()))
            pending = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last = max(i for i, (w, _) in enumerate(steps) if w == "FROM")
    return steps[last:]


def test_dockerfile_pins_dependencies_runs_unprivileged_and_checks_health() -> None:
    steps = dockerfile()
    assert all(a.split()[0] == "python:3.11-slim" for w, a in steps if w == "FROM")
    runs = [a for w, a in steps if w == "RUN"]
    install = next(a for a in runs if "pip install" in a)
    assert "--constraint docker/constraints.txt" in install
    assert ("COPY", "docker/constraints.txt docker/constraints.txt") in steps
    # the constraints file is what docker/constraints.sh writes, and pins every dependency
    pins = [line for line in (DOCKER / "constraints.txt").read_text().splitlines() if "==" in line]
    assert "docker/constraints.txt" in (DOCKER / "constraints.sh").read_text()
    names = {p.split("==")[0].lower().replace("_", "-") for p in pins}
    assert {"fastapi", "uvicorn", "sqlalchemy", "psycopg", "alembic", "cryptography"} <= names
    assert "pytest" not in names  # runtime only
    final = final_stage()
    user = [a for w, a in final if w == "USER"]
    assert user
    assert user[-1].split(":")[0] not in ("root", "0")
    health = [a for w, a in final if w == "HEALTHCHECK"]
    assert health
    assert "/healthz" in health[0]
    # nothing secret is copied in: only the sources, never the key or the repository root
    copies = [a.split()[0] for w, a in steps if w == "COPY" and "--from" not in a]
    assert "." not in copies
    assert not any("key" in c for c in copies)
    env = " ".join(a for w, a in final if w == "ENV")
    assert "TRACE_SIGNING_KEY_FILE=/var/lib/foodtrace/signing/" in env


def image_command() -> list[str]:
    """ENTRYPOINT + CMD of the final stage, the entrypoint mapped back to its source file."""
    final = final_stage()
    entry = json.loads(next(a for w, a in final if w == "ENTRYPOINT"))
    cmd = json.loads(next(a for w, a in final if w == "CMD"))
    sources = {}
    for w, a in final:
        if w == "COPY" and "--from" not in a:
            src, dest = a.split()
            sources[Path(dest).name] = ROOT / src
    return ["sh", str(sources[entry[0]]), *entry[1:], *cmd]


@pytest.mark.slow  # 51 s on a quiet machine, 171-341 s under load: the pip install of the image
def test_the_images_command_starts_the_app_from_a_clean_venv(fresh_pg, tmp_path) -> None:
    """The build stage replayed: the COPY sources into a build folder, its RUN (python -m venv,
    pip install with the constraints file) with a temporary prefix for /opt/foodtrace; then
    ENTRYPOINT + CMD with the image's ENV, on a free port."""
    started = time.monotonic()
    steps = dockerfile()
    build = steps[: max(i for i, (w, _) in enumerate(steps) if w == "FROM")]
    src, prefix = tmp_path / "src", tmp_path / "opt-foodtrace"
    src.mkdir()
    for w, a in build:
        if w != "COPY":
            continue
        *sources, dest = a.split()
        for name in sources:
            # "COPY a b ./" puts a and b in the folder; "COPY trace trace" names the target
            target = src / name if dest.endswith("/") else src / dest
            if (ROOT / name).is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
                shutil.copytree(ROOT / name, target, ignore=ignore)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / name, target)
    run = next(a for w, a in build if w == "RUN" and "pip install" in a)
    run = run.replace("/opt/foodtrace", str(prefix)).replace(
        "python -m venv", f"{sys.executable} -m venv"
    )
    r = subprocess.run(["sh", "-ec", run], cwd=src, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    installed = time.monotonic() - started
    # the clean environment holds exactly the pinned versions
    frozen = subprocess.run(
        [str(prefix / "bin" / "python"), "-m", "pip", "freeze", "--exclude", "foodtrace"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    pins = [x for x in (DOCKER / "constraints.txt").read_text().split() if "==" in x]
    assert sorted(frozen, key=str.lower) == sorted(pins, key=str.lower)

    port = free_port()
    env = base_env(tmp_path, fresh_pg, prefix / "bin")
    env.pop("PYTHONPATH", None)
    for w, a in final_stage():
        if w == "ENV":
            for item in shlex.split(a):
                k, _, v = item.partition("=")
                if k.startswith("TRACE_") and k != "TRACE_SIGNING_KEY_FILE":
                    env[k] = v
    argv = [x if x != "8000" else str(port) for x in image_command()]
    argv = [x if x != "0.0.0.0" else "127.0.0.1" for x in argv]
    cwd = tmp_path / "run"
    cwd.mkdir()  # outside the checkout: the clean venv must not import the sources from there
    server = Server(argv, env, cwd, port)
    try:
        server.wait_healthy()
        check_ready_then_not_migrated(server, fresh_pg)
        login = httpx.get(server.base + "/login")
        assert login.status_code == 200
        assert "<form" in login.text
        css = httpx.get(server.base + "/static/app.css")
        assert css.status_code == 200, css.status_code
        import foodtrace

        which = subprocess.run(
            [str(prefix / "bin" / "python"), "-c", "import foodtrace; print(foodtrace.__file__)"],
            capture_output=True, text=True, cwd=cwd, check=True,
        ).stdout  # fmt: skip
        assert str(prefix) in which
        assert str(Path(foodtrace.__file__).parent) not in which
    finally:
        server.stop()
    print(f"clean venv: install {installed:.0f} s, total {time.monotonic() - started:.0f} s")


# ---------------------------------------------------------------- README


def test_readme_lists_every_setting_with_its_default() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import settings_table
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_table.rewritten(readme) == readme, "run scripts/settings_table.py"
    from foodtrace.config import Settings

    for name in Settings.model_fields:
        assert f"| `TRACE_{name.upper()}` |" in readme
    assert "docker compose -f docker/compose.yaml up" in readme


# ---------------------------------------------------------------- one background signer


def test_one_process_leads_the_background_signing_at_a_time(engine, tmp_path) -> None:
    """The leader lock: a second holder is refused while the first holds it, and takes over
    once the first lets go (on PostgreSQL an advisory lock, on SQLite a file lock)."""
    from webapp.checkpointer import LeaderLock

    key = tmp_path / "signing.key"
    first, second = LeaderLock(engine, key), LeaderLock(engine, key)
    try:
        assert first.acquire()
        assert first.acquire()  # kept, not re-taken
        assert not second.acquire()
        first.release()
        assert not first.held
        assert second.acquire()
        assert not first.acquire()
    finally:
        first.release()
        second.release()


# ---------------------------------------------------------------- docs/scaling.md


def test_the_scaling_plan_gives_every_table_its_distribution_column() -> None:
    """docs/scaling.md's table of tables is the metadata's: each table once, distributed by the
    column bench.partitioned (and tests/test_single_enterprise.py) derive, or a reference/local
    table when it belongs to no ledger."""
    from bench.partitioned import partition_key, tables

    doc = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| `(\w+)` \| (distributed|reference|local) \| (.*?) \|", doc, re.M)
    }
    names = {t.name for t in tables()}
    assert set(rows) == names, (names - set(rows), set(rows) - names)
    for t in tables():
        kind, column = rows[t.name]
        key = partition_key(t)
        if key is None:
            assert kind in ("reference", "local"), t.name
        else:
            assert (kind, column) == ("distributed", f"`{key}`"), t.name
