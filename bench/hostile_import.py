"""Hostile imports against a real server: time to refusal, server memory, and what others see.

Starts ``webapp.main:create_app`` under uvicorn on 127.0.0.1 (one worker, a temporary
SQLite file unless ``TRACE_DATABASE_URL`` names an existing database), registers two
enterprises with an operator each, then:

1. posts each hostile sheet of issue 22 to ``POST /api/v1/imports/sales?dry_run=true``
   as enterprise A and prints the time to the answer, the answer, and the server's
   RSS (VmRSS after, VmHWM: the peak so far):
   - ``wide``: 600 rows x 16,384 cells (as the report's, declaring ``A1:XFD600``);
   - ``wide-undeclared``: the same without a ``<dimension>``;
   - ``empty-rows``: 8,000,000 empty rows (numbered, no dimension);
   - ``last-row``: a header and one cell in row 1,048,576;
2. measures ``GET /healthz`` and enterprise B's ``POST /api/v1/customers`` (p50, p95)
   alone, then while two clients post hostile sheets as enterprise A in a loop.

Run from the project root::

    .venv/bin/python -m bench.hostile_import [--seconds 10]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

from bench.http import _free_port, _wait

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://'
    'schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default '
    'Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"'
    '/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://'
    'schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
    'http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
    '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships '
    'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship '
    'Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
}
HEADER = '<row r="1"><c r="A1" t="inlineStr"><is><t>生产批号</t></is></c></row>'


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _col(j: int) -> str:
    name = ""
    while j:
        j, r = divmod(j - 1, 26)
        name = chr(65 + r) + name
    return name


def xlsx(rows: Any, dimension: str | None = None) -> bytes:
    """A workbook of one sheet; ``rows`` an iterable of XML text pieces (streamed to the zip)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in PARTS.items():
            zf.writestr(name, text)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            dim = f'<dimension ref="{dimension}"/>' if dimension else ""
            sheet.write(
                f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}">{dim}'
                f"<sheetData>{HEADER}".encode()
            )
            for piece in rows:
                sheet.write(piece.encode())
            sheet.write(b"</sheetData></worksheet>")
    return buf.getvalue()


def wide_rows() -> Any:
    """600 rows of 16,384 cells; each cell a number, unnumbered (about 300 KB zipped)."""
    for i in range(2, 602):
        yield f'<row r="{i}">' + "<c><v>1</v></c>" * 16_384 + "</row>"


def sheets() -> dict[str, bytes]:
    return {
        "wide": xlsx(wide_rows(), "A1:XFD601"),
        "wide-undeclared": xlsx(wide_rows()),
        "empty-rows": xlsx(
            "".join(f'<row r="{i}"/>' for i in range(k, k + 10_000))
            for k in range(2, 8_000_002, 10_000)
        ),
        "last-row": xlsx(['<row r="1048576"><c r="A1048576"><v>1</v></c></row>']),
    }


# ---------------------------------------------------------------- the server


def prepare(url: str, folder: Path) -> None:
    """Migrate, and register enterprises A and B, each with an operator (password 'bench pass')."""
    sys.path[:0] = ["trace", "."]
    from foodtrace.accounts.service import Role, add_user, init_platform
    from foodtrace.clock import SystemClock
    from foodtrace.db import make_engine, migrate, write_session
    from foodtrace.records.service import register_enterprise

    engine = make_engine(url)
    migrate(engine)
    clock = SystemClock()
    with write_session(engine) as s:
        init_platform(session=s, name="trace.example.cn", now=clock.now())
    for user, code in (("bench_a", "91370404MA3F42206T"), ("bench_b", "91370404MA3793PC3E")):
        with write_session(engine) as s:
            register_enterprise(
                session=s,
                data={"credit_code": code, "name": f"企业{user}", "kind": "manufacturer",
                      "licence_no": "SC10637040400012", "region_code": "370404",
                      "address": "山东省枣庄市峄城区榴园路 8 号", "contact": "0632-7711234"},
                actor="admin",
                clock=clock,
            )  # fmt: skip
            add_user(
                session=s, username=user, password="bench pass 2026", now=clock.now(),
                role=Role.ENTERPRISE_USER, enterprise_credit_code=code,
            )  # fmt: skip
    engine.dispose()


