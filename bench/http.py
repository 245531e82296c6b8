"""The HTTP row: 8 ledgers appended to concurrently over HTTP, load from a separate process.

``run_http`` starts the server (``python -m bench.http server core|bare PORT``) and the
load (``python -m bench.http load …``) as child processes. ``core`` is the real
application (``webapp.main.create_app`` under uvicorn, POST /api/v1/ccp-records with
a bearer token); ``bare`` is a minimal FastAPI endpoint doing the append row's bare
psycopg SQL. Peak RSS is the server's VmHWM from /proc; the server's CPU time per request
(user + system from /proc/PID/stat over the load, divided by the requests sent) is the
figure to compare on a shared machine, where rates and latencies move with the load.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

CONCURRENCY = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and server.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def _peak_rss_mb(pid: int) -> float | None:
    """The peak RSS (VmHWM) of ``pid`` and of its child processes (uvicorn's workers), summed."""
    total, found = 0.0, False
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
                        found = True
        except OSError:
            continue
    return total if found else None


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) of ``pid``, its reaped children and its live descendants, in s.

    From /proc/PID/stat (utime, stime, cutime, cstime): a count that does not depend on how
    busy the machine is, unlike a rate or a latency.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for k, p in enumerate([pid, *_children(pid)]):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (field 3): utime, stime, cutime, cstime are fields 14-17
        total += int(fields[11]) + int(fields[12])
        if k == 0:
            total += int(fields[13]) + int(fields[14])
    return total / tick


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        return out
    return [d for c in out for d in (c, *_children(c))]


