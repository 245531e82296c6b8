"""Golden pictures of what the code writes and publishes, to prove a redesign changed none of it.

``picture(engine)`` digests every table the ledgers and their projection write (every
entry's bytes, every derived table, row by row); ``published()`` digests the OpenAPI
document and every import template. The recorded values live in ``tests/golden/demo.json``
(the demo district of ``DEMO_TODAY``, per database kind), checked by ``tests/test_golden.py``.

A change that *means* to alter one of them (a new route, a new table) rewrites the file:

    FOODTRACE_GOLDEN_WRITE=1 .venv/bin/python -m pytest tests/test_golden.py -p no:cacheprovider

and says so in its commit message.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, select

from foodtrace.db import read_session

GOLDEN = Path(__file__).with_name("golden") / "demo.json"

# Tables whose contents are not the ledger's or its projection's: salted password hashes,
# tokens, sign-in and read logs, signed checkpoints (each test run signs with a new key).
NOT_RECORDS = frozenset(
    {
        "alembic_version",
        "api_tokens",
        "checkpoints",
        "import_keys",
        "login_throttle",
        "platform",
        "regulator_reads",
        "user_changes",
        "users",
    }
)


def deterministic_salts(monkeypatch: Any) -> None:
    """Entries carry 16 random bytes of salt each; a picture needs them fixed: the n-th
    salt of the run is SHA-256("golden salt n"), cut to 16 bytes."""
    import base64
    import itertools

    from foodtrace.ledger import service

    counter = itertools.count()

    def new_salt() -> str:
        raw = hashlib.sha256(f"golden salt {next(counter)}".encode()).digest()[:16]
        return base64.b64encode(raw).decode("ascii")

    monkeypatch.setattr(service, "new_salt", new_salt)
    monkeypatch.setattr(service, "new_salts", lambda n: [new_salt() for _ in range(n)])


def _plain(v: Any) -> Any:
    return bytes(v) if isinstance(v, memoryview) else v


def picture(engine: Engine) -> dict[str, str]:
    """``{table: "rows:sha256"}`` for every ledger and derived table in the database itself
    (reflected, so that no table the code forgets to declare escapes the picture)."""
    meta = MetaData()
    meta.reflect(bind=engine)
    out: dict[str, str] = {}
    with read_session(engine) as session:
        for name in sorted(meta.tables):
            if name in NOT_RECORDS:
                continue
            table = meta.tables[name]
            cols = sorted(table.columns, key=lambda c: c.name)
            rows = sorted(repr(tuple(map(_plain, r))) for r in session.execute(select(*cols)))
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            out[name] = f"{len(rows)}:{digest}"
    return out


def published() -> dict[str, str]:
    """The OpenAPI document and the import templates (CSV bytes; XLSX cell values, since an
    XLSX file carries the time it was written)."""
    from openpyxl import load_workbook

    from foodtrace.imports import IMPORTABLE, template_csv, template_xlsx
    from webapp.main import create_app

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    doc = json.dumps(create_app().openapi(), sort_keys=True, ensure_ascii=False)
    out = {"openapi": sha(doc.encode())}
    for kind in IMPORTABLE:
        out[f"template.{kind}.csv"] = sha(template_csv(kind))
        book = load_workbook(io.BytesIO(template_xlsx(kind)))
        cells = [
            [ws.title, [[c.value for c in row] for row in ws.iter_rows()]] for ws in book.worksheets
        ]
        text = json.dumps(cells, ensure_ascii=False, default=str)
        out[f"template.{kind}.xlsx"] = sha(text.encode())
    return out


def recorded() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}


def write(section: str, value: dict[str, str]) -> None:
    data = recorded()
    data[section] = value
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
