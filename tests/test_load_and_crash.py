"""The server as a separate process under load, and killed (SIGKILL) in the middle of it.

``foodtrace serve`` runs in a process of its own on a free port, against the
test's fresh database, signing checkpoints in the background every half
second. Many HTTP clients (threads, one ``httpx.Client`` each, an ERP-style
bearer token) append self-inspections, every request with an Idempotency-Key,
and keep what they were acknowledged (2xx: seq and hash). A client whose
request got no answer (the server was killed) retries it with the same key
until it gets one, as a well-behaved ERP would. Afterwards, from the database:

- every ledger verifies in one snapshot (hashes, chain, derived rows replayed,
  Merkle compact range, every stored checkpoint and its signature, and the
  signer's own record of what it signed);
- ``seq`` runs 1..n; every acknowledged entry is there with its hash; every
  request was written exactly once, however often it was sent (duplicates
  are sent on purpose: sequentially, and concurrently by many clients);
- no derived row or idempotency key without its entry.

The sizes are small in CI (seconds); ``FOODTRACE_LONG=1`` runs minutes
(RELIABILITY.md has the figures and the commands). Figures are printed
(``pytest -s``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from foodtrace.accounts.service import Role, add_user, issue_token
from foodtrace.clock import SystemClock, local_date
from foodtrace.config import Settings
from foodtrace.db import read_session, write_session
from foodtrace.imports import columns
from foodtrace.ledger.checkpoints import checkpoint
from foodtrace.ledger.models import Entry, IdempotencyKey, Ledger
from foodtrace.records.models import Customer, SelfInspection
from foodtrace.tlog.signer import CheckpointSigner, load_signed_state, load_verifier
from foodtrace.verify import verify_consistently
from schemas.identifiers import credit_code_check_char
from schemas.records import RecordKind

from factories import BEVERAGE, DAIRY, DISTRIBUTOR, MEAT, SUGAR, WORKSHOP, register

LONG = os.environ.get("FOODTRACE_LONG", "") == "1"
SEED = int(os.environ.get("FOODTRACE_SEED", "0")) or random.SystemRandom().randrange(1, 10**6)

CLIENTS = 32
LOAD_SECONDS = 120.0 if LONG else 3.0
KILLS = 20 if LONG else 2
KILL_AFTER = (1.0, 10.0) if LONG else (0.5, 1.5)
"""Seconds of load (uniformly drawn) between a restart and the next kill."""
IMPORT_ROWS = 20_000 if LONG else 2000
IMPORT_KILLS = 3 if LONG else 1
IMPORT_KILL_AFTER = (0.5, 15.0) if LONG else (0.2, 1.0)
"""Seconds (uniformly drawn) between the import's first write and the kill."""

CODES = [BEVERAGE, SUGAR, MEAT, DAIRY, WORKSHOP, DISTRIBUTOR]
for _tail in ("MA3TEXT01", "MA3TEXT02"):
    CODES.append("91370404" + _tail + credit_code_check_char("91370404" + _tail))


# ------------------------------------------------------------------ the server process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python -m foodtrace serve`` on a free port, against ``db_url``; killed or stopped."""

    def __init__(self, db_url: str, log: Path) -> None:
        self.db_url = db_url
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    def start(self, timeout: float = 90.0) -> float:
        """Start and wait until it answers; the seconds that took."""
        env = {
            **os.environ,
            "TRACE_DATABASE_URL": self.db_url,
            "TRACE_CHECKPOINT_INTERVAL_S": "0.5",
            "TRACE_POOL_SIZE": "8",
            "TRACE_PUBLIC_BASE_URL": self.url,
        }
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "foodtrace", "serve", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"the server did not answer within {timeout} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no rollback by the process, no flushing of anything."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
def server(db_url: str, engine: Engine, tmp_path: Path) -> Iterator[Server]:
    srv = Server(db_url, tmp_path / "server.log")
    yield srv
    srv.stop()


