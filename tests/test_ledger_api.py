"""The Merkle log over HTTP (SQLite and PostgreSQL): key, ledgers, checkpoints, proofs, access."""

from __future__ import annotations

import base64
from datetime import timedelta

from sqlalchemy import select, text

from conftest import data_fixture
from foodtrace.accounts.models import Authority
from foodtrace.accounts.service import Role, add_user, create_authority
from foodtrace.cases.service import authority_ledger
from foodtrace.db import read_session, write_session
from foodtrace.ledger import service as ledger
from foodtrace.tlog import merkle
from foodtrace.tlog.checkpoint import open_checkpoint, verify_checkpoint_extends, verify_entry_proof
from foodtrace.tlog.merkle import EMPTY_ROOT
from foodtrace.tlog.note import Verifier
from schemas.identifiers import credit_code_check_char

import factories as f


def _code(prefix: str) -> str:
    return prefix + credit_code_check_char(prefix)


DISTRICT = _code("11370404MB2854321")  # 峄城区: covers the beverage maker (370404)
CITY = _code("11370402MB2854333")  # 市中区: does not
PLATFORM = "trace.example.cn"
PASSWORD = "a long enough pass 1"


@data_fixture
def world(engine, clock) -> dict[str, int]:
    """The beverage maker (10 entries: its release test's public declaration at 9, the rest
    private), the sugar maker,
    the district's authority ledger (a private failed sample at 1, a public recall at 2), an
    empty ledger of the city's authority, and a user of each kind."""
    bev = f.beverage_ledger(engine, clock)
    sugar = f.register(engine, clock, f.SUGAR, name="枣庄鲁南糖业有限公司")
    with read_session(engine) as s:  # the release test (8) made the lot's declaration due
        assert ledger.get_entry(session=s, ledger_id=bev, seq=9).kind == "public_declaration"
    with write_session(engine) as s:
        for code, region in ((DISTRICT, "370404"), (CITY, "370402")):
            create_authority(
                session=s, credit_code=code, name=code, region_codes=[region], now=clock.now()
            )
        s.flush()
        district = authority_ledger(s, _authority(s, DISTRICT), clock).id
        city = authority_ledger(s, _authority(s, CITY), clock).id
        users = (
            ("own", Role.ENTERPRISE_USER, f.BEVERAGE, None),
            ("other", Role.ENTERPRISE_USER, f.SUGAR, None),
            ("reg_in", Role.REGULATOR, None, DISTRICT),
            ("reg_out", Role.REGULATOR, None, CITY),
        )
        for name, role, ent, auth in users:
            add_user(
                session=s, username=name, password=PASSWORD, role=role, now=clock.now(),
                enterprise_credit_code=ent, authority_credit_code=auth,
            )  # fmt: skip
    assert district is not None
    assert city is not None
    f.raw_append(engine, clock, district, "failed_sample", {"lot_code": "PJ20260301A"})
    recall = {"case_seq": 1, "lots": [{"credit_code": f.BEVERAGE, "lot_code": "PJ20260301A"}]}
    f.raw_append(engine, clock, district, "public_recall", recall)
    return {"beverage": bev, "sugar": sugar, "district": district, "city": city}


def _authority(session, code: str) -> Authority:  # type: ignore[no-untyped-def]
    return session.execute(select(Authority).where(Authority.credit_code == code)).scalar_one()


