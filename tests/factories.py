"""Small factories of realistic records (identifiers from DOMAIN.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from foodtrace.clock import Clock
from foodtrace.db import write_session
from foodtrace.records.service import Recorded, record, register_enterprise

BEVERAGE = "91370404MA3F42206T"
SUGAR = "91370404MA3793PC3E"
MEAT = "91370404MA3CHX9R46"
DAIRY = "91370404MA3Q17GH1G"
WORKSHOP = "91370404MA3B8Q5T6A"
DISTRIBUTOR = "91370404MA3386YX15"


def enterprise(credit_code: str = BEVERAGE, **over: Any) -> dict[str, Any]:
    data = {
        "credit_code": credit_code,
        "name": "枣庄峄城石榴饮品有限公司",
        "kind": "manufacturer",
        "licence_no": "SC10637040400012",
        "region_code": "370404",
        "address": "山东省枣庄市峄城区榴园路 8 号",
        "contact": "0632-7711234",
    }
    return {**data, **over}


def product(**over: Any) -> dict[str, Any]:
    data = {
        "code": "PJ500",
        "name": "石榴汁饮料",
        "category": "饮料",
        "standard": "GB 7101",
        "gtin": "6921234560013",
        "specification": "500 mL/瓶",
        "unit": "瓶",
        "packaging": [{"unit": "箱", "quantity": "24"}],
        "shelf_life_days": 365,
        "ccp_plan": [
            {
                "code": "CCP1",
                "name": "巴氏杀菌",
                "parameters": [
                    {
                        "code": "temperature",
                        "name": "杀菌温度",
                        "unit": "°C",
                        "min": "85",
                        "frequency_minutes": 30,
                    },
                    {
                        "code": "holding_time",
                        "name": "保持时间",
                        "unit": "s",
                        "min": "15",
                        "frequency_minutes": 30,
                    },
                ],
            },
            {
                "code": "CCP2",
                "name": "灌装封口",
                "parameters": [{"code": "seal", "name": "封口完整性", "kind": "pass_fail"}],
            },
        ],
        "release_items": [
            {"item": "菌落总数", "limit": "≤100", "unit": "CFU/mL"},
            {"item": "大肠菌群", "limit": "≤1", "unit": "CFU/mL"},
        ],
    }
    return {**data, **over}


SUGAR_PRODUCT: dict[str, Any] = product(
    code="WS50",
    name="白砂糖",
    category="食糖",
    standard="GB/T 317",
    gtin=None,
    specification="50 kg/袋",
    unit="kg",
    packaging=[],
    shelf_life_days=None,
    ccp_plan=[],
    release_items=[{"item": "蔗糖分", "limit": "≥99.6", "unit": "g/100g"}],
)
"""White sugar in kg with no CCP plan: what the sugar maker of the trail tests makes."""


def supplier(**over: Any) -> dict[str, Any]:
    data = {
        "code": "SUGAR01",
        "name": "枣庄鲁南糖业有限公司",
        "credit_code": SUGAR,
        "licence_no": "SC10137040400011",
        "address": "山东省枣庄市峄城区坛山街道",
        "contact": "0632-7720001",
    }
    return {**data, **over}


def customer(**over: Any) -> dict[str, Any]:
    data = {
        "code": "DIST01",
        "name": "枣庄惠民食品经销有限公司",
        "credit_code": DISTRIBUTOR,
        "address": "山东省枣庄市市中区光明路 20 号",
        "contact": "13806321234",
    }
    return {**data, **over}


def material_check(**over: Any) -> dict[str, Any]:
    data = {
        "material_lot": "ML-0301-01",
        "material_name": "白砂糖",
        "material_type": "raw_material",
        "specification": "50 kg/袋",
        "quantity": "2000",
        "unit": "kg",
        "batch_no": "BT20260301",
        "production_date": "2026-02-20",
        "shelf_life": "24个月",
        "receipt_date": "2026-03-01",
        "supplier_code": "SUGAR01",
        "supplier_licence_checked": True,
        "supplier_licence_no": "SC10137040400011",
        "certificate_no": "HG-20260301-07",
        "accepted": True,
        "inspector": "王敏",
    }
    return {**data, **over}


def production_lot(**over: Any) -> dict[str, Any]:
    data = {
        "product_code": "PJ500",
        "lot_code": "PJ20260301A",
        "production_date": "2026-03-01",
        "started_at": "2026-03-01T08:00:00+08:00",
        "ended_at": "2026-03-01T11:00:00+08:00",
        "quantity": "400",
        "unit": "箱",
        "materials": [{"material_lot": "ML-0301-01", "quantity": "300", "unit": "kg"}],
    }
    return {**data, **over}


def cane_receipt(
    material_lot: str, batch_no: str, quantity: str, receipt_date: str, **over: Any
) -> dict[str, Any]:
    """The sugar maker's check of cane from the cooperative CANE (a supplier with no credit
    code), cut the day before it was received."""
    from datetime import date, timedelta

    cut = (date.fromisoformat(receipt_date) - timedelta(days=1)).isoformat()
    data = material_check(
        material_lot=material_lot, material_name="甘蔗", supplier_code="CANE", batch_no=batch_no,
        quantity=quantity, receipt_date=receipt_date, production_date=cut,
    )  # fmt: skip
    return {**data, **over}


def sugar_lot(
    lot_code: str, day: str, cane_lot: str, quantity: str = "5000", cane: str = "40000", **over: Any
) -> dict[str, Any]:
    """A lot of SUGAR_PRODUCT (kg) made on ``day``, 08:00 to 18:00, of ``cane`` kg of the
    material lot ``cane_lot``."""
    data = production_lot(
        product_code="WS50", lot_code=lot_code, production_date=day,
        started_at=f"{day}T08:00:00+08:00", ended_at=f"{day}T18:00:00+08:00",
        quantity=quantity, unit="kg",
        materials=[{"material_lot": cane_lot, "quantity": cane, "unit": "kg"}],
    )  # fmt: skip
    return {**data, **over}


def ccp_record(**over: Any) -> dict[str, Any]:
    data = {
        "lot_code": "PJ20260301A",
        "ccp": "CCP1",
        "parameter": "temperature",
        "value": "86.5",
        "unit": "°C",
        "measured_at": "2026-03-01T08:30:00+08:00",
        "operator": "李强",
    }
    return {**data, **over}


def release_test(**over: Any) -> dict[str, Any]:
    data = {
        "lot_code": "PJ20260301A",
        "tested_at": "2026-03-01T15:00:00+08:00",
        "items": [
            {"item": "菌落总数", "result": "40", "unit": "CFU/mL", "limit": "≤100", "passed": True},
            {"item": "大肠菌群", "result": "<1", "unit": "CFU/mL", "limit": "≤1", "passed": True},
        ],
        "conclusion": "pass",
        "inspector": "赵丽",
        "report_no": "JC-20260301-01",
    }
    return {**data, **over}


def sale(**over: Any) -> dict[str, Any]:
    data = {
        "lot_code": "PJ20260301A",
        "quantity": "100",
        "unit": "箱",
        "sale_date": "2026-03-01",
        "customer_code": "DIST01",
    }
    return {**data, **over}


def self_inspection(**over: Any) -> dict[str, Any]:
    data = {
        "period": "daily",
        "period_date": "2026-03-01",
        "items": [{"item": "从业人员健康", "result": "ok"}, {"item": "车间卫生", "result": "ok"}],
        "inspector": "赵丽",
    }
    return {**data, **over}


def add(
    engine: Engine, clock: Clock, ledger_id: int, kind: str, data: dict[str, Any], **kw: Any
) -> Recorded:
    """Record one record in its own transaction."""
    with write_session(engine) as session:
        return record(
            session=session,
            ledger_id=ledger_id,
            kind=kind,
            data=data,
            actor=kw.pop("actor", "qa"),
            clock=clock,
            **kw,
        )


def register(engine: Engine, clock: Clock, credit_code: str = BEVERAGE, **over: Any) -> int:
    """Register an enterprise; returns its ledger id."""
    with write_session(engine) as session:
        register_enterprise(
            session=session, data=enterprise(credit_code, **over), actor="admin", clock=clock
        )
    from sqlalchemy import select

    from foodtrace.ledger.models import Ledger

    with write_session(engine) as session:
        return session.execute(
            select(Ledger.id).where(Ledger.credit_code == credit_code)
        ).scalar_one()


def beverage_ledger(
    engine: Engine, clock: Clock, credit_code: str = BEVERAGE, *, released: bool = True
) -> int:
    """A beverage maker with master data, one material lot, one lot with a CCP reading,
    a release test (and the public declaration it makes due) and a sale: 10 entries.

    ``released=False``: a self-inspection where the release test would be, so no public
    declaration either: 9 private entries (for the Merkle log's tests, whose sizes count
    from 9)."""
    lid = register(engine, clock, credit_code)
    add(engine, clock, lid, "supplier", supplier())
    add(engine, clock, lid, "customer", customer())
    add(engine, clock, lid, "product", product())
    add(engine, clock, lid, "material_check", material_check())
    add(engine, clock, lid, "production_lot", production_lot())
    add(engine, clock, lid, "ccp_record", ccp_record())
    if released:
        add(engine, clock, lid, "release_test", release_test())
    else:
        add(engine, clock, lid, "self_inspection", self_inspection())
    add(engine, clock, lid, "sale", sale())
    return lid


def private_ledger(engine: Engine, clock: Clock, credit_code: str = BEVERAGE) -> int:
    """:func:`beverage_ledger` without a release: 9 private entries."""
    return beverage_ledger(engine, clock, credit_code, released=False)


DISTRICT_AUTHORITY_PREFIX = "11370404MB2854321"


def recall(engine: Engine, clock: Clock, credit_code: str, lot_code: str) -> str:
    """The district authority records a failed sample of the lot and notifies: the lot is
    recalled, with a public recall entry in the authority's ledger. Returns the case id."""
    from sqlalchemy import select

    from foodtrace.accounts.models import Authority
    from foodtrace.cases import service as cases
    from foodtrace.db import read_session
    from schemas.identifiers import credit_code_check_char

    code = DISTRICT_AUTHORITY_PREFIX + credit_code_check_char(DISTRICT_AUTHORITY_PREFIX)
    with read_session(engine) as s:
        known = s.execute(select(Authority).where(Authority.credit_code == code)).first()
    if known is None:
        authority(engine, clock, DISTRICT_AUTHORITY_PREFIX, "峄城区市场监督管理局", "370404")
    sample = {
        "credit_code": credit_code,
        "lot_code": lot_code,
        "test_item": "菌落总数",
        "result": "3.2×10⁴",
        "limit": "≤1×10⁴",
        "unit": "CFU/mL",
        "sampling_date": "2026-03-02",
        "report_no": "SJ-2026-0302",
    }
    with write_session(engine) as s:
        district = s.execute(select(Authority).where(Authority.credit_code == code)).scalar_one()
        opened = cases.open_case(
            session=s, authority=district, data=sample, actor="reg", clock=clock
        )
    with write_session(engine) as s:
        district = s.execute(select(Authority).where(Authority.credit_code == code)).scalar_one()
        cases.advance(
            session=s,
            authority=district,
            case_seq=int(opened.case_id.rsplit("-", 1)[1]),
            state="notified",
            note=None,
            actor="reg",
            clock=clock,
        )
    return opened.case_id