def _enterprises(engine: Engine, codes: list[str]) -> dict[str, str]:
    """Register the enterprises and give each an API token (as its ERP would hold)."""
    clock = SystemClock()
    tokens = {}
    for code in codes:
        register(engine, clock, code)
        with write_session(engine) as s:
            user = add_user(
                session=s,
                username=f"erp-{code[-6:].lower()}",
                password="load test pass 2026",
                role=Role.ENTERPRISE_USER,
                now=clock.now(),
                enterprise_credit_code=code,
            )
            tokens[code] = issue_token(session=s, user=user, now=clock.now(), ttl=None, name="erp")
    return tokens


# ------------------------------------------------------------------ the clients


@dataclass(frozen=True)
class Ack:
    code: str
    seq: int
    hash: str
    marker: str
    replayed: bool


@dataclass
class Load:
    """``clients`` threads appending to the ledgers of ``tokens`` (client n to ledger n mod k)."""

    url: str
    tokens: dict[str, str]
    name: str = "run"
    """Prefixes every marker and key, so that several runs can share ledgers."""
    clients: int = CLIENTS
    bursts: int = 0
    """Rounds in which every client sends the same request with the same key at once."""
    acks: list[Ack] = field(default_factory=list)
    sent: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    burst_answers: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._barrier = threading.Barrier(self.clients)
        self._day = (local_date(SystemClock().now()) - timedelta(days=1)).isoformat()
        self._began = 0.0

    def body(self, marker: str) -> dict[str, object]:
        return {
            "period": "daily",
            "period_date": self._day,
            "items": [{"item": "车间卫生", "result": "ok"}],
            "inspector": f"检查员 {marker}",
        }

    def send(self, http: httpx.Client, code: str, marker: str, key: str) -> httpx.Response:
        """POST until there is an answer: a request that got none is retried with its key."""
        deadline = time.monotonic() + 180
        pause = 0.05
        while True:
            self._count(self.sent, "requests")
            try:
                r = http.post(
                    "/api/v1/self-inspections",
                    json=self.body(marker),
                    headers={"Idempotency-Key": key},
                )
            except httpx.TransportError as exc:
                self._count(self.errors, f"no answer ({type(exc).__name__}), retried")
                if time.monotonic() > deadline:
                    raise
                time.sleep(pause)  # the server is down: back off, up to half a second
                pause = min(pause * 2, 0.5)
                continue
            if r.status_code in (200, 201):
                doc = r.json()
                ack = Ack(code, doc["seq"], doc["hash"], marker, doc["replayed"])
                if pause > 0.05 and doc["replayed"]:
                    # Written before the kill, its answer lost: the retry got the first result.
                    self._count(self.sent, "written, answer lost, replayed")
                with self._lock:
                    self.acks.append(ack)
            else:
                self._count(self.errors, f"HTTP {r.status_code}")
                with self._lock:
                    self.failures.append(f"{key}: {r.status_code} {r.text[:300]}")
            return r

    def _count(self, counter: Counter, what: str) -> None:
        with self._lock:
            counter[what] += 1

    def _client(self, n: int) -> None:
        codes = sorted(self.tokens)
        code = codes[n % len(codes)]
        headers = {"Authorization": f"Bearer {self.tokens[code]}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as http:
            for r in range(self.bursts):
                self._barrier.wait(timeout=120)
                key = f"{self.name}.burst-{code[-6:]}-{r}"
                resp = self.send(http, code, key, key)
                if resp.status_code in (200, 201):
                    doc = resp.json()
                    with self._lock:
                        self.burst_answers.setdefault(key, []).append(
                            (resp.status_code, doc["seq"], doc["hash"])
                        )
            i = 0
            while not self.stop.is_set():
                i += 1
                marker = f"{self.name}.c{n}-{i}"
                first = self.send(http, code, marker, f"k-{marker}")
                if i % 7 == 0 and first.status_code in (200, 201):
                    # A retry of a request that did get its answer: the same entry, not a new one.
                    again = self.send(http, code, marker, f"k-{marker}")
                    a, b = first.json(), again.json()
                    if again.status_code != 200 or (a["seq"], a["hash"]) != (b["seq"], b["hash"]):
                        with self._lock:
                            self.failures.append(f"retry of {marker}: {again.status_code} {b}")

    def _run(self, n: int) -> None:
        try:
            self._client(n)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            with self._lock:
                self.failures.append(f"client {n}: {exc!r}")

    def start(self) -> None:
        self._began = time.monotonic()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.clients)
        ]
        for t in self._threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=240)
        self.seconds = time.monotonic() - self._began
        assert not any(t.is_alive() for t in self._threads), "a client hung"

    @property
    def written(self) -> int:
        return len({(a.code, a.seq) for a in self.acks})


