"""foodtrace witness against the app: a growing ledger passes; rewritten or truncated, it fails."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from foodtrace import cli
from foodtrace.canonical import canonical_bytes, leaf_hash
from foodtrace.config import Settings
from foodtrace.tlog.note import NoteSigner, Verifier
from foodtrace.tlog.witness import Outcome, WitnessError, load_state, save_state, witness
from webapp.main import create_app

import factories as f
from servers import serving

PLATFORM = "trace.example.cn"


def _grow(engine, clock, lid: int, n: int, tag: str) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        f.add(engine, clock, lid, "customer", f.customer(code=f"{tag}{i}", name=f"客户 {tag}{i}"))
    clock.advance(timedelta(seconds=2))


def rewrite_from(engine, lid: int, seq: int) -> None:  # type: ignore[no-untyped-def]
    """Rewrite entry ``seq`` (a new salt) and re-chain every later one, head and Merkle range
    redone: every hash and link agrees afterwards; only signed checkpoints remember."""
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT seq, body FROM entries WHERE ledger_id = :l AND seq >= :s ORDER BY seq"),
            {"l": lid, "s": seq},
        ).all()
        prev = None
        for s, body in rows:
            env = json.loads(bytes(body))
            if s == seq:
                env["salt"] = "AAAAAAAAAAAAAAAAAAAAAA=="
            if prev is not None:
                env["prev_hash"] = prev.hex()
            data = canonical_bytes(env)
            prev = leaf_hash(data)
            conn.execute(
                text(
                    "UPDATE entries SET body = :b, hash = :h, prev_hash = :p "
                    "WHERE ledger_id = :l AND seq = :s"
                ),
                {"b": data, "h": prev, "p": bytes.fromhex(env["prev_hash"]), "l": lid, "s": s},
            )
        f.move_head(conn, lid)


def truncate_to(engine, lid: int, size: int, *, drop_checkpoints: bool) -> None:  # type: ignore[no-untyped-def]
    """Delete the entries after ``size`` and move the head back (``drop_checkpoints``: the
    checkpoints signed beyond it go too, as when an older backup is restored)."""
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM customers WHERE enterprise_id = :l AND record_seq > :n"),
            {"l": lid, "n": size},
        )
        conn.execute(
            text("DELETE FROM entries WHERE ledger_id = :l AND seq > :n"), {"l": lid, "n": size}
        )
        f.move_head(conn, lid)
        if drop_checkpoints:
            conn.execute(
                text("DELETE FROM checkpoints WHERE ledger_id = :l AND size > :n"),
                {"l": lid, "n": size},
            )


@pytest.fixture
def site(client, engine, clock):  # type: ignore[no-untyped-def]
    """Two ledgers behind the app, and a witness run that keeps its state in memory."""
    ids = {
        "beverage": f.private_ledger(engine, clock),
        "sugar": f.register(engine, clock, f.SUGAR, name="枣庄鲁南糖业有限公司"),
    }
    keys = [Verifier.from_vkey(client.app.state.signer.verifier.vkey)]
    state: dict[str, str] = {}

    def run(**kw) -> dict[str, Outcome]:  # type: ignore[no-untyped-def]
        found = witness(client=client, verifiers=keys, state=state, platform=PLATFORM, **kw)
        return {o.credit_code: o for o in found}

    return ids, run, state


def test_a_growing_ledger_passes(engine, clock, site) -> None:
    ids, run, state = site
    first = run()
    assert {c: (o.ok, o.message) for c, o in first.items()} == {
        f.BEVERAGE: (True, "first seen at size 9"),
        f.SUGAR: (True, "first seen at size 1"),
    }
    _grow(engine, clock, ids["beverage"], 3, "A")
    second = run()
    assert second[f.BEVERAGE].ok
    assert second[f.BEVERAGE].message == "size 9 -> 12, consistent"
    assert second[f.SUGAR].message == "unchanged at size 1"
    _grow(engine, clock, ids["beverage"], 1, "B")
    assert run(ledgers=[f.BEVERAGE.lower()])[f.BEVERAGE].message == "size 12 -> 13, consistent"
    assert set(state) == {f.BEVERAGE, f.SUGAR}


def test_a_rewritten_ledger_fails_whether_or_not_the_server_signs_it(
    engine, clock, site, tmp_path
) -> None:
    ids, run, state = site
    lid = ids["beverage"]
    run()
    _grow(engine, clock, lid, 3, "A")
    assert run()[f.BEVERAGE].ok  # seen at 12
    seen = state[f.BEVERAGE]
    rewrite_from(engine, lid, 5)
    _grow(engine, clock, lid, 1, "B")
    # The platform's signer remembers size 12 and refuses to sign the rewritten tree.
    out = run()[f.BEVERAGE]
    assert not out.ok
    assert "the server gave no checkpoint (HTTP 409" in out.message
    assert "does not extend it" in out.message
    assert out.message.endswith("last seen: size 12")
    assert out.size == 12
    assert state[f.BEVERAGE] == seen  # the failing ledger's state is kept
    assert run()[f.SUGAR].ok  # the others carry on
    # A server that forgot what it signed (its signer state lost, or an operator signing a
    # rewritten history): the signature is good, the consistency proof is not.
    (tmp_path / "signing.key.state.json").unlink()
    out = run()[f.BEVERAGE]
    assert not out.ok
    assert out.message.startswith(
        "the checkpoint at size 13 is not consistent with the one seen at size 12: "
        "the ledger was rewritten or forked"
    )
    assert state[f.BEVERAGE] == seen


def test_a_rewrite_at_the_same_size_is_a_fork(engine, clock, site, tmp_path) -> None:
    ids, run, state = site
    run()
    rewrite_from(engine, ids["beverage"], 9)
    with engine.begin() as conn:  # as if the checkpoint at 9 had never been signed
        conn.execute(text("DELETE FROM checkpoints WHERE ledger_id = :l"), {"l": ids["beverage"]})
    (tmp_path / "signing.key.state.json").unlink()
    out = run()[f.BEVERAGE]
    assert not out.ok
    assert "two different signed roots at size 9" in out.message


def test_a_truncated_ledger_fails_naming_the_sizes(engine, clock, site) -> None:
    ids, run, state = site
    lid = ids["beverage"]
    run()  # signed and seen at 9
    _grow(engine, clock, lid, 3, "A")
    assert run()[f.BEVERAGE].size == 12
    # Rows deleted, the checkpoints beyond left: the server withholds its checkpoint.
    truncate_to(engine, lid, 9, drop_checkpoints=False)
    out = run()[f.BEVERAGE]
    assert not out.ok
    assert "HTTP 409" in out.message
    assert "signed at size 12, but the ledger holds 9 entries" in out.message
    assert out.message.endswith("last seen: size 12")
    # An older backup restored (the checkpoints beyond 9 gone too): the server serves the
    # checkpoint it signed at 9, and the witness sees the ledger go back.
    truncate_to(engine, lid, 9, drop_checkpoints=True)
    out = run()[f.BEVERAGE]
    assert not out.ok
    assert out.message == (
        "the ledger went back from size 12 to 9: truncated, or restored from an older backup"
        "; last seen: size 12"
    )


def test_a_checkpoint_signed_by_another_key_fails(client, site) -> None:
    _ids, _run, _state = site
    stranger = NoteSigner.generate(PLATFORM).verifier
    found = witness(client=client, verifiers=[stranger], state={}, platform=PLATFORM)
    assert not any(o.ok for o in found)
    assert "the checkpoint does not verify: no known key signed the note" in found[0].message
    found = witness(client=client, verifiers=[stranger], state={}, platform="other.example.cn")
    assert not any(o.ok for o in found)


def test_the_state_file_round_trips_and_a_bad_one_stops_the_witness(tmp_path) -> None:
    path = tmp_path / "w.json"
    assert load_state(path) == {}
    save_state(path, {"B": "note b\n", "A": "note a\n"})
    assert load_state(path) == {"A": "note a\n", "B": "note b\n"}
    assert path.stat().st_mode & 0o077 == 0
    path.write_text("{}")
    with pytest.raises(WitnessError, match="unreadable"):
        load_state(path)


# ------------------------------------------------------------- the command, over real HTTP


@pytest.fixture
def server(db_url, engine, clock):  # type: ignore[no-untyped-def]
    """The app served by uvicorn in a thread on a free port."""
    app = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
    with serving(app) as url:
        yield url, app


def test_the_witness_command_passes_then_fails_loudly_on_truncation(
    engine, clock, server, tmp_path: Path
) -> None:
    url, app = server
    lid = f.private_ledger(engine, clock)
    vkey = app.state.signer.verifier.vkey
    state = tmp_path / "witness.json"
    runner = CliRunner()

    def run():  # type: ignore[no-untyped-def]
        return runner.invoke(
            cli.app, ["witness", "--server", url, "--key", vkey, "--state", str(state)]
        )

    r = run()
    assert r.exit_code == 0, r.output
    assert f"ok    {f.BEVERAGE}  first seen at size 9" in r.stdout
    _grow(engine, clock, lid, 3, "A")
    r = run()
    assert r.exit_code == 0, r.output
    assert f"ok    {f.BEVERAGE}  size 9 -> 12, consistent" in r.stdout
    assert json.loads(state.read_text())["ledgers"][f.BEVERAGE].split("\n")[1] == "12"
    truncate_to(engine, lid, 9, drop_checkpoints=True)
    r = run()
    assert r.exit_code == 1
    assert f"FAIL  {f.BEVERAGE}  the ledger went back from size 12 to 9" in r.stdout
    assert f"WITNESS FAILED: ledger {f.BEVERAGE}: the ledger went back from size 12 to 9" in (
        r.stderr
    )
    r = runner.invoke(cli.app, ["witness", "--server", "http://127.0.0.1:1", "--key", vkey])
    assert r.exit_code == 1
    assert "WITNESS FAILED: cannot list the server's ledgers" in r.stderr


def test_the_witness_command_audits_the_bytes_served_with_a_token(
    engine, clock, server, tmp_path: Path, monkeypatch
) -> None:
    """--audit fetches each entry's tlog-proof (private entries: with a token from the
    environment) and fails on an entry whose bytes were edited with its stored hash kept."""
    import httpx

    url, app = server
    lid = f.private_ledger(engine, clock)  # 9 private entries
    f.user(engine, clock, "auditor", "auditor pass 2026", enterprise=f.BEVERAGE)
    vkey = app.state.signer.verifier.vkey
    state = tmp_path / "witness.json"
    runner = CliRunner()

    def run(*extra: str):  # type: ignore[no-untyped-def]
        args = ["witness", "--server", url, "--key", vkey, "--state", str(state), *extra]
        return runner.invoke(cli.app, args)

    r = run("--audit", "0")  # no token: the private entries' proofs are refused
    assert r.exit_code == 1
    assert f"FAIL  {f.BEVERAGE}  entry 1: the server gave no proof (HTTP 401" in r.stdout
    assert f.BEVERAGE not in json.loads(state.read_text())["ledgers"]  # nothing kept

    token = httpx.post(
        f"{url}/api/v1/auth/token", data={"username": "auditor", "password": "auditor pass 2026"}
    ).json()["access_token"]
    monkeypatch.setenv("FOODTRACE_WITNESS_TOKEN", token)
    r = run("--audit", "0")
    assert r.exit_code == 0, r.output
    assert f"ok    {f.BEVERAGE}  first seen at size 9; 9 entries audited" in r.stdout
    assert token not in r.output

    with engine.begin() as conn:  # an amount edited behind the app, its hash left alone
        body = conn.execute(
            text("SELECT body FROM entries WHERE ledger_id = :l AND seq = 4"), {"l": lid}
        ).scalar_one()
        edited = bytes(body).replace(b"2026-", b"2025-", 1)  # a date a year earlier
        assert edited != bytes(body)
        conn.execute(
            text("UPDATE entries SET body = :b WHERE ledger_id = :l AND seq = 4"),
            {"b": edited, "l": lid},
        )
    _grow(engine, clock, lid, 1, "A")
    r = run("--audit", "0")  # only the new entry: the edit goes unseen
    assert r.exit_code == 0, r.output
    assert f"ok    {f.BEVERAGE}  size 9 -> 10, consistent; 1 entries audited" in r.stdout
    r = run("--audit", "100")  # every entry: the edited one no longer proves
    assert r.exit_code == 1
    assert f"FAIL  {f.BEVERAGE}  entry 4: the bytes served are not the leaf" in r.stdout
    assert "the entry was altered; last seen: size 10" in r.stdout