def run_http(engine: Any, dist: Any, sc: Any) -> list[Any]:
    import psycopg

    from bench.district import YEAR, Row, pct, pg_url, scratch
    from foodtrace.accounts.service import Role, create_api_token, create_user
    from foodtrace.db import write_session

    ids = dist.ids[-CONCURRENCY:]
    tokens = []
    with write_session(engine) as s:
        for lid in ids:
            user = create_user(
                session=s,
                # a suffix of its own: --reuse measures the same ledgers again
                username=f"bench-{dist.run.lower()}-{lid}-{secrets.token_hex(3)}",
                password="bench-password",
                role=Role.ENTERPRISE_USER,
                now=dist.clock.now(),
                enterprise_id=lid,
            )
            s.flush()
            tokens.append(
                create_api_token(session=s, user_id=user.id, name="bench", now=dist.clock.now())
            )
    with psycopg.connect(pg_url(engine)) as conn:
        scratch(conn, ids)
    last_day = (YEAR + timedelta(days=sc.days - 1)).isoformat()
    seconds = 10 if sc.enterprises < 100 else 30
    env = dict(os.environ)
    # The server signs checkpoints in the background as in production (every second)
    # unless BENCH_CHECKPOINT_INTERVAL_S says otherwise (0: off, to see what signing costs).
    env["TRACE_CHECKPOINT_INTERVAL_S"] = os.environ.get("BENCH_CHECKPOINT_INTERVAL_S", "1")
    # Server processes, the same number for both servers (BENCH_HTTP_WORKERS, default 1).
    workers = int(os.environ.get("BENCH_HTTP_WORKERS", "1"))
    results: dict[str, dict[str, Any]] = {}
    if True:
        for mode in ("bare", "core"):
            port = _free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "bench.http", "server", mode, str(port), str(workers)],
                env=env,
            )
            try:
                _wait(port, server)
                cfg = {
                    "url": f"http://127.0.0.1:{port}",
                    "mode": mode,
                    "ids": ids,
                    "tokens": tokens,
                    "lot": f"L{sc.days - 1:03d}",
                    "day": last_day,
                    "seconds": seconds,
                }
                cpu0 = _cpu_s(server.pid)
                out = subprocess.run(
                    [sys.executable, "-m", "bench.http", "load", json.dumps(cfg)],
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if out.returncode or not out.stdout.strip():
                    raise RuntimeError(f"load ({mode}) failed: {out.stderr[-500:]}")
                if out.stderr:
                    sys.stderr.write(out.stderr[-1000:])
                res = json.loads(out.stdout.strip().splitlines()[-1])
                # every request the load sent (the warm-up second and errors included)
                res["cpu_ms"] = (_cpu_s(server.pid) - cpu0) * 1e3 / max(res["n"], 1)
                res["rss_mb"] = _peak_rss_mb(server.pid)
                results[mode] = res
            finally:
                server.terminate()
                server.wait(10)
    core, bare = results["core"], results["bare"]
    row = Row(
        f"append over HTTP, {CONCURRENCY} ledgers concurrently, load in another process",
        "req/s",
        core["rate"],
        p50=statistics.median(core["lat"]),
        p95=pct(core["lat"], 0.95),
        baseline_name="minimal FastAPI endpoint doing the bare SQL",
        baseline=bare["rate"],
        baseline_p95=pct(bare["lat"], 0.95),
        target="≥ 60 % of baseline, p95 ≤ 50 ms",
        note=f"{seconds} s each, {CONCURRENCY} httpx clients (threads) in one load process; "
        f"{workers} server process{'es' if workers > 1 else ''} (uvicorn workers) each; "
        f"errors core {core['errors']}, bare {bare['errors']}; {os.cpu_count()} cores shared "
        "by server, load and PostgreSQL; background checkpoint signing every "
        f"{env['TRACE_CHECKPOINT_INTERVAL_S']} s; server CPU per request core "
        f"{core['cpu_ms']:.2f} ms, bare {bare['cpu_ms']:.2f} ms",
    )
    row.met = (row.ratio or 0) >= 0.6 and (row.p95 or 1e9) <= 50
    rss = Row(
        "server peak RSS under the HTTP load (VmHWM)",
        "MB",
        core["rss_mb"],
        baseline_name="minimal FastAPI server",
        baseline=bare["rss_mb"],
        target="≤ 300 MB",
    )
    rss.met = rss.value is not None and rss.value <= 300
    cpu = Row(
        "server CPU time per request under the HTTP load (user + system, /proc)",
        "ms",
        core["cpu_ms"],
        baseline_name="minimal FastAPI server",
        baseline=bare["cpu_ms"],
        note="all requests the load sent, warm-up included; the core server's background "
        "checkpoint signing included",
    )
    return [row, rss, cpu]


# ---------------------------------------------------------------- child processes


def _bare_app() -> Any:
    import psycopg
    from fastapi import FastAPI

    from foodtrace.config import Settings

    url = Settings().database_url.replace("postgresql+psycopg://", "postgresql://")
    local = threading.local()
    app = FastAPI()

    def conn() -> psycopg.Connection:
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = psycopg.connect(url)
        return c

    @app.post("/append/{lid}")
    def append(lid: int, data: dict[str, Any]) -> dict[str, Any]:
        c = conn()
        with c.transaction():
            size, head = c.execute(
                "SELECT size, head_hash FROM bench_ledgers WHERE id = %s FOR UPDATE", (lid,)
            ).fetchone()
            seq = size + 1
            lot_seq = c.execute(
                "SELECT record_seq FROM lots WHERE enterprise_id = %s AND code = %s",
                (lid, data["lot_code"]),
            ).fetchone()[0]
            entry = {"seq": seq, "kind": "ccp_record", "prev_hash": bytes(head).hex(), "body": data}
            body = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
            digest = hashlib.sha256(b"\x00" + body).digest()
            c.execute(
                "INSERT INTO bench_entries (ledger_id, seq, kind, event_time, recorded_at,"
                " prev_hash,"
                " hash, body) VALUES (%s,%s,'ccp_record',%s,%s,%s,%s,%s)",
                (lid, seq, data["measured_at"], data["measured_at"], bytes(head), digest, body),
            )
            c.execute(
                "INSERT INTO bench_ccp_readings (enterprise_id, record_seq, current_seq, lot_seq,"
                " ccp,"
                " parameter, value, unit, measured_at, deviation)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,false)",
                (lid, seq, seq, lot_seq, data["ccp"], data["parameter"], data["value"],
                 data["unit"], data["measured_at"]),
            )  # fmt: skip
            c.execute(
                "UPDATE bench_ledgers SET size = %s, head_hash = %s WHERE id = %s",
                (seq, digest, lid),
            )
        return {"seq": seq, "hash": digest.hex()}

    return app


def core_app() -> Any:
    from foodtrace.config import Settings
    from webapp.main import create_app

    return create_app(Settings())


def bare_app() -> Any:
    return _bare_app()


def _server(mode: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        f"bench.http:{mode}_app",
        factory=True,
        workers=workers,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


def _load(cfg: dict[str, Any]) -> None:
    import httpx

    lat: list[float] = []
    errors = [0]
    sent = [0]
    lock = threading.Lock()
    end = time.monotonic() + cfg["seconds"]
    warm = time.monotonic() + 1.0

    def worker(k: int) -> None:
        lid, token = cfg["ids"][k], cfg["tokens"][k]
        if cfg["mode"] == "core":
            path, headers = "/api/v1/ccp-records", {"Authorization": f"Bearer {token}"}
        else:
            path, headers = f"/append/{lid}", {}
        mine: list[float] = []
        n = 0
        with httpx.Client(base_url=cfg["url"], headers=headers, timeout=30) as client:
            while time.monotonic() < end:
                n += 1
                data = {
                    "lot_code": cfg["lot"],
                    "ccp": "CCP1",
                    "parameter": "temperature",
                    "value": f"{86 + n % 9}.0",
                    "unit": "°C",
                    "measured_at": f"{cfg['day']}T02:{n // 60 % 60:02d}:{n % 60:02d}Z",
                    "operator": "李强",
                }
                t = time.perf_counter()
                r = client.post(path, json=data)
                dt = (time.perf_counter() - t) * 1e3
                if r.status_code >= 300:
                    with lock:
                        errors[0] += 1
                        if errors[0] < 3:
                            sys.stderr.write(f"{r.status_code} {r.text[:300]}\n")
                elif time.monotonic() > warm:
                    mine.append(dt)
        with lock:
            lat.extend(mine)
            sent[0] += n

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(cfg["ids"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = len(lat) / (cfg["seconds"] - 1.0)
    print(json.dumps({"rate": rate, "lat": lat, "errors": errors[0], "n": sent[0]}))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        _server(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        _load(json.loads(sys.argv[2]))
