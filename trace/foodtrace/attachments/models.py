"""Content-addressed attachments (Art. 50: certificates and inspection reports)."""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel


class Attachment(SQLModel, table=True):
    """A scan or PDF stored by its SHA-256; never overwritten. Entries carry the hash."""

    __tablename__ = "attachments"

    enterprise_id: int = Field(primary_key=True)
    sha256: str = Field(primary_key=True, max_length=64)
    media_type: str = Field(max_length=100)
    filename: str = Field(max_length=255)
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: str = Field(max_length=32)
