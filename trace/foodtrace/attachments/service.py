"""Storing attachments by content: the SHA-256 of the bytes is their address."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlmodel import Session

from foodtrace.attachments.models import Attachment
from foodtrace.errors import RecordError
from schemas.types import clean_text, format_instant

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
ALLOWED_MEDIA_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/webp", "image/tiff")


def store_attachment(
    *,
    session: Session,
    enterprise_id: int,
    content: bytes,
    media_type: str,
    filename: str,
    now: datetime,
) -> Attachment:
    """Store ``content`` under its SHA-256; storing the same bytes again changes nothing."""
    if not content:
        raise RecordError.at("file", msg="the file is empty", type="empty")
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise RecordError.at(
            "file", msg=f"larger than {MAX_ATTACHMENT_BYTES} bytes", type="too_large"
        )
    if media_type not in ALLOWED_MEDIA_TYPES:
        raise RecordError.at(
            "file",
            msg=f"{media_type!r} is not a scan or PDF ({', '.join(ALLOWED_MEDIA_TYPES)})",
            type="media_type",
        )
    sha = hashlib.sha256(content).hexdigest()
    existing = session.get(Attachment, (enterprise_id, sha))
    if existing is not None:
        return existing
    try:
        name = clean_text(filename or "upload")[:255] or "upload"
    except ValueError as exc:
        raise RecordError.at("file", msg=f"file name: {exc}", type="invalid") from None
    att = Attachment(
        enterprise_id=enterprise_id,
        sha256=sha,
        media_type=media_type,
        filename=name,
        size=len(content),
        content=content,
        created_at=format_instant(now),
    )
    session.add(att)
    session.flush()
    return att
