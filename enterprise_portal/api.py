"""The enterprise's JSON API: record every kind, read the ledger, verify it, read a lot.

Every route takes :data:`CurrentEnterpriseUser`: the ledger written or read is
always the caller's own, taken from their account.
"""

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, Request, Response, UploadFile, status

from foodtrace.accounts.service import (
    change_user,
    create_api_token,
    list_api_tokens,
    reads_of,
    revoke_api_token,
)
from foodtrace.attachments.service import store_attachment
from foodtrace.errors import RecordError
from foodtrace.ledger import service as ledger
from foodtrace.records import obligations, queries
from foodtrace.records.kinds import REGISTRY, KindSpec
from foodtrace.records.service import known_kind, record
from schemas.api import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenPublic,
    AttachmentPublic,
    EntriesPublic,
    EntryPublic,
    LotPublic,
    ObligationPublic,
    RecordedPublic,
    RowsPublic,
    TodayPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
    VerifyPublic,
)
from schemas.params import Count, Instant, Seq
from schemas.types import format_instant
from web.deps import (
    ClockDep,
    CurrentEnterpriseAdmin,
    CurrentEnterpriseUser,
    IdempotencyKeyDep,
    SessionDep,
    UsernamePath,
    WriteSessionDep,
    verify_against_signer,
)
from web.lean import RECORD_KIND, RecordRoute
from web.public import (
    SALES_PAGE,
    SalesAfter,
    SalesLimit,
    page_sales,
    recorded_public,
    user_public,
    verify_public,
)

router = APIRouter(prefix="/api/v1", tags=["enterprise"])

RecordKind = StrEnum(  # type: ignore[misc]
    "RecordKind", {k.kind.upper(): k.kind for k in REGISTRY}
)
RecordKind.__doc__ = """The kinds of ledger entry. The value is the entry's ``kind`` field."""
MAX_PAGE = 500
"""The longest page of a list (``limit``); a longer one is refused (422)."""


def _create_route(name: str, schema: type) -> Any:
    kind = known_kind(name)

    def create(
        data: Any,
        scope: CurrentEnterpriseUser,
        session: WriteSessionDep,
        clock: ClockDep,
        response: Response,
        idempotency_key: IdempotencyKeyDep = None,
    ) -> RecordedPublic:
        result = record(
            session=session,
            ledger_id=scope.enterprise_id,
            kind=kind,
            data=data,
            actor=scope.actor,
            clock=clock,
            idempotency_key=idempotency_key,
        )
        if result.replayed:
            response.status_code = status.HTTP_200_OK
        return recorded_public(result)

    create.__annotations__["data"] = schema
    create.__name__ = f"create_{kind}"
    setattr(create, RECORD_KIND, kind)
    return create


def add_record_routes(target: APIRouter, kinds: Iterable[KindSpec]) -> None:
    """``POST /api/v1/enterprise<api_path>`` for every kind with an API path: the record's
    schema is the body, the answer the entry as appended."""
    for spec in kinds:
        if spec.api_path is None:
            continue
        target.add_api_route(
            spec.api_path,
            _create_route(spec.kind, spec.schema),
            methods=["POST"],
            status_code=status.HTTP_201_CREATED,
            response_model=RecordedPublic,
            summary=spec.api_summary,
            responses={200: {"description": "An idempotent retry: the first result"}},
            # well-formed requests take the lean path (one thread hand-off); the rest this route
            route_class_override=RecordRoute,
        )


add_record_routes(router, REGISTRY)