def raw_append(
    engine: Engine, clock: Clock, ledger_id: int, kind: str, body: dict[str, Any]
) -> int:
    """Append an entry of any kind without its projection; returns its seq.

    For the Merkle log's tests: a public declaration (a kind another branch
    adds), or an authority's public recall without the whole case flow.
    """
    from foodtrace.ledger.service import build_entry, lock_head, new_salt, write_entry
    from schemas.types import format_instant

    with write_session(engine) as session:
        head = lock_head(session=session, ledger_id=ledger_id)
        now = format_instant(clock.now())
        entry = build_entry(
            head=head, kind=kind, body=body, actor="qa", event_time=now, recorded_at=now,
            salt=new_salt(),
        )  # fmt: skip
        return write_entry(session=session, head=head, entry=entry).seq


REGULATOR_PASSWORD = "regulator pass 1"


def regulators(engine: Engine, clock: Clock) -> None:
    """A district regulator (峄城区, 370404: user reg_yc) and the city's (枣庄市, 370400:
    reg_city), with their authorities; password REGULATOR_PASSWORD."""
    for prefix, name, region, username in (
        ("11370404MB2854321", "峄城区市场监督管理局", "370404", "reg_yc"),
        ("11370400MB2854322", "枣庄市市场监督管理局", "370400", "reg_city"),
    ):
        code = authority(engine, clock, prefix, name, region)
        user(engine, clock, username, REGULATOR_PASSWORD, authority=code)