# ------------------------------------------------------------------ the checks


def _ledger_id(session, code: str) -> int:  # type: ignore[no-untyped-def]
    return session.execute(select(Ledger.id).where(Ledger.credit_code == code)).scalar_one()


def check_database(engine: Engine, load: Load) -> dict[str, int]:
    """Everything the module docstring promises, from the database; the entries per ledger."""
    key_file = Settings().signing_key_file
    verifier = load_verifier(key_file)
    assert verifier is not None, "the server made no signing key"
    reports = verify_consistently(
        engine=engine, verifiers=[verifier], signed_state=load_signed_state(key_file)
    )
    for r in reports:
        assert r.ok, (r.credit_code, r.problems[:3])
    assert sum(r.checkpoints_checked for r in reports) > 0, "no checkpoint was signed"
    acked: dict[tuple[str, int], Ack] = {}
    for a in load.acks:
        seen = acked.setdefault((a.code, a.seq), a)
        assert (seen.hash, seen.marker) == (a.hash, a.marker), (seen, a)
    sizes = {}
    with read_session(engine) as s:
        for code in load.tokens:
            lid = _ledger_id(s, code)
            rows = s.execute(
                select(Entry.seq, Entry.hash, Entry.kind, Entry.body)
                .where(Entry.ledger_id == lid)
                .order_by(Entry.seq)
            ).all()
            n = len(rows)
            assert [r.seq for r in rows] == list(range(1, n + 1))
            assert s.get(Ledger, lid).size == n
            markers: Counter = Counter()
            for r in rows:
                if r.kind == "self_inspection":
                    markers[json.loads(r.body)["body"]["inspector"].removeprefix("检查员 ")] += 1
                ack = acked.get((code, r.seq))
                if ack is not None:
                    assert bytes(r.hash).hex() == ack.hash, (code, r.seq)
                    assert f"检查员 {ack.marker}" in r.body.decode(), (code, r.seq)
            mine = [a for a in load.acks if a.code == code]
            assert {a.seq for a in mine} <= {r.seq for r in rows}
            twice = [m for m, c in markers.items() if c != 1]
            assert not twice, f"written more than once: {twice[:5]}"
            assert {a.marker for a in mine} == set(markers)
            derived = s.execute(
                select(func.count())
                .select_from(SelfInspection)
                .where(SelfInspection.enterprise_id == lid)
            ).scalar_one()
            assert derived == sum(markers.values())
            keys = s.execute(
                select(IdempotencyKey.seq).where(IdempotencyKey.ledger_id == lid)
            ).scalars()
            keys = list(keys)
            assert len(keys) == len(markers), "an idempotency key without its entry, or missing"
            assert max(keys, default=0) <= n
            sizes[code] = n
    return sizes


def _sign_all(engine: Engine) -> list[int]:
    """Sign a checkpoint of every ledger now: the signer must accept each."""
    settings = Settings()
    signer = CheckpointSigner.open(settings.signing_key_file, name=settings.platform_name)
    sizes = []
    with read_session(engine) as s:
        ids = list(s.execute(select(Ledger.id).order_by(Ledger.id)).scalars())
    for lid in ids:
        with write_session(engine) as s:
            cp = checkpoint(
                session=s, ledger_id=lid, signer=signer, clock=SystemClock(), force=True
            )
            sizes.append(cp.size)
    return sizes


def _report(what: str, load: Load, db: str, **extra: object) -> None:
    rate = load.written / load.seconds if load.seconds else 0.0
    errors = dict(load.errors) or "none"
    more = "".join(f", {k} {v}" for k, v in extra.items())
    print(
        f"\n[reliability] {what} ({db}): {load.clients} clients, {len(load.tokens)} ledgers, "
        f"{load.written} entries in {load.seconds:.1f} s = {rate:.0f} entries/s, "
        f"{load.sent['requests']} requests "
        f"({load.sent['written, answer lost, replayed']} written but unanswered, replayed on "
        f"retry), errors: {errors}{more}"
    )


