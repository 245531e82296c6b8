"""Spreadsheet import (台账导入): blank templates per record kind, and uploading a filled one.

An upload is checked as a whole and written in one transaction: either every
row is recorded, or none is and the answer lists each bad row and column.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, HTTPException, Query, Response, UploadFile, status
from fastapi.responses import JSONResponse

from enterprise_portal import import_jobs
from foodtrace import imports
from foodtrace.imports import ImportResult, RowError
from foodtrace.records.kinds import REGISTRY
from schemas.imports import ImportResultPublic, RowErrorPublic
from schemas.records import RecordKind
from web.deps import (
    ClockDep,
    CurrentEnterpriseUser,
    IdempotencyKeyDep,
    SettingsDep,
    WriteSessionDep,
)
from web.i18n import describe_problem

router = APIRouter(prefix="/api/v1", tags=["import"])

MAX_ERRORS_SHOWN = 1000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


ImportKind = StrEnum(  # type: ignore[misc]
    "ImportKind",
    {
        k.api_path.strip("/").replace("-", "_").upper(): k.api_path.strip("/")
        for k in REGISTRY
        if k.imports is not None and k.api_path is not None
    },
)
ImportKind.__doc__ = """Record kinds as the API paths name them."""

KINDS: dict[str, RecordKind] = {
    k.api_path.strip("/"): k.kind  # type: ignore[misc]
    for k in REGISTRY
    if k.imports is not None and k.api_path is not None
}
"""The kind each import path names (its enterprise API path: ``/sales`` → ``sales``)."""


def _attachment(kind: ImportKind, suffix: str) -> str:
    """Content-Disposition with an ASCII fallback and the Chinese name (RFC 6266 / 5987)."""
    name = f"{imports.title(KINDS[kind])}模板.{suffix}"
    return (
        f"attachment; filename=\"{kind.value}-template.{suffix}\"; filename*=UTF-8''{quote(name)}"
    )


@router.get("/templates/{kind}.csv", response_class=Response, summary="Blank CSV template")
def template_csv(kind: ImportKind, scope: CurrentEnterpriseUser) -> Response:
    """A CSV template (UTF-8 with BOM): the Chinese header row and one example row."""
    return Response(
        imports.template_csv(KINDS[kind]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": _attachment(kind, "csv")},
    )


@router.get("/templates/{kind}.xlsx", response_class=Response, summary="Blank XLSX template")
def template_xlsx(kind: ImportKind, scope: CurrentEnterpriseUser) -> Response:
    """An XLSX template: header, example row, dropdowns, and a 说明 sheet explaining each column."""
    return Response(
        imports.template_xlsx(KINDS[kind]),
        media_type=XLSX,
        headers={"Content-Disposition": _attachment(kind, "xlsx")},
    )


def messages(e: RowError) -> tuple[str, str]:
    """A problem's message in Chinese and in English: the import's own, or the core's
    translated by its type (``web.i18n.describe_problem``)."""
    en = e.message_en or e.message
    zh = e.message_zh
    if not zh:
        zh = describe_problem({"type": e.type, "msg": e.message, "ctx": e.ctx}, "zh_Hans")
    return zh, en


def _rows(errors: list[RowError], limit: int | None = None) -> list[RowErrorPublic]:
    out = []
    for e in errors[:limit]:
        zh, en = messages(e)
        out.append(
            RowErrorPublic(
                row=e.row,
                column=e.column,
                field=e.key,
                type=e.type,
                message=e.message,
                message_zh=zh,
                message_en=en,
            )
        )
    return out


def _public(result: ImportResult, filename: str) -> ImportResultPublic:
    return ImportResultPublic(
        kind=result.kind.value,
        filename=filename,
        dry_run=result.dry_run,
        ok=result.ok,
        records=result.records,
        checked=result.checked,
        written=result.written,
        first_seq=result.first_seq,
        last_seq=result.last_seq,
        error_count=len(result.errors),
        errors=_rows(result.errors, MAX_ERRORS_SHOWN),
        warnings=_rows(result.warnings, MAX_ERRORS_SHOWN),
        skipped_rows=result.skipped,
        counts=result.counts,
    )


def _answer(result: ImportResult, filename: str) -> tuple[int, bytes]:
    """A real import's status and JSON bytes (what an idempotency key replays)."""
    public = _public(result, filename)
    code = status.HTTP_201_CREATED if result.ok else 422
    return code, public.model_dump_json().encode()