def bearer(client: Any, username: str, password: str = REGULATOR_PASSWORD) -> dict[str, str]:
    """The Authorization header of a fresh token for ``username`` (a TestClient or httpx)."""
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def notified_case(client: Any, regulator: dict[str, str]) -> str:
    """A failed sample of the world's lot PJ20260301A (enterprise A), opened and notified by
    the ``regulator`` (Authorization headers) through the API: the case id."""
    r = client.post(
        "/api/v1/failed-samples",
        headers=regulator,
        json={
            "credit_code": BEVERAGE, "lot_code": "PJ20260301A", "test_item": "菌落总数",
            "result": "3200", "limit": "≤100", "sampling_date": "2026-03-02",
            "report_no": "SJ-1",
        },
    )  # fmt: skip
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    r = client.post(f"/api/v1/cases/{case_id}/steps", headers=regulator, json={"state": "notified"})
    assert r.status_code == 200, r.text
    return case_id


def page_login(client: Any, username: str, password: str, **kwargs: Any) -> Any:
    """Sign a test client's browser in through the login page, as a browser does: the form
    (and its pre-session CSRF cookie) first, then the post with the form's token."""
    import re

    form = client.get("/login", follow_redirects=False)
    if form.status_code != 200:  # signed in already: the login page sends the browser home
        client.cookies.delete("ft_session")
        form = client.get("/login", follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text[:2000]
    data = {"username": username, "password": password, "csrf_token": token.group(1)}
    return client.post("/login", data={**data, **kwargs.pop("data", {})}, **kwargs)


def move_head(conn: Any, ledger_id: int) -> None:
    """Point a ledger's head (size, head hash, Merkle compact range) at the entries it holds
    now, as a tamperer who removed or rewrote entries, or a restored backup, leaves it."""
    from sqlalchemy import text

    from foodtrace.tlog import merkle

    rows = conn.execute(
        text("SELECT hash FROM entries WHERE ledger_id = :l ORDER BY seq"), {"l": ledger_id}
    )
    hashes = [bytes(h) for (h,) in rows]
    conn.execute(
        text("UPDATE ledgers SET size = :n, head_hash = :h, compact_range = :c WHERE id = :l"),
        {
            "n": len(hashes),
            "h": hashes[-1],
            "c": merkle.CompactRange.of(hashes).to_bytes(),
            "l": ledger_id,
        },
    )


def user(
    engine: Engine, clock: Clock, username: str, password: str, *,
    enterprise: str | None = None, authority: str | None = None,
    role: str | None = None, display_name: str | None = None,
) -> None:  # fmt: skip
    """Add a user in a transaction of its own: the user of ``enterprise`` or a regulator of
    ``authority`` (credit codes), or one of ``role`` (an enterprise's admin, the platform's)."""
    from foodtrace.accounts.service import Role, add_user

    if role is None:
        role = Role.REGULATOR if authority else Role.ENTERPRISE_USER
    with write_session(engine) as s:
        add_user(
            session=s, username=username, password=password, role=role, now=clock.now(),
            display_name=display_name, enterprise_credit_code=enterprise,
            authority_credit_code=authority,
        )  # fmt: skip


def authority(engine: Engine, clock: Clock, prefix: str, name: str, region: str) -> str:
    """Register a supervising authority over one region in a transaction of its own;
    ``prefix``: its credit code but the check character. Returns the credit code."""
    from foodtrace.accounts.service import create_authority
    from schemas.identifiers import credit_code_check_char

    code = prefix + credit_code_check_char(prefix)
    with write_session(engine) as s:
        create_authority(
            session=s, credit_code=code, name=name, region_codes=[region], now=clock.now()
        )
    return code
