"""Imports of bounded cost, bodies bounded before they are read, imports that never write twice.

The hostile sheets are written here by hand, part by part (a sheet's XML says
whatever a hostile file says: a declared size, rows numbered or not, a row of
16,384 cells), so that each is as small as the attack needs.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import zipfile
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from enterprise_portal import import_jobs
from foodtrace.config import Settings
from foodtrace.db import read_session
from foodtrace.imports import Limits, TooLarge, columns, parse
from foodtrace.ledger.models import Entry
from schemas.records import RecordKind
from test_imports import csv_file, login, records_file, upload, with_settings
from test_imports import world as world  # noqa: F401 - the data fixture

import factories as f
from snapshots import snapshot

SALE = RecordKind.SALE
HEADERS = [c.header_zh for c in columns(SALE)]

# ---------------------------------------------------------------- hand-written XLSX

_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
    ),
}


def _col(j: int) -> str:
    name = ""
    while j:
        j, r = divmod(j - 1, 26)
        name = chr(65 + r) + name
    return name


def _cell(row: int | None, col: int | None, text: str = "") -> str:
    ref = f' r="{_col(col)}{row}"' if row is not None and col is not None else ""
    if not text:
        return f"<c{ref}/>"
    return f'<c{ref} t="inlineStr"><is><t>{escape(text)}</t></is></c>'


def header_row() -> str:
    return '<row r="1">' + "".join(_cell(1, j, h) for j, h in enumerate(HEADERS, 1)) + "</row>"


def xlsx(rows: str, dimension: str | None = None) -> bytes:
    """A workbook whose one sheet holds ``rows`` (``<row>`` elements) as written."""
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"{dim}<sheetData>{rows}</sheetData></worksheet>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in _PARTS.items():
            zf.writestr(name, text)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
    return buf.getvalue()


def wide_rows(n: int, cells: int = 16_384, numbered: bool = True) -> str:
    """``n`` rows of ``cells`` blank cells each, below the header (the 300 KB sheet's shape)."""
    out = []
    for i in range(2, n + 2):
        if numbered:
            body = "".join(f'<c r="{_col(j)}{i}"/>' for j in range(1, cells + 1))
        else:
            body = "<c/>" * cells
        out.append(f'<row r="{i}">{body}</row>' if numbered else f"<row>{body}</row>")
    return "".join(out)


# ---------------------------------------------------------------- item 2: the three sheets


def refused(r: Any, *words: str) -> str:
    assert r.status_code == 413, r.text[:500]
    detail = r.json()["detail"]
    for word in words:
        assert word in detail, detail
    return str(detail)


HOSTILE = {
    # 600 rows x 16,384 cells, as the report had it, declared: refused from <dimension>
    "wide-declared": (lambda: xlsx(header_row() + wide_rows(3), "A1:XFD600"), "16,384"),
    # the same without a dimension, cells unnumbered: refused at the 65th cell of a row
    "wide-streamed": (lambda: xlsx(header_row() + wide_rows(3, numbered=False)), "at most 64"),
    # a header and one cell in row 1,048,576, no dimension: refused at that row's tag
    "last-row": (
        lambda: xlsx(header_row() + f'<row r="1048576">{_cell(1048576, 1, "x")}</row>'),
        "1,048,576",
    ),
    # a declared dimension of a million rows over a header only
    "huge-dimension": (lambda: xlsx(header_row(), "A1:P1048576"), "1,048,576"),
    # 200,000 empty unnumbered rows: refused when reading reaches row 100,001
    "empty-rows": (lambda: xlsx(header_row() + "<row/>" * 200_000), "100,000"),
    # the same as CSV, blank lines and blank cells counting as rows and columns
    "csv-empty-rows": (lambda: csv_file(SALE, []) + b",\r\n" * 200_000, "100,000"),
    "csv-wide": (lambda: csv_file(SALE, []) + b"," * 16_383 + b"\r\n", "16,384"),
    "csv-long-cell": (lambda: csv_file(SALE, []) + b"x" * 40_000 + b"\r\n", "32,767"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_sheet_is_refused_at_once_naming_the_limit(client, world, engine, name) -> None:
    """Each of the report's sheets (and their CSV kin) gets 413 in well under a second,
    naming the limit and what the file has, and writes nothing."""
    build, figure = HOSTILE[name]
    content = build()
    h = login(client)
    before = snapshot(engine)
    filename = "hostile.csv" if name.startswith("csv") else "hostile.xlsx"
    for dry_run in (True, False):
        started = time.perf_counter()
        r = upload(client, h, SALE, content, dry_run=dry_run, name=filename)
        took = time.perf_counter() - started
        detail = refused(r, figure, "at most")
        assert re.search(r"最多 [\d,]+", detail), detail  # Chinese first
        # The old code took minutes on these files; a loose bound here catches that on a
        # busy CI machine, and bench/hostile_import.py measures the real figure (<0.25 s).
        assert took < 10.0, f"{name}: {took:.2f} s"
    assert snapshot(engine) == before


def test_a_sheet_inside_the_limits_still_imports(client, world, engine) -> None:
    """A stale (too small) dimension and a row of exactly 64 cells are no reason to refuse."""
    good = records_file(SALE, [])  # the template: header and example row
    h = login(client)
    r = upload(client, h, SALE, good, dry_run=True)
    assert r.status_code == 200, r.text
    assert r.json()["error_count"] == 1  # "no data rows": read, not refused
    wide_ok = xlsx(header_row() + wide_rows(1, cells=64), "A1:B1")
    r = upload(client, h, SALE, wide_ok, dry_run=True)
    assert r.status_code == 200, r.text


def _rows_xml(n_rows: int, width: int, numbered: bool, gap: int) -> str:
    rows = [header_row()]
    for i in range(2, n_rows + 1):
        number = i + gap if i == n_rows else i
        cells = "".join(_cell(number if numbered else None, j if numbered else None) for j in
                        range(1, width + 1))  # fmt: skip
        rows.append(f'<row r="{number}">{cells}</row>' if numbered else f"<row>{cells}</row>")
    return "".join(rows)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_rows=st.integers(5, 40),
    max_cols=st.integers(18, 40),
    n_rows=st.integers(2, 50),
    width=st.integers(1, 50),
    gap=st.integers(0, 10),
    numbered=st.booleans(),
    declared=st.sampled_from(["none", "true", "small", "huge"]),
)
def test_any_sheet_past_a_limit_is_refused_and_any_other_is_read(
    max_rows, max_cols, n_rows, width, gap, numbered, declared
) -> None:
    """Property: ``parse`` refuses exactly the sheets whose rows or cells, or whose declared
    size, pass the limits, whatever the sheet claims; the refusal names the limit."""
    gap = gap if numbered else 0
    last_row = n_rows + gap if n_rows > 1 else 1
    widest = max(len(HEADERS), width if n_rows > 1 else 0)
    dimension = {
        "none": None,
        "true": f"A1:{_col(widest)}{last_row}",
        "small": "A1:B2",  # stale: no guide, and no reason to refuse
        "huge": "A1:XFD1048576",
    }[declared]
    content = xlsx(_rows_xml(n_rows, width, numbered, gap), dimension)
    limits = Limits(rows=max_rows, columns=max_cols)
    over_rows = last_row > max_rows or (declared == "huge")
    over_cols = widest > max_cols or (declared == "huge")
    if over_rows or over_cols:
        with pytest.raises(TooLarge) as exc:
            parse(SALE, "s.xlsx", content, limits)
        assert f"at most {exc.value.allowed:,}" in str(exc.value)
        assert exc.value.allowed in (max_rows, max_cols)
    else:
        parsed = parse(SALE, "s.xlsx", content, limits)
        assert parsed.errors  # blank rows: "no data", but read to the end
        assert all("最多" not in e.message for e in parsed.errors)


# ---------------------------------------------------------------- item 2: concurrency


def test_concurrent_imports_are_bounded_per_enterprise_and_in_all(client, world, engine, clock):
    """With the enterprise's slot taken, its next import gets 429 and Retry-After; with every
    server slot taken, any enterprise's does; a freed slot serves again."""
    settings_ = client.app.state.settings
    h = login(client)
    content = records_file(RecordKind.SUPPLIER, [f.supplier()])
    before = snapshot(engine)
    with import_jobs.take_slot(settings_, world):
        r = upload(client, h, RecordKind.SUPPLIER, content, dry_run=False)
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) > 0
        assert "at most 1 imports at once per enterprise" in r.json()["detail"]
    other = [import_jobs.take_slot(settings_, 9000 + i) for i in range(2)]
    try:
        r = upload(client, h, RecordKind.SUPPLIER, content, dry_run=False)
        assert r.status_code == 429, r.text
        assert "at most 2 imports at once on this server" in r.json()["detail"]
    finally:
        for slot in other:
            slot.release()
    assert snapshot(engine) == before
    r = upload(client, h, RecordKind.SUPPLIER, content, dry_run=False)
    assert r.status_code == 201, r.text


# ---------------------------------------------------------------- item 2: web jobs on disk


def page_login(client, username: str = "a_op") -> str:
    from test_imports import PASSWORD

    r = f.page_login(client, username, PASSWORD, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/import").text
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def web_upload(client, csrf: str, content: bytes, kind: str = "supplier") -> Any:
    return client.post(
        "/import",
        data={"csrf_token": csrf, "kind": kind},
        files={"file": ("s.xlsx", content, "application/octet-stream")},
        follow_redirects=False,
    )


def wait_for(client, url: str, *statuses: str) -> str:
    for _ in range(200):
        page = client.get(url).text
        found = re.search(r'data-status="(\w+)"', page)
        if found and found[1] in statuses:
            return page
        time.sleep(0.05)
    raise AssertionError(page)


def test_web_jobs_live_on_disk_capped_per_user_and_expiring(client, world, engine) -> None:
    """An upload is kept as files in TRACE_IMPORT_DIR, not in memory: any process (a new
    Jobs) sees it; a user keeps at most TRACE_IMPORT_JOBS_PER_USER; old ones expire."""
    csrf = page_login(client)
    settings_: Settings = client.app.state.settings
    content = records_file(RecordKind.SUPPLIER, [f.supplier()])
    ids = []
    for _ in range(7):
        r = web_upload(client, csrf, content)
        assert r.status_code == 303, r.text
        ids.append(r.headers["location"].rsplit("/", 1)[1])
        wait_for(client, r.headers["location"], "checked")
    root = import_jobs.import_dir(settings_) / "jobs"
    on_disk = sorted(p.name for p in root.iterdir())
    assert len(on_disk) == settings_.import_jobs_per_user == 5
    assert set(on_disk) == set(ids[-5:])  # the oldest went first
    assert (root / ids[-1] / "upload").read_bytes() == content
    assert (root / ids[-1]).stat().st_mode & 0o077 == 0  # the server's user only
    assert import_jobs.Jobs(settings_).get(ids[-1], world).status == "checked"
    assert client.get(f"/import/{ids[0]}").status_code == 404
    with_settings(client, import_job_ttl_s=0.001)
    time.sleep(0.01)
    assert client.get(f"/import/{ids[-1]}").status_code == 404
    r = web_upload(client, csrf, content)  # sweeps the expired ones
    assert sorted(p.name for p in root.iterdir()) == [r.headers["location"].rsplit("/", 1)[1]]


def test_a_hostile_sheet_uploaded_on_the_page_is_refused_naming_the_limit(
    client, world, engine
) -> None:
    csrf = page_login(client)
    before = snapshot(engine)
    r = web_upload(client, csrf, HOSTILE["last-row"][0]())
    page = wait_for(client, r.headers["location"], "refused")
    assert "1,048,576" in page
    assert client.get(r.headers["location"]).status_code == 413
    assert snapshot(engine) == before


# ---------------------------------------------------------------- item 4: idempotent imports


def _entries(engine) -> int:
    with read_session(engine) as s:
        return s.execute(select(func.count()).select_from(Entry)).scalar_one()


def test_an_import_retried_with_its_key_writes_once_and_answers_the_same(
    client, world, engine
) -> None:
    h = login(client)
    first_file = records_file(RecordKind.SUPPLIER, [f.supplier(), f.supplier(code="S2")])
    keyed = {**h, "Idempotency-Key": "erp-2026-03-01-suppliers"}
    before = _entries(engine)
    r1 = upload(client, keyed, RecordKind.SUPPLIER, first_file, dry_run=False)
    assert r1.status_code == 201, r1.text
    assert _entries(engine) == before + 2
    after = snapshot(engine)
    r2 = upload(client, keyed, RecordKind.SUPPLIER, first_file, dry_run=False)
    assert (r2.status_code, r2.content) == (r1.status_code, r1.content)
    assert r2.headers["Idempotency-Replayed"] == "true"
    assert snapshot(engine) == after
    # another file under the same key: 409, nothing written
    other = records_file(RecordKind.SUPPLIER, [f.supplier(code="S3")])
    r3 = upload(client, keyed, RecordKind.SUPPLIER, other, dry_run=False)
    assert r3.status_code == 409, r3.text
    assert "another file" in r3.json()["detail"]
    assert snapshot(engine) == after
    # a key on a file with a bad row keeps nothing: the fixed file may use it
    bad = {**h, "Idempotency-Key": "k-bad"}
    r4 = upload(client, bad, RecordKind.SUPPLIER, csv_file(RecordKind.SUPPLIER, [{"code": "X"}]),
                dry_run=False, name="x.csv")  # fmt: skip
    assert r4.status_code == 422
    r5 = upload(client, bad, RecordKind.SUPPLIER, other, dry_run=False)
    assert r5.status_code == 201, r5.text


def test_the_web_confirm_writes_once_however_often_it_is_sent(client, world, engine) -> None:
    """Confirming a job again (a double click, a retry, another worker seeing it checked)
    replays the first import: its key is the job's id."""
    csrf = page_login(client)
    r = web_upload(client, csrf, records_file(RecordKind.SUPPLIER, [f.supplier()]))
    url = r.headers["location"]
    wait_for(client, url, "checked")
    before = _entries(engine)
    client.post(f"{url}/confirm", data={"csrf_token": csrf}, follow_redirects=False)
    done = wait_for(client, url, "done")
    assert _entries(engine) == before + 1
    jobs = import_jobs.Jobs(client.app.state.settings)
    job = jobs.get(url.rsplit("/", 1)[1], world)
    first = job.result
    job.status = "checked"  # as a second worker, or a retry, would find it
    jobs.save(job)
    client.post(f"{url}/confirm", data={"csrf_token": csrf}, follow_redirects=False)
    assert wait_for(client, url, "done") == done
    assert jobs.get(job.id, world).result == first
    assert _entries(engine) == before + 1


# ---------------------------------------------------------------- item 3: body limits


def _asgi(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list):
    """Send one request straight to the ASGI app; the answer and how many chunks it read."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= len(chunks):
            if chunks and chunks[0] is None:
                raise AssertionError("the body was read")
            return {"type": "http.disconnect"}
        chunk = chunks[read]
        if chunk is None:
            raise AssertionError("the body was read")
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": read < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
        "root_path": "", "state": {},
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, read


MB = 1024 * 1024


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/api/v1/attachments", b"application/json"),
        ("/api/v1/imports/sales", b"application/json"),
        ("/api/v1/sales", b"application/json"),
        ("/records/sale/new", b"text/html; charset=utf-8"),
        ("/login", b"text/html; charset=utf-8"),
    ],
)
def test_a_content_length_over_the_limit_is_refused_unread(client, path, media) -> None:
    """A 300 MB Content-Length gets 413 without one byte read (receive would fail)."""
    status, headers, body, read = _asgi(
        client.app, "POST", path,
        [(b"content-length", str(300 * MB).encode()), (b"content-type", b"multipart/form-data")],
        [None],
    )  # fmt: skip
    assert (status, read) == (413, 0)
    assert headers[b"content-type"] == media
    assert "MB" in body.decode()


@pytest.mark.parametrize(
    ("path", "limit"), [("/api/v1/attachments", 21 * MB), ("/api/v1/customers", 2 * MB)]
)
def test_a_chunked_body_is_cut_off_at_the_limit(client, world, path, limit) -> None:
    """Without Content-Length the body is counted as it comes: reading stops at the limit
    and the answer is 413, whatever the route would have said."""
    h = login(client)
    part = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n")  # fmt: skip
    chunks = [part + b"x" * (MB - len(part))] + [b"x" * MB] * 39
    media = b"multipart/form-data; boundary=xyz" if "attach" in path else b"application/json"
    status, _, body, read = _asgi(
        client.app, "POST", path,
        [(b"transfer-encoding", b"chunked"), (b"content-type", media),
         (b"authorization", h["Authorization"].encode())],
        chunks,
    )  # fmt: skip
    assert status == 413, body
    assert read == limit // MB + 1


def test_uploads_under_the_limit_still_work(client, world) -> None:
    h = login(client)
    pdf = b"%PDF-1.4\n" + b"0" * (5 * MB)
    r = client.post("/api/v1/attachments", headers=h,
                    files={"file": ("c.pdf", pdf, "application/pdf")})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(pdf)

    # a chunked body under the limit reaches the route whole
    h_json = [(b"transfer-encoding", b"chunked"), (b"content-type", b"application/json"),
              (b"authorization", h["Authorization"].encode())]  # fmt: skip
    body = b'{"code": "DIST9", "name": "x"}'
    status, _, answer, read = _asgi(client.app, "POST", "/api/v1/customers", h_json,
                                    [body[:10], body[10:]])  # fmt: skip
    assert status == 422, answer  # the route's own answer (the customer lacks fields)
    assert b"address" in answer