@router.post(
    "/imports/{kind}",
    response_model=ImportResultPublic,
    summary="Import a filled spreadsheet (CSV or XLSX)",
    responses={
        201: {"model": ImportResultPublic, "description": "Every row was recorded"},
        409: {"description": "The Idempotency-Key was used for another file: nothing written"},
        413: {"description": "The file is past a limit (bytes, rows, columns, cell size)"},
        422: {"model": ImportResultPublic, "description": "Some rows are bad: nothing written"},
        429: {"description": "Too many imports at once: retry after Retry-After seconds"},
    },
)
def import_spreadsheet(
    kind: ImportKind,
    file: Annotated[UploadFile, File(description="A filled template, .xlsx or .csv, ≤ 20 MB")],
    scope: CurrentEnterpriseUser,
    session: WriteSessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    dry_run: Annotated[
        bool, Query(description="Check every row and write nothing (the default)")
    ] = True,
    idempotency_key: IdempotencyKeyDep = None,
) -> Response | ImportResultPublic:
    """Check (``dry_run=true``) or import a spreadsheet into the caller's ledger.

    A dry run answers 200 with every problem of every row at once, each by its row,
    the column's header as the file has it, its field and what to do (in Chinese and
    in English), and warns of rows that repeat an entry. An import
    answers 201 when every row was recorded, in one transaction, and 422 with
    the same per-row list when any row is bad; then nothing is written.
    With an ``Idempotency-Key``, an import that was written answers the same
    file under the same key again with its first answer (byte for byte, and
    ``Idempotency-Replayed: true``) and writes nothing; another file 409.
    A file past a limit (``TRACE_IMPORT_MAX_*``) is refused whole with 413 naming
    the limit; past the concurrent imports allowed, 429 with ``Retry-After``.
    """
    most = settings.import_max_bytes
    content = file.file.read(most + 1)
    if len(content) > most:
        raise HTTPException(
            413,  # Content Too Large; Starlette renamed the constant between versions
            detail=f"文件超过 {most / (1024 * 1024):g} MB，请拆分后分别导入 "
            f"(the file is larger than {most / (1024 * 1024):g} MB)",
        )
    filename = file.filename or ""
    try:
        with import_jobs.take_slot(settings, scope.enterprise_id):
            common: dict[str, Any] = {
                "session": session,
                "ledger_id": scope.enterprise_id,
                "kind": KINDS[kind],
                "filename": filename,
                "content": content,
                "actor": scope.actor,
                "clock": clock,
                "limits": import_jobs.limits(settings),
            }
            if not dry_run and idempotency_key is not None:
                once = imports.import_once(
                    **common,
                    key=idempotency_key,
                    answer=lambda result: _answer(result, filename),
                )
                return Response(
                    once.body,
                    status_code=once.status,
                    media_type="application/json",
                    headers={"Idempotency-Replayed": "true"} if once.replayed else None,
                )
            result = imports.import_file(**common, dry_run=dry_run)
    except imports.TooLarge as exc:
        raise HTTPException(413, detail=str(exc)) from None
    except import_jobs.Busy as exc:
        raise HTTPException(
            429, detail=str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    public = _public(result, filename)
    if dry_run:
        return public
    code = status.HTTP_201_CREATED if result.ok else 422
    return JSONResponse(public.model_dump(mode="json"), status_code=code)
