"""Spreadsheet import in the portal: templates, a whole-file check with progress, then confirm.

An upload is checked in a background thread (every row through the core, then
rolled back) while the page shows progress; the user sees every bad row with its
row number and column, and only a file without errors can be confirmed, which
appends all its rows in one transaction. Jobs live in the process's memory for
an hour: a restart forgets unconfirmed uploads, which is safe (nothing was written).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from foodtrace import imports
from foodtrace.db import WRITE_OPTION
from foodtrace.errors import NotFound
from schemas.records import RecordKind
from webapp.deps import ClockDep, EngineDep
from webapp.web import CsrfUser, PageEnterpriseUser, redirect, render

router = APIRouter(include_in_schema=False)
MAX_BYTES = 20 * 1024 * 1024
JOB_TTL = 3600


@dataclass
class Job:
    id: str
    enterprise_id: int
    username: str
    kind: RecordKind
    label: str
    filename: str
    content: bytes
    status: str = "checking"  # checking checked importing done failed
    done: int = 0
    total: int = 0
    result: Any = None
    message: str = ""
    created: float = field(default_factory=time.monotonic)


_jobs: dict[str, Job] = {}
_lock = threading.Lock()


def _kinds() -> list[tuple[str, str]]:
    return [(k.value, imports.title(k)) for k in imports.IMPORTABLE]


def _job(job_id: str, enterprise_id: int) -> Job:
    with _lock:
        for key in [k for k, j in _jobs.items() if time.monotonic() - j.created > JOB_TTL]:
            del _jobs[key]
        job = _jobs.get(job_id)
    if job is None or job.enterprise_id != enterprise_id:
        raise NotFound("no such import")
    return job


def _run(job: Job, engine: Any, clock: Any, *, dry_run: bool) -> None:
    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        with Session(engine.execution_options(**{WRITE_OPTION: True})) as session:
            result = imports.import_file(
                session=session,
                ledger_id=job.enterprise_id,
                kind=job.kind,
                filename=job.filename,
                content=job.content,
                actor=job.username,
                clock=clock,
                dry_run=dry_run,
                progress=progress,
            )
            if dry_run or result.errors:
                session.rollback()
            else:
                session.commit()
        job.result = result
        job.done = job.total = result.records
        job.status = "done" if not dry_run and not result.errors else "checked"
    except Exception as exc:  # noqa: BLE001 - shown to the user; nothing was written
        job.status, job.message = "failed", f"{type(exc).__name__}: {exc}"


def _start(job: Job, engine: Any, clock: Any, *, dry_run: bool) -> None:
    job.status = "checking" if dry_run else "importing"
    job.done = 0
    threading.Thread(
        target=_run, args=(job, engine, clock), kwargs={"dry_run": dry_run}, daemon=True
    ).start()


@router.get("/import")
def import_page(request: Request, pair: PageEnterpriseUser) -> Response:
    return render(request, "import.html", {"kinds": _kinds(), "job": None}, user=pair[0])


@router.get("/import/templates/{name}")
def template(name: str, pair: PageEnterpriseUser) -> Response:
    kind, _, ext = name.rpartition(".")
    if kind not in {k for k, _ in _kinds()} or ext not in ("csv", "xlsx"):
        raise NotFound(name)
    from urllib.parse import quote

    if ext == "csv":
        body, media = imports.template_csv(kind), "text/csv; charset=utf-8"
    else:
        body = imports.template_xlsx(kind)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    filename = f"{imports.title(kind)}模板.{ext}"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="template.{ext}"; '
            f"filename*=UTF-8''{quote(filename)}"
        },
    )


@router.post("/import")
async def upload(
    request: Request, pair: PageEnterpriseUser, user: CsrfUser, engine: EngineDep, clock: ClockDep
) -> Response:
    form = await request.form()
    kind = str(form.get("kind", ""))
    upload = form.get("file")
    labels = dict(_kinds())
    if kind not in labels or upload is None or isinstance(upload, str) or not upload.filename:
        return render(
            request,
            "import.html",
            {"kinds": _kinds(), "job": None, "error": "choose a kind and a file"},
            user=pair[0],
            status_code=422,
        )
    content = await upload.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        return render(
            request,
            "import.html",
            {"kinds": _kinds(), "job": None, "error": "the file is larger than 20 MB"},
            user=pair[0],
            status_code=413,
        )
    job = Job(
        secrets.token_urlsafe(12),
        pair[1].enterprise_id,
        user.principal.username,
        RecordKind(kind),
        labels[kind],
        upload.filename,
        content,
    )
    with _lock:
        _jobs[job.id] = job
    _start(job, engine, clock, dry_run=True)
    return redirect(f"/import/{job.id}")


@router.get("/import/{job_id}")
def job_page(job_id: str, request: Request, pair: PageEnterpriseUser) -> Response:
    job = _job(job_id, pair[1].enterprise_id)
    return render(request, "import.html", {"kinds": _kinds(), "job": job}, user=pair[0])


@router.post("/import/{job_id}/confirm")
def confirm(
    job_id: str, pair: PageEnterpriseUser, user: CsrfUser, engine: EngineDep, clock: ClockDep
) -> Response:
    job = _job(job_id, pair[1].enterprise_id)
    if job.status == "checked" and job.result is not None and not job.result.errors:
        _start(job, engine, clock, dry_run=False)
    return redirect(f"/import/{job.id}")