@router.post("/attachments", status_code=status.HTTP_201_CREATED, response_model=AttachmentPublic)
def upload_attachment(
    file: Annotated[UploadFile, File(description="A certificate or report scan (PDF, JPEG, PNG)")],
    scope: CurrentEnterpriseUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> AttachmentPublic:
    """Store a scan by its SHA-256; records then cite it in ``attachments``."""
    content = file.file.read()
    att = store_attachment(
        session=session,
        enterprise_id=scope.enterprise_id,
        content=content,
        media_type=file.content_type or "",
        filename=file.filename or "",
        now=clock.now(),
    )
    return AttachmentPublic(
        sha256=att.sha256, size=att.size, media_type=att.media_type, filename=att.filename
    )


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise RecordError.at(
            "query",
            msg="give the time zone, e.g. 2026-03-01T08:00:00+08:00",
            type="timezone_missing",
        )
    return format_instant(value)


@router.get("/ledger", response_model=EntriesPublic)
def list_ledger(
    scope: CurrentEnterpriseUser,
    session: SessionDep,
    offset: Annotated[Count, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    kind: RecordKind | None = None,
    since: Annotated[Instant | None, Query(description="recorded at or after (RFC 3339)")] = None,
    until: Annotated[Instant | None, Query(description="recorded before (RFC 3339)")] = None,
    before: Annotated[
        Seq | None,
        Query(description="the cursor: entries older than this seq (`next`)"),
    ] = None,
) -> EntriesPublic:
    """The ledger's entries, newest first: seq, kind, times, hashes; a page at most
    ``limit`` long (500 at most), the next one at ``before=<next>``."""
    entries, count = ledger.list_entries(
        session=session,
        ledger_id=scope.enterprise_id,
        offset=offset,
        limit=limit + 1,  # one more: whether a next page exists
        kind=kind,
        since=_instant(since),
        until=_instant(until),
        before=before,
    )
    more = len(entries) > limit
    entries = entries[:limit]
    fixes = queries.corrections_of(
        session=session, enterprise_id=scope.enterprise_id, seqs=[e.seq for e in entries]
    )
    data = [
        queries.entry_public(e, corrected_by=fixes.get(e.seq), with_body=False) for e in entries
    ]
    return EntriesPublic(data=data, count=count, next=entries[-1].seq if more else None)


@router.get("/ledger/entries/{seq}", response_model=EntryPublic)
def read_entry(
    seq: Annotated[Seq, Path()], scope: CurrentEnterpriseUser, session: SessionDep
) -> EntryPublic:
    """One entry with its record as stored, and the corrections that point at it."""
    entry = ledger.get_entry(session=session, ledger_id=scope.enterprise_id, seq=seq)
    fixes = queries.corrections_of(session=session, enterprise_id=scope.enterprise_id, seqs=[seq])
    return queries.entry_public(entry, corrected_by=fixes.get(seq), with_body=True)


@router.get("/ledger/verify", response_model=VerifyPublic)
def verify(request: Request, scope: CurrentEnterpriseUser) -> VerifyPublic:
    """Recompute the whole ledger from its stored bytes; name the first bad entry."""
    return verify_public(verify_against_signer(request, scope.enterprise_id)[0])


def _list_route(table: str) -> Any:
    def list_rows(scope: CurrentEnterpriseUser, session: SessionDep) -> RowsPublic:
        rows = queries.list_rows(session=session, enterprise_id=scope.enterprise_id, table=table)
        return RowsPublic(data=rows, count=len(rows))

    list_rows.__name__ = f"list_{table}"
    return list_rows


for _table, _path in (
    ("products", "/products"),
    ("suppliers", "/suppliers"),
    ("customers", "/customers"),
    ("material_lots", "/material-lots"),
    ("lots", "/lots"),
):
    router.add_api_route(
        _path,
        _list_route(_table),
        methods=["GET"],
        response_model=RowsPublic,
        summary=f"Current {_table.replace('_', ' ')}",
    )


@router.get("/lots/{lot_code}", response_model=LotPublic)
def read_lot(
    lot_code: Annotated[str, Path(min_length=1, max_length=64)],
    scope: CurrentEnterpriseUser,
    session: SessionDep,
    sales_limit: SalesLimit = SALES_PAGE,
    sales_after: SalesAfter = None,
) -> LotPublic:
    """A lot with its current records in time order and its mass balance (computed over
    every sale). Its sales come a page at a time (``sales_limit``: 1000, 5000 at most);
    ``sales_next`` is the next page's ``sales_after``."""
    view = queries.lot_view(session=session, enterprise_id=scope.enterprise_id, lot_code=lot_code)
    return page_sales(view, sales_limit, sales_after)


@router.post("/enterprise/users", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
def add_enterprise_user(
    data: UserCreate, scope: CurrentEnterpriseAdmin, session: WriteSessionDep, clock: ClockDep
) -> UserPublic:
    """The enterprise admin adds a user to their own enterprise."""
    from foodtrace.accounts.models import Enterprise
    from foodtrace.accounts.service import ENTERPRISE_ROLES, add_user
    from foodtrace.errors import RecordError

    if data.role not in ENTERPRISE_ROLES:
        raise RecordError.at("role", msg="enterprise_user or enterprise_admin", type="invalid")
    own = session.get(Enterprise, scope.enterprise_id)
    assert own is not None
    user = add_user(
        session=session,
        username=data.username,
        password=data.password,
        role=data.role,
        now=clock.now(),
        display_name=data.display_name,
        enterprise_credit_code=own.credit_code,
    )
    return user_public(session, user)


@router.patch(
    "/enterprise/users/{username}",
    response_model=UserPublic,
    responses={
        404: {"description": "no such user in your enterprise"},
        409: {"description": "the enterprise's last active admin"},
    },
)
def change_enterprise_user(
    username: UsernamePath,
    data: UserUpdate,
    scope: CurrentEnterpriseAdmin,
    session: WriteSessionDep,
    clock: ClockDep,
) -> UserPublic:
    """Disable or enable one of the enterprise's users, or change their role; recorded.

    A disabled user's sessions and tokens stop at their next request (401). The last active
    admin of the enterprise can be neither disabled nor demoted (409).
    """
    user = change_user(
        session=session,
        username=username,
        actor=scope.actor,
        now=clock.now(),
        active=data.active,
        role=data.role,
        enterprise_id=scope.enterprise_id,
    )
    return user_public(session, user)


@router.get("/today", response_model=TodayPublic)
def read_today(
    scope: CurrentEnterpriseUser,
    session: SessionDep,
    clock: ClockDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="entries recorded a page")] = 200,
    before: Annotated[
        Seq | None,
        Query(description="the cursor: entries older than this seq (`next`)"),
    ] = None,
) -> TodayPublic:
    """What was recorded today (newest first, a page of at most ``limit``; the next page at
    ``before=<next>``), and what the enterprise still owes, worst first."""
    now = clock.now()
    view = obligations.today_view(
        session=session, enterprise_id=scope.enterprise_id, now=now, limit=limit + 1, before=before
    )
    more = len(view.recorded) > limit
    recorded = view.recorded[:limit]
    return TodayPublic(
        day=view.day.isoformat(),
        recorded=recorded,
        owed=[ObligationPublic(**vars(o)) for o in view.owed],
        recorded_count=obligations.recorded_today_count(
            session=session, enterprise_id=scope.enterprise_id, now=now
        ),
        next=recorded[-1]["seq"] if more else None,
    )


@router.get("/enterprise/tokens", response_model=list[ApiTokenPublic])
def list_tokens(scope: CurrentEnterpriseAdmin, session: SessionDep) -> list[ApiTokenPublic]:
    """The enterprise's long-lived API tokens (never the tokens themselves)."""
    return [
        ApiTokenPublic.model_validate(t)
        for t in list_api_tokens(session=session, enterprise_id=scope.enterprise_id)
    ]


@router.post(
    "/enterprise/tokens", status_code=status.HTTP_201_CREATED, response_model=ApiTokenCreated
)
def create_token(
    data: ApiTokenCreate, scope: CurrentEnterpriseAdmin, session: WriteSessionDep, clock: ClockDep
) -> ApiTokenCreated:
    """Create an API token for an ERP or MES; the token is shown in this answer only."""
    token = create_api_token(
        session=session, user_id=scope.principal.user_id, name=data.name, now=clock.now()
    )
    created = list_api_tokens(session=session, enterprise_id=scope.enterprise_id)[-1]
    return ApiTokenCreated.model_validate({**created, "token": token})


@router.delete("/enterprise/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(
    token_id: Annotated[Seq, Path()],
    scope: CurrentEnterpriseAdmin,
    session: WriteSessionDep,
) -> None:
    """Revoke an API token: it stops working at once."""
    revoke_api_token(session=session, enterprise_id=scope.enterprise_id, token_id=token_id)


@router.get("/enterprise/reads", response_model=list[dict[str, Any]])
def regulator_reads(scope: CurrentEnterpriseUser, session: SessionDep) -> list[dict[str, Any]]:
    """Who among the regulators read this enterprise's records, and when (newest first)."""
    return reads_of(session=session, enterprise_id=scope.enterprise_id)