# ------------------------------------------------------------------ load


def _append_once_more(load: Load) -> None:
    """One more append to every ledger after the run (and its restarts): it must be a 201."""
    for code, token in load.tokens.items():
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=load.url, headers=headers, timeout=60) as http:
            marker = f"{load.name}.after-{code[-6:]}"
            r = load.send(http, code, marker, f"k-{marker}")
            assert r.status_code == 201, r.text


def _run(url: str, tokens: dict[str, str], name: str) -> Load:
    """CLIENTS clients on these ledgers for LOAD_SECONDS, after 3 bursts of one key each."""
    load = Load(url, tokens, name=name, bursts=3)
    load.start()
    time.sleep(LOAD_SECONDS)
    load.finish()
    assert not load.failures, load.failures[:5]
    assert not load.errors, load.errors
    # Every concurrent burst of one key: one entry, one 201, the same answer for everyone.
    assert len(load.burst_answers) == 3 * len(tokens)
    for key, answers in load.burst_answers.items():
        assert len(answers) == CLIENTS // len(tokens), key
        assert [s for s, _, _ in answers].count(201) == 1, (key, answers)
        assert len({(seq, h) for _, seq, h in answers}) == 1, (key, answers)
    _append_once_more(load)
    return load


@pytest.mark.parametrize(
    "db_url", ["postgresql", pytest.param("sqlite", marks=pytest.mark.slow)], indirect=True
)
def test_concurrent_clients_lose_nothing_and_write_nothing_twice(db_url, engine, server) -> None:
    """32 clients on one ledger, then 32 on eight (four each), against one server process."""
    tokens = _enterprises(engine, CODES[:8])
    server.start()
    one = _run(server.url, {BEVERAGE: tokens[BEVERAGE]}, "one")
    eight = _run(server.url, tokens, "eight")
    server.stop()
    both = Load(server.url, tokens)
    both.acks = one.acks + eight.acks
    sizes = check_database(engine, both)
    _sign_all(engine)
    for what, load in (("load, one ledger", one), ("load, eight ledgers", eight)):
        _report(what, load, engine.dialect.name)
    print(f"[reliability] entries per ledger afterwards: {sorted(sizes.values())}")


# ------------------------------------------------------------------ crash under load


def _wait_for(done, timeout: float) -> None:  # type: ignore[no-untyped-def]
    """Poll ``done()`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_sigkill_under_load_loses_no_acknowledged_entry(db_url, engine, server) -> None:
    rng = random.Random(SEED)
    tokens = _enterprises(engine, CODES[:2])
    server.start()
    load = Load(server.url, tokens)
    load.start()
    restarts = []
    moments = []
    for _ in range(KILLS):
        # Under load means after the clients are being answered again: on a slow machine the
        # first answers after a (re)start can take longer than the drawn wait.
        since = len(load.acks)
        _wait_for(lambda n=since: len(load.acks) > n or bool(load.failures), timeout=60)
        assert not load.failures, load.failures[:5]
        assert len(load.acks) > since, "no request was answered within 60 s of a (re)start"
        wait = rng.uniform(*KILL_AFTER)
        moments.append(round(wait, 2))
        time.sleep(wait)
        server.kill()
        restarts.append(server.start())
    time.sleep(min(KILL_AFTER))  # the load goes on after the last restart
    load.finish()
    assert not load.failures, load.failures[:5]
    assert set(load.errors) <= {e for e in load.errors if e.startswith("no answer")}, load.errors
    _append_once_more(load)  # the next append works
    server.stop()
    check_database(engine, load)
    _sign_all(engine)  # and the signer accepts the ledgers as they are
    _report(
        "crash",
        load,
        engine.dialect.name,
        kills=server.kills,
        kill_after_s=moments,
        restart_s=[round(r, 1) for r in restarts],
        seed=SEED,
    )


# ------------------------------------------------------------------ a killed bulk import


def _customers_csv(rows: int, prefix: str) -> bytes:
    cols = columns(RecordKind.CUSTOMER)
    values = {
        "code": lambda i: f"{prefix}{i:06d}",
        "name": lambda i: f"枣庄经销商 {i} 号",
        "address": lambda i: f"山东省枣庄市市中区光明路 {i} 号",
        "contact": lambda i: f"138{i:08d}",
    }
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([c.header_zh for c in cols])
    for i in range(rows):
        w.writerow([values[c.key](i) if c.key in values else "" for c in cols])
    return out.getvalue().encode("utf-8-sig")


def _writer_active(db_url: str) -> bool:
    """Whether a transaction of the server holds written rows that are not committed yet."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return True
        finally:
            conn.close()
    conninfo = f"host={url.host} port={url.port or 5432} user={url.username} dbname={url.database}"
    if url.password:
        conninfo += f" password={url.password}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        ).fetchone()
        return bool(row and row[0])