def _status(pid: int) -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def request(port: int, method: str, path: str, *, token: str = "", body: bytes = b"",
            ctype: str = "") -> tuple[int, bytes, float]:  # fmt: skip
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body or None,
                                 method=method)  # fmt: skip
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if ctype:
        req.add_header("Content-Type", ctype)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            data, code = r.read(), r.status
    except urllib.error.HTTPError as e:
        data, code = e.read(), e.code
    except (ConnectionResetError, urllib.error.URLError) as e:
        # answered (413) and closed before the whole body was sent
        data, code = json.dumps({"detail": f"connection closed: {e}"}).encode(), 0
    return code, data, time.perf_counter() - started


def multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f"multipart/form-data; boundary={boundary}"


def token(port: int, user: str) -> str:
    body = f"username={user}&password=bench+pass+2026".encode()
    code, data, _ = request(port, "POST", "/api/v1/auth/token", body=body,
                            ctype="application/x-www-form-urlencoded")  # fmt: skip
    assert code == 200, data
    return json.loads(data)["access_token"]


def pcts(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
    return f"p50 {statistics.median(xs) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (n={len(xs)})"


def probe(port: int, tok_b: str, seconds: float) -> tuple[list[float], list[float]]:
    health, writes = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        code, _, t = request(port, "GET", "/healthz")
        assert code == 200
        health.append(t)
        body = json.dumps({"code": f"C{uuid.uuid4().hex[:10]}", "name": "枣庄惠民食品经销有限公司",
                           "address": "山东省枣庄市市中区光明路 20 号",
                           "contact": "13806321234"}).encode()  # fmt: skip
        code, data, t = request(port, "POST", "/api/v1/customers", token=tok_b, body=body,
                                ctype="application/json")  # fmt: skip
        assert code == 201, data
        writes.append(t)
    return health, writes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hostile-import-"))
    url = os.environ.get("TRACE_DATABASE_URL") or f"sqlite:///{folder / 'bench.db'}"
    prepare(url, folder)
    say("building the sheets …")
    files = sheets()
    port = _free_port()
    env = {**os.environ, "TRACE_DATABASE_URL": url, "PYTHONPATH": "trace:.",
           "TRACE_SIGNING_KEY_FILE": str(folder / "signing.key"),
           "TRACE_IMPORT_DIR": str(folder / "imports"),
           "TRACE_CHECKPOINT_INTERVAL_S": "0"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "webapp.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env,
    )  # fmt: skip
    try:
        _wait(port, server)
        tok_a, tok_b = token(port, "bench_a"), token(port, "bench_b")
        body, ctype = multipart("warm.csv", "生产批号\r\n".encode())  # first-request imports
        request(port, "POST", "/api/v1/imports/sales?dry_run=true", token=tok_a, body=body,
                ctype=ctype)  # fmt: skip
        say(f"server pid {server.pid}, {url.split('://')[0]}; at rest: {_status(server.pid)}")
        say()
        say("| sheet | file | answer | time to answer | server RSS after | server peak RSS |")
        say("|---|---|---|---|---|---|")
        for name, content in files.items():
            body, ctype = multipart(f"{name}.xlsx", content)
            code, data, took = request(port, "POST", "/api/v1/imports/sales?dry_run=true",
                                       token=tok_a, body=body, ctype=ctype)  # fmt: skip
            mem = _status(server.pid)
            detail = json.loads(data).get("detail", data[:80])
            say(
                f"| {name} | {len(content) / 1024:,.0f} KB | {code} {str(detail)[-70:]} | "
                f"{took * 1000:.0f} ms | {mem['VmRSS']:.0f} MB | {mem['VmHWM']:.0f} MB |"
            )
        say()
        health, writes = probe(port, tok_b, args.seconds)
        say(f"alone:   /healthz {pcts(health)}; B's POST /api/v1/customers {pcts(writes)}")
        stop = threading.Event()
        answers: dict[int, int] = {}

        def attack() -> None:
            body, ctype = multipart("wide.xlsx", files["wide-undeclared"])
            while not stop.is_set():
                code, _, _ = request(port, "POST", "/api/v1/imports/sales?dry_run=true",
                                     token=tok_a, body=body, ctype=ctype)  # fmt: skip
                answers[code] = answers.get(code, 0) + 1

        attackers = [threading.Thread(target=attack) for _ in range(2)]
        for t in attackers:
            t.start()
        health, writes = probe(port, tok_b, args.seconds)
        stop.set()
        for t in attackers:
            t.join()
        say(f"attack:  /healthz {pcts(health)}; B's POST /api/v1/customers {pcts(writes)}")
        say(f"         hostile imports answered meanwhile: {answers}; "
            f"server peak RSS {_status(server.pid)['VmHWM']:.0f} MB")  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
