"""Completeness on the demo district: every planted defect appears, in the regulator's view."""

from __future__ import annotations

from datetime import date

import pytest

from foodtrace.demo import DEMO_PASSWORD, load_demo

TODAY = date(2026, 11, 1)


@pytest.fixture
def demo(engine) -> None:
    load_demo(engine=engine, today=TODAY)


def _login(client, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_demo_defects_appear_and_the_weakest_come_first(client, demo) -> None:
    r = client.get(
        "/api/v1/completeness",
        params={"since": "2026-10-01", "until": "2026-10-31"},
        headers=_login(client, "regulator"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["enterprises"]) == 5
    shares = [e["complete_share"] for e in body["enterprises"]]
    assert shares == sorted(shares)
    findings = {(f["rule"], f["lot"]) for e in body["enterprises"] for f in e["findings"]}
    for planted in (
        ("ccp_readings", "MK-D17"),  # a gap in the pasteurisation readings
        ("ccp_readings", "BF-D22"),  # a parameter never recorded
        ("release_test", "PJ-D19"),  # sold before its release test
        ("deviations_closed", "MK-D24"),  # an open deviation
        ("timely", "BF-D15"),
    ):  # a back-filled reading
        assert planted in findings, planted
    # the deviation closed later, and the one closed with its reading, are not findings
    assert ("deviations_closed", "PJ-D12") not in findings
    assert ("deviations_closed", "BF-D09") not in findings
    dairy = next(e for e in body["enterprises"] if "乳业" in e["name"])
    mk17 = next(x for x in dairy["lots"] if x["lot"] == "MK-D17")
    assert list(mk17["failed"]) == ["ccp_readings"]


def test_an_enterprise_sees_only_itself_and_bad_periods_are_refused(client, demo) -> None:
    h = _login(client, "juice-op")
    body = client.get(
        "/api/v1/completeness", params={"since": "2026-10-01", "until": "2026-10-31"}, headers=h
    ).json()
    assert [e["credit_code"] for e in body["enterprises"]] == ["91370404MA3F42206T"]
    r = client.get(
        "/api/v1/completeness", params={"since": "2026-10-31", "until": "2026-10-01"}, headers=h
    )
    assert r.status_code == 422
    assert client.get("/api/v1/completeness").status_code == 401
    admin = _login(client, "admin")
    assert client.get("/api/v1/completeness", headers=admin).status_code == 403