def _import(url: str, token: str, content: bytes, timeout: float = 600) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/imports/customers",
        params={"dry_run": "false"},
        files={"file": ("customers.csv", content, "text/csv")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )


def _imported(engine: Engine, lid: int, prefix: str) -> int:
    with read_session(engine) as s:
        return s.execute(
            select(func.count())
            .select_from(Customer)
            .where(Customer.enterprise_id == lid, Customer.code.startswith(prefix))  # type: ignore[attr-defined]
        ).scalar_one()


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_a_bulk_import_killed_while_it_runs_is_all_or_nothing(db_url, engine, server) -> None:
    rng = random.Random(SEED)
    tokens = _enterprises(engine, [BEVERAGE])
    token = tokens[BEVERAGE]
    with read_session(engine) as s:
        lid = _ledger_id(s, BEVERAGE)
    content = _customers_csv(IMPORT_ROWS, "IMP")
    _sign_all(engine)  # so that the server's checkpointer has nothing to write meanwhile
    server.start()
    outcomes = []
    for _ in range(IMPORT_KILLS):
        answer: list[object] = []
        upload = threading.Thread(
            target=_upload, args=(server.url, token, content, answer), daemon=True
        )
        upload.start()
        began = time.monotonic()
        while not _writer_active(db_url):  # the import's transaction has written rows
            assert upload.is_alive() or not answer, f"the import ended before it was seen: {answer}"
            assert time.monotonic() - began < 120, "the import never started writing"
            time.sleep(0.02)
        writing = time.monotonic() - began
        wait = rng.uniform(*IMPORT_KILL_AFTER)
        time.sleep(wait)
        server.kill()
        upload.join(timeout=60)
        assert answer, "the upload thread hung"
        server.start()
        found = _imported(engine, lid, "IMP")
        assert found in (0, IMPORT_ROWS), f"{found} of {IMPORT_ROWS} rows: half an import"
        if not isinstance(answer[0], httpx.TransportError):  # it finished before the kill
            assert isinstance(answer[0], httpx.Response), answer
            assert answer[0].status_code == 201, answer[0].text[:500]
            assert found == IMPORT_ROWS
        outcomes.append((round(writing + wait, 2), found))
        if found:
            break
    # Nothing half-written: the ledger verifies, the signer accepts it; then the import succeeds.
    with read_session(engine) as s:
        size_after_kill = s.get(Ledger, lid).size
    began = time.monotonic()
    r = _import(server.url, token, content)
    took = time.monotonic() - began
    if outcomes[-1][1] == IMPORT_ROWS:
        assert r.status_code == 422, r.text  # every code exists already: nothing written
    else:
        assert r.status_code == 201, r.text[:2000]
        doc = r.json()
        assert (doc["written"], doc["first_seq"]) == (IMPORT_ROWS, size_after_kill + 1)
    server.stop()
    assert _imported(engine, lid, "IMP") == IMPORT_ROWS
    load = Load(server.url, tokens)
    check_database(engine, load)
    _sign_all(engine)
    print(
        f"\n[reliability] import kill ({engine.dialect.name}): {IMPORT_ROWS} rows, "
        f"killed at {[o[0] for o in outcomes]} s after the upload began, rows found after "
        f"restart {[o[1] for o in outcomes]}; full import afterwards {took:.1f} s, seed {SEED}"
    )


def _upload(url: str, token: str, content: bytes, answer: list[object]) -> None:
    """The import, in a thread: its response, or the error of a connection the kill cut."""
    try:
        answer.append(_import(url, token, content))
    except httpx.TransportError as exc:
        answer.append(exc)
