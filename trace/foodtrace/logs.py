"""Log formats: uvicorn's text lines, or one JSON object a line for a log collector.

``TRACE_LOG_FORMAT=json`` (production, docker/compose.yaml) writes every record as::

    {"time": "2026-03-02T08:30:00.123Z", "level": "INFO", "logger": "uvicorn.access",
     "message": "...", "pid": 7, "client": "10.0.0.5:51234", "method": "GET",
     "path": "/readyz", "status": 200}

Only the fields named here are written, never a record's arbitrary extras: a
log line must not become a way for a password, token or cookie to leave the
process (tests/test_security.py checks the access log for them).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "foodtrace")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (RFC 3339 UTC), level, logger, message, pid; for an
    access-log record also client, method, path and status; ``exception`` with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        # uvicorn's access log: args = (client_addr, method, full_path, http_version, status)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            if len(record.args) == 5:
                client, method, path, _version, status = record.args
                doc.update(client=str(client), method=method, path=path, status=status)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def log_config(fmt: str, *, level: str = "INFO") -> dict[str, Any] | None:
    """A :func:`logging.config.dictConfig` for uvicorn's ``log_config``; None keeps uvicorn's own
    text format (``fmt`` is ``text``)."""
    if fmt == "text":
        return None
    if fmt != "json":
        raise ValueError(f"unknown log format {fmt!r}: text or json")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "foodtrace.logs.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {
            name: {"handlers": ["stdout"], "level": level, "propagate": False} for name in LOGGERS
        },
        "root": {"handlers": ["stdout"], "level": "WARNING"},
    }
