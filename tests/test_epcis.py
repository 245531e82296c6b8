"""The trail's EPCIS 2.0 export validates against the published EPCIS JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from test_trail import district, regulators  # noqa: F401  (fixtures)

import factories as f

VECTORS = Path(__file__).parent / "vectors" / "gs1-epcis"
SCHEMA = json.loads((VECTORS / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft7Validator(SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("example", sorted(p.name for p in VECTORS.glob("*.jsonld")))
def test_the_published_examples_validate(example: str) -> None:
    document = json.loads((VECTORS / example).read_text(encoding="utf-8"))
    assert list(VALIDATOR.iter_errors(document)) == []


def test_a_document_missing_its_event_time_does_not(engine) -> None:
    bad = {
        "@context": ["x"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-03-02T00:00:00Z",
        "epcisBody": {
            "eventList": [
                {"type": "ObjectEvent", "action": "OBSERVE", "eventTimeZoneOffset": "+08:00"}
            ]
        },
    }
    assert list(VALIDATOR.iter_errors(bad))


def test_trail_export_is_valid_epcis(client, district, regulators) -> None:  # noqa: F811
    r = client.get(
        f"/api/v1/lots/{f.BEVERAGE}/PJ20260301A/trail.epcis.jsonld",
        headers=f.bearer(client, "reg_city"),
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/ld+json")
    document = r.json()
    errors = [e.message for e in VALIDATOR.iter_errors(document)]
    assert errors == []
    events = document["epcisBody"]["eventList"]
    kinds = sorted({(e["type"], e.get("bizStep")) for e in events})
    assert kinds == [
        ("ObjectEvent", "receiving"),
        ("ObjectEvent", "shipping"),
        ("TransformationEvent", "commissioning"),
    ]
    production = [e for e in events if e["type"] == "TransformationEvent"]
    outputs = {e["outputQuantityList"][0]["epcClass"] for e in production}
    assert "https://trace.example.cn/01/06921234560013/10/PJ20260301A" in outputs
    assert f"https://trace.example.cn/lot/{f.SUGAR}/BT20260301" in outputs  # no GTIN
    shipped = [q for e in events if e.get("bizStep") == "shipping" for q in e["quantityList"]]
    assert {
        "epcClass": f"https://trace.example.cn/lot/{f.SUGAR}/BT20260301",
        "quantity": 2000.0,
        "uom": "KGM",
    } in shipped
