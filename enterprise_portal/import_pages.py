"""Spreadsheet import in the portal: templates, a whole-file check with progress, then confirm.

An upload is checked in a background thread (every row through the core, then
rolled back) while the page shows progress; the user sees every problem of every
row at once, with its row number and the column's header, and can download the
file with each problem marked in its cell. A file without errors shows what it
will write (counts by kind, its first rows) and the rows that repeat an entry
(warnings: they may be imported anyway); only such a file can be confirmed, which
appends all its rows in one transaction. Jobs are kept on disk
(``enterprise_portal.import_jobs``), so any worker process shows or confirms them;
unconfirmed ones expire, which is safe (nothing was written). Confirming is
idempotent: the job's id is the import's idempotency key, so a confirm sent twice
(a double click, a retry after a lost answer, two workers) writes the file once.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from enterprise_portal import import_jobs
from enterprise_portal.import_jobs import Busy, Job, Jobs, Slot
from enterprise_portal.imports_api import messages
from foodtrace import imports
from foodtrace.config import Settings
from foodtrace.db import WRITE_OPTION, FoodtraceSession
from foodtrace.errors import NotFound
from foodtrace.imports import ImportResult, RowError
from foodtrace.records.kinds import BY_KIND
from web.deps import ClockDep, EngineDep, SettingsDep
from web.i18n import N_
from web.web import CsrfUser, PageEnterpriseUser, attachment, redirect, render, request_locale

router = APIRouter(include_in_schema=False)
MAX_ERRORS_KEPT = 1000


def _kinds() -> list[tuple[str, str]]:
    return [(str(k), imports.title(k)) for k in imports.IMPORTABLE]


def _rows(rows: list[RowError]) -> list[dict[str, Any]]:
    out = []
    for e in rows[:MAX_ERRORS_KEPT]:
        zh, en = messages(e)
        out.append(
            {
                "row": e.row,
                "column": e.column,
                "field": e.key,
                "type": e.type,
                "ctx": e.ctx,
                "message": e.message,
                "zh": zh,
                "en": en,
            }
        )
    return out


ITEM_ROWS = N_("Lines of detail")


def _counts(result: ImportResult) -> list[tuple[str, int]]:
    """What the file writes, as (message id of what, how many) in the order of the result."""
    out = []
    for name, n in result.counts.items():
        kind, _, items = name.partition(".")
        out.append((ITEM_ROWS if items else BY_KIND[kind].label, n))
    return out


def _result(result: ImportResult) -> dict[str, Any]:
    """What the job page shows of a check or an import (kept in the job's JSON)."""
    return {
        "records": result.records,
        "checked": result.checked,
        "written": result.written,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq,
        "error_count": len(result.errors),
        "errors": _rows(result.errors),
        "warnings": _rows(result.warnings),
        "skipped": result.skipped,
        "counts": _counts(result),
        "headers": result.headers,
        "preview": result.preview,
    }


def _answer(result: ImportResult) -> tuple[int, bytes]:
    body = json.dumps(_result(result), ensure_ascii=False, default=str).encode()
    return (201 if result.ok else 422), body


def _run(
    job: Job, slot: Slot, engine: Any, clock: Any, settings: Settings, *, dry_run: bool
) -> None:
    jobs = Jobs(settings)

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total
        jobs.save(job)

    try:
        content = jobs.content(job)
        limits = import_jobs.limits(settings)
        # A background job, not a request: it is its own transaction (the request that
        # started it has long been answered), committed here or rolled back.
        with FoodtraceSession(engine.execution_options(**{WRITE_OPTION: True})) as session:
            if dry_run:
                result = imports.import_file(
                    session=session, ledger_id=job.enterprise_id, kind=job.kind,
                    filename=job.filename, content=content, actor=job.username, clock=clock,
                    dry_run=True, progress=progress, limits=limits,
                )  # fmt: skip
                session.rollback()
                job.result = _result(result)
                job.status = "checked"
            else:
                once = imports.import_once(
                    session=session, ledger_id=job.enterprise_id, kind=job.kind,
                    filename=job.filename, content=content, actor=job.username, clock=clock,
                    key=f"web-import:{job.id}", answer=_answer, progress=progress,
                    limits=limits,
                )  # fmt: skip
                session.commit()
                job.result = json.loads(once.body)
                job.status = "done" if once.status == 201 else "checked"
        job.done = job.total = job.result["records"]
    except imports.TooLarge as exc:
        job.status, job.message = "refused", str(exc)
    except Exception as exc:  # noqa: BLE001 - shown to the user; nothing was written
        job.status, job.message = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        slot.release()
        jobs.save(job)


def _start(job: Job, engine: Any, clock: Any, settings: Settings, *, dry_run: bool) -> None:
    """Run the check (or the import) in a thread, holding an import slot (or raise Busy)."""
    slot = import_jobs.take_slot(settings, job.enterprise_id)
    job.status = "checking" if dry_run else "importing"
    job.done = 0
    Jobs(settings).save(job)
    threading.Thread(
        target=_run,
        args=(job, slot, engine, clock, settings),
        kwargs={"dry_run": dry_run},
        daemon=True,
    ).start()


def _refused(request: Request, pair: Any, message: str, code: int, **headers: str) -> Response:
    response = render(
        request,
        "import.html",
        {"kinds": _kinds(), "job": None, "error": message},
        user=pair[0],
        status_code=code,
    )
    response.headers.update(headers)
    return response


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
    request: Request,
    pair: PageEnterpriseUser,
    user: CsrfUser,
    engine: EngineDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    form = await request.form()
    kind = str(form.get("kind", ""))
    upload = form.get("file")
    labels = dict(_kinds())
    if kind not in labels or upload is None or isinstance(upload, str) or not upload.filename:
        return _refused(request, pair, "choose a kind and a file", 422)
    most = settings.import_max_bytes
    content = await upload.read(most + 1)
    if len(content) > most:
        mb = f"{most / (1024 * 1024):g}"
        return _refused(request, pair, f"文件超过 {mb} MB (the file is larger than {mb} MB)", 413)
    jobs = Jobs(settings)
    try:
        job = jobs.create(
            enterprise_id=pair[1].enterprise_id,
            username=user.principal.username,
            kind=str(kind),  # one of the importable kinds (checked above)
            label=labels[kind],
            filename=upload.filename,
            content=content,
        )
        try:
            _start(job, engine, clock, settings, dry_run=True)
        except Busy:
            jobs.remove(job)
            raise
    except Busy as exc:
        return _refused(request, pair, str(exc), 429, **{"Retry-After": str(exc.retry_after)})
    return redirect(f"/import/{job.id}")


@router.get("/import/{job_id}")
def job_page(
    job_id: str, request: Request, pair: PageEnterpriseUser, settings: SettingsDep
) -> Response:
    job = Jobs(settings).get(job_id, pair[1].enterprise_id)
    return render(
        request,
        "import.html",
        {"kinds": _kinds(), "job": job},
        user=pair[0],
        status_code=413 if job.status == "refused" else 200,
    )


@router.post("/import/{job_id}/confirm")
def confirm(
    job_id: str,
    request: Request,
    pair: PageEnterpriseUser,
    user: CsrfUser,
    engine: EngineDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    job = Jobs(settings).get(job_id, pair[1].enterprise_id)
    if job.status == "checked" and job.result is not None and not job.result["error_count"]:
        try:
            _start(job, engine, clock, settings, dry_run=False)
        except Busy as exc:
            return _refused(request, pair, str(exc), 429, **{"Retry-After": str(exc.retry_after)})
    return redirect(f"/import/{job.id}")


@router.get("/import/{job_id}/marked.xlsx")
def marked(
    job_id: str,
    request: Request,
    pair: PageEnterpriseUser,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """The uploaded file with each problem of the check marked in its cell (XLSX, also
    for a CSV upload), in the page's language; past the kept problems, only those."""
    jobs = Jobs(settings)
    job = jobs.get(job_id, pair[1].enterprise_id)
    if job.result is None or not (job.result["errors"] or job.result["warnings"]):
        raise NotFound("this import has no problems to mark")
    lang = "en" if request_locale(request) == "en" else "zh"
    marks = [
        imports.Mark(e["row"], e["column"], e[lang], error=severity == "errors")
        for severity in ("errors", "warnings")
        for e in job.result[severity]
    ]
    try:
        body = imports.marked_xlsx(
            job.kind, job.filename, jobs.content(job), marks, lang=lang,
            limits=import_jobs.limits(settings),
        )  # fmt: skip
    except imports.TooLarge as exc:  # a refused file has no result to mark; kept safe
        raise NotFound(str(exc)) from None
    stem = job.filename.rsplit(".", 1)[0] or job.label
    word = "problems" if lang == "en" else "问题标注"
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": attachment(f"{stem}-{word}", "xlsx", clock.now())},
    )
