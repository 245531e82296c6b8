"""Register the throwaway kind before any layer reads the registry, then use it through
every layer on the database named by argv[1]; prints one JSON line of what it saw."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import foodtrace.records.kinds as kinds  # noqa: E402
from kind_plugin import hygiene_check  # noqa: E402

# The one line a new kind adds to records/kinds/__init__.py:
kinds.REGISTRY = (*kinds.REGISTRY, hygiene_check.SPEC)
kinds.BY_KIND[hygiene_check.SPEC.kind] = hygiene_check.SPEC

from datetime import UTC, datetime  # noqa: E402

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select, update  # noqa: E402

from foodtrace import imports  # noqa: E402
from foodtrace.accounts.service import Role, add_user  # noqa: E402
from foodtrace.clock import SimulatedClock  # noqa: E402
from foodtrace.config import Settings  # noqa: E402
from foodtrace.db import make_engine, read_session, write_session  # noqa: E402
from foodtrace.verify import verify_all  # noqa: E402
from webapp.main import create_app  # noqa: E402

import factories as f  # noqa: E402

url = sys.argv[1]
engine = make_engine(url)
hygiene_check.TABLE.create(engine)  # the new kind's migration
clock = SimulatedClock(datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
seen: dict[str, object] = {}
ledger_id = f.register(engine, clock)
done = f.add(
    engine, clock, ledger_id, "hygiene_check",
    {"area": "灌装车间", "check_date": "2026-03-02", "result": "ok", "inspector": "王敏"},
)  # fmt: skip
seen["recorded"] = done.kind
with read_session(engine) as s:
    rows = s.execute(select(hygiene_check.TABLE)).all()
    seen["rows"] = [list(r[3:]) for r in rows]
    seen["verified"] = all(r.ok for r in verify_all(session=s))

# an import of a filled template
csv = imports.template_csv("hygiene_check").decode("utf-8-sig").splitlines()
content = "\n".join([csv[0], "原料库,2026-03-02,问题,李强"]).encode("utf-8-sig")
parsed = imports.parse("hygiene_check", "hygiene.csv", content)
seen["import_errors"] = [e.msg for e in parsed.errors]
with write_session(engine) as s:
    result = imports.run_import(
        session=s, ledger_id=ledger_id, kind="hygiene_check", parsed=parsed,
        actor="qa", clock=clock, dry_run=False,
    )  # fmt: skip
    seen["imported"] = result.written

# the API route and the generic page form
with write_session(engine) as s:
    add_user(
        session=s, username="qa", password="kind pass 2026", role=Role.ENTERPRISE_ADMIN,
        now=clock.now(), enterprise_credit_code=f.BEVERAGE,
    )  # fmt: skip
app = create_app(Settings(database_url=url), clock=clock, engine=engine)
with TestClient(app) as client:
    token = client.post(
        "/api/v1/auth/token", data={"username": "qa", "password": "kind pass 2026"}
    ).json()["access_token"]
    r = client.post(
        "/api/v1/hygiene-checks",
        headers={"Authorization": f"Bearer {token}"},
        json={"area": "包装间", "check_date": "2026-03-02", "result": "ok", "inspector": "王敏"},
    )
    seen["api"] = r.status_code
    seen["openapi"] = "/api/v1/hygiene-checks" in client.get("/openapi.json").json()["paths"]
    f.page_login(client, "qa", "kind pass 2026")
    page = client.get("/records/hygiene_check/new")
    seen["form"] = page.status_code
    seen["form_fields"] = [n for n in ("area", "check_date", "result", "inspector") if
                           f'name="{n}"' in page.text]  # fmt: skip
    index = client.get("/records")
    seen["index"] = "/records/hygiene_check/new" in index.text
with read_session(engine) as s:
    seen["verified_after"] = all(r.ok for r in verify_all(session=s))
with engine.begin() as conn:  # an edit behind the application's back
    conn.execute(update(hygiene_check.TABLE).values(clean=False))
with read_session(engine) as s:
    seen["tamper_found"] = not all(r.ok for r in verify_all(session=s))
engine.dispose()
print(json.dumps(seen, ensure_ascii=False))
