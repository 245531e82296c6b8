"""Shapes of the spreadsheet-import API's answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RowErrorPublic(BaseModel):
    """A problem with one cell, or with a whole row when ``column`` is empty."""

    row: int = Field(
        description="Spreadsheet row as the user sees it: the header is row 1; "
        "0 means the file as a whole"
    )
    column: str = Field(description="The column's header as written in the file")
    field: str = Field(
        "",
        description="The record field the column fills (dotted within an item: "
        "materials.quantity); empty for a whole row or the file",
    )
    type: str = Field("", description="What kind of problem, e.g. not_found, duplicate_in_file")
    message: str = Field(description="The problem as the core or the import states it")
    message_zh: str = Field("", description="What to do, in Chinese")
    message_en: str = Field("", description="What to do, in English")


class ImportResultPublic(BaseModel):
    """What an import wrote, or in a dry run would write; nothing is written if any row failed."""

    kind: str = Field(description="Record kind, e.g. sale")
    filename: str
    dry_run: bool
    ok: bool = Field(description="true when every row can be (or was) recorded")
    records: int = Field(description="Records read from the file (a nested record spans rows)")
    checked: int = Field(description="Records the ledger accepted")
    written: int = Field(description="Entries appended; 0 for a dry run or when any row failed")
    first_seq: int | None = None
    last_seq: int | None = None
    error_count: int
    errors: list[RowErrorPublic] = Field(
        description="Per-row problems, by row; at most the first 1000 (see error_count)"
    )
    warnings: list[RowErrorPublic] = Field(
        description="Accepted, but worth the user's attention (e.g. a sale before release)"
    )
    skipped_rows: list[int] = Field(
        default_factory=list, description="Rows skipped as the template's unchanged example"
    )
    counts: dict[str, int] = Field(
        default_factory=dict,
        description="What the file writes (or would): entries by kind, and <kind>.<items> "
        "for the rows of nested records",
    )