def _headers(client, who: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    if who == "anonymous":
        return {}
    r = client.post("/api/v1/auth/token", data={"username": who, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _vkey(client) -> list[Verifier]:  # type: ignore[no-untyped-def]
    r = client.get("/.well-known/foodtrace/checkpoint-key")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return [Verifier.from_vkey(r.text.strip())]


def _origin(code: str) -> str:
    return f"{PLATFORM}/ledger/{code}"


def test_the_verifier_key_is_published_as_text(client, app) -> None:
    r = client.get("/.well-known/foodtrace/checkpoint-key")
    assert r.text == app.state.signer.verifier.vkey + "\n"
    (key,) = _vkey(client)
    assert key.name == PLATFORM


def test_the_ledger_list_is_public_and_names_only_codes_and_origins(client, world) -> None:
    r = client.get("/api/v1/ledgers")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 4
    assert {x["credit_code"]: x["owner_kind"] for x in body["data"]} == {
        f.BEVERAGE: "enterprise",
        f.SUGAR: "enterprise",
        DISTRICT: "authority",
        CITY: "authority",
    }
    for x in body["data"]:
        assert set(x) == {"credit_code", "origin", "owner_kind"}
        assert x["origin"] == _origin(x["credit_code"])


def test_the_checkpoint_is_public_signed_on_demand_and_verifies(
    client, engine, clock, world
) -> None:
    keys = _vkey(client)
    r = client.get(f"/api/v1/ledgers/{f.BEVERAGE}/checkpoint")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    first, _ = open_checkpoint(r.text, keys, origin=_origin(f.BEVERAGE))
    assert first.size == 10
    assert client.get(f"/api/v1/ledgers/{f.BEVERAGE}/checkpoint").text == r.text  # not re-signed
    f.add(engine, clock, world["beverage"], "customer", f.customer(code="C2", name="第二客户"))
    r2 = client.get(f"/api/v1/ledgers/{f.BEVERAGE}/checkpoint")  # grew: signed now
    second, _ = open_checkpoint(r2.text, keys, origin=_origin(f.BEVERAGE))
    assert second.size == 11
    c = client.get(f"/api/v1/ledgers/{f.BEVERAGE}/proof/consistency", params={"from": 10, "to": 11})
    assert c.status_code == 200
    assert c.json()["from"] == 10
    assert c.json()["to"] == 11
    proof = [base64.b64decode(h) for h in c.json()["hashes"]]
    assert verify_checkpoint_extends(r.text, r2.text, proof, verifiers=keys).size == 11
    # the city's authority has an empty ledger: the checkpoint of the empty tree
    r = client.get(f"/api/v1/ledgers/{CITY}/checkpoint")
    empty, _ = open_checkpoint(r.text, keys, origin=_origin(CITY))
    assert (empty.size, empty.root) == (0, EMPTY_ROOT)
    assert client.get("/api/v1/ledgers/91370404MA3386YX15/checkpoint").status_code == 404


def test_a_public_entrys_tlog_proof_over_http_verifies_with_the_published_key(
    client, world
) -> None:
    keys = _vkey(client)
    r = client.get(f"/api/v1/ledgers/{f.BEVERAGE}/entries/9/tlog-proof")
    assert r.status_code == 200, r.text
    assert r.text.startswith("c2sp.org/tlog-proof@v1\nextra ")
    proven = verify_entry_proof(r.text, verifiers=keys, origin=_origin(f.BEVERAGE))
    assert proven.entry["kind"] == "public_declaration"
    assert proven.entry["body"]["lot_code"] == "PJ20260301A"
    assert proven.proof.checkpoint.size == 10
    r = client.get(f"/api/v1/ledgers/{DISTRICT}/entries/2/tlog-proof")
    proven = verify_entry_proof(r.text, verifiers=keys, origin=_origin(DISTRICT))
    assert proven.entry["kind"] == "public_recall"


def test_an_inclusion_proof_verifies_against_the_signed_checkpoint(client, world) -> None:
    keys = _vkey(client)
    r = client.get(f"/api/v1/ledgers/{f.BEVERAGE}/proof/inclusion", params={"seq": 9})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["seq"], body["index"], body["size"]) == (9, 8, 10)
    assert body["origin"] == _origin(f.BEVERAGE)
    cp, _ = open_checkpoint(body["checkpoint"], keys, origin=_origin(f.BEVERAGE))
    assert base64.b64decode(body["root"]) == cp.root
    merkle.verify_inclusion(
        index=8,
        size=10,
        leaf_hash=base64.b64decode(body["leaf_hash"]),
        proof=[base64.b64decode(h) for h in body["hashes"]],
        root=cp.root,
    )
    # At a size given: the checkpoint of that size if one was signed (none at 7).
    own = _headers(client, "own")
    r = client.get(
        f"/api/v1/ledgers/{f.BEVERAGE}/proof/inclusion", params={"seq": 3, "size": 7}, headers=own
    )
    body = r.json()
    assert body["checkpoint"] is None
    merkle.verify_inclusion(
        index=2,
        size=7,
        leaf_hash=base64.b64decode(body["leaf_hash"]),
        proof=[base64.b64decode(h) for h in body["hashes"]],
        root=base64.b64decode(body["root"]),
    )
    r = client.get(
        f"/api/v1/ledgers/{f.BEVERAGE}/proof/inclusion", params={"seq": 3, "size": 10}, headers=own
    )
    assert r.json()["checkpoint"] is not None


# who -> status for a private entry of the beverage maker, and of the district's authority
PRIVATE_ENTERPRISE = {"anonymous": 401, "own": 200, "other": 403, "reg_in": 200, "reg_out": 403}
PRIVATE_AUTHORITY = {"anonymous": 401, "own": 403, "other": 403, "reg_in": 200, "reg_out": 403}


def test_who_may_prove_which_entry(client, world) -> None:
    heads = {who: _headers(client, who) for who in PRIVATE_ENTERPRISE}
    cases = [
        (f.BEVERAGE, 3, PRIVATE_ENTERPRISE),  # a customer record
        (f.BEVERAGE, 10, PRIVATE_ENTERPRISE),  # a sale
        (f.BEVERAGE, 9, dict.fromkeys(PRIVATE_ENTERPRISE, 200)),  # the public declaration
        (DISTRICT, 1, PRIVATE_AUTHORITY),  # a failed sample
        (DISTRICT, 2, dict.fromkeys(PRIVATE_ENTERPRISE, 200)),  # the public recall
    ]
    seen = []
    for code, seq, expected in cases:
        for who, want in expected.items():
            tlog = client.get(
                f"/api/v1/ledgers/{code}/entries/{seq}/tlog-proof", headers=heads[who]
            )
            incl = client.get(
                f"/api/v1/ledgers/{code}/proof/inclusion",
                params={"seq": seq},
                headers=heads[who],
            )
            seen.append((code, seq, who, tlog.status_code, incl.status_code))
            if want == 401:
                assert tlog.headers["www-authenticate"] == "Bearer"
            if want != 200:
                assert "extra" not in tlog.text  # no byte of a private entry
    assert seen == [
        (code, seq, who, want, want) for code, seq, exp in cases for who, want in exp.items()
    ]
    # Checkpoints and consistency proofs are public to all.
    for code in (f.BEVERAGE, DISTRICT):
        assert client.get(f"/api/v1/ledgers/{code}/checkpoint").status_code == 200
        r = client.get(f"/api/v1/ledgers/{code}/proof/consistency", params={"from": 1, "to": 2})
        assert r.status_code == 200
    # A bad token is refused, not treated as anonymous.
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.get(f"/api/v1/ledgers/{f.BEVERAGE}/checkpoint", headers=bad).status_code == 401


def test_a_regulators_proof_of_a_private_entry_is_logged(client, world) -> None:
    reg = _headers(client, "reg_in")
    assert client.get(f"/api/v1/ledgers/{f.BEVERAGE}/entries/4/tlog-proof", headers=reg).is_success
    assert client.get(f"/api/v1/ledgers/{f.BEVERAGE}/entries/9/tlog-proof", headers=reg).is_success
    reads = client.get("/api/v1/enterprise/reads", headers=_headers(client, "own")).json()
    assert [r["what"] for r in reads] == ["tlog-proof of ledger entry 4"]  # not the public one
    assert reads[0]["username"] == "reg_in"


BAD_PARAMETERS = [
    ("proof/inclusion", {"seq": 11}, "seq"),  # beyond the ledger
    ("proof/inclusion", {"seq": 8, "size": 7}, "seq"),  # seq > size
    ("proof/inclusion", {"seq": 3, "size": 11}, "size"),  # size > ledger size
    ("proof/inclusion", {"seq": 0}, "seq"),
    ("proof/inclusion", {"seq": "x"}, "seq"),
    ("proof/inclusion", {}, "seq"),
    ("proof/consistency", {"from": 5, "to": 4}, "from"),  # from > to
    ("proof/consistency", {"from": 5, "to": 11}, "to"),  # to > ledger size
    ("proof/consistency", {"from": -1, "to": 4}, "from"),
    ("proof/consistency", {"from": 1}, "to"),
]


def test_bad_parameters_get_422_naming_the_parameter(client, world) -> None:
    own = _headers(client, "own")
    for path, params, name in BAD_PARAMETERS:
        r = client.get(f"/api/v1/ledgers/{f.BEVERAGE}/{path}", params=params, headers=own)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", name], (path, params, r.text)


def test_consistency_proofs_at_the_edges(client, world) -> None:
    base = f"/api/v1/ledgers/{f.BEVERAGE}/proof/consistency"
    assert client.get(base, params={"from": 0, "to": 10}).json()["hashes"] == []
    assert client.get(base, params={"from": 10, "to": 10}).json()["hashes"] == []
    assert client.get(base, params={"from": 0, "to": 0}).json()["hashes"] == []
    assert client.get(f"/api/v1/ledgers/{f.BEVERAGE}/entries/11/tlog-proof").status_code == 404
    assert client.get("/api/v1/ledgers/short/checkpoint").status_code == 422


def test_a_ledger_that_lost_signed_entries_gets_no_checkpoint(client, engine, world) -> None:
    assert client.get(f"/api/v1/ledgers/{f.BEVERAGE}/checkpoint").status_code == 200  # at 10
    lid = world["beverage"]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM entries WHERE ledger_id = :l AND seq > 8"), {"l": lid})
        f.move_head(conn, lid)  # size 8
    r = client.get(f"/api/v1/ledgers/{f.BEVERAGE}/checkpoint")
    assert r.status_code == 409
    assert "signed at size 10" in r.json()["detail"]
    assert "holds 8 entries" in r.json()["detail"]
    # With the checkpoint rows gone too (a restored backup), the signer refuses instead.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM checkpoints WHERE ledger_id = :l"), {"l": lid})
    r = client.get(f"/api/v1/ledgers/{f.BEVERAGE}/checkpoint")
    assert r.status_code == 409
    assert "behind the last signed size" in r.json()["detail"]


def test_the_background_signer_and_on_demand_signing_agree(client, engine, clock, world) -> None:
    """A checkpoint asked for a second later, after growth, is the next size: one history."""
    keys = _vkey(client)
    notes = []
    for i in range(3):
        f.add(engine, clock, world["beverage"], "customer", f.customer(code=f"K{i}", name="客户"))
        clock.advance(timedelta(seconds=1))
        notes.append(client.get(f"/api/v1/ledgers/{f.BEVERAGE}/checkpoint").text)
    sizes = [open_checkpoint(n, keys)[0].size for n in notes]
    assert sizes == [11, 12, 13]
