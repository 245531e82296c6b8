"""export-ledger and verify-bundle: a ledger checked with nothing but the verifier key."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest

from foodtrace.canonical import canonical_bytes
from foodtrace.tlog.bundle import BUNDLE_FORMAT, BundleError, verify_bundle
from foodtrace.tlog.note import NoteSigner, Verifier

import factories as f

PLATFORM = "trace.example.cn"
ORIGIN = f"{PLATFORM}/ledger/{f.BEVERAGE}"


def _vkey(invoke) -> str:  # type: ignore[no-untyped-def]
    r = invoke("key")
    assert r.exit_code == 0, r.output
    return r.stdout.strip()


def _export(invoke, code: str, path: Path) -> bytes:  # type: ignore[no-untyped-def]
    r = invoke("export-ledger", "--enterprise", code, "-o", str(path))
    assert r.exit_code == 0, r.output
    return path.read_bytes()


def _lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


def _grown_ledger(engine, clock, invoke, tmp_path) -> bytes:  # type: ignore[no-untyped-def]
    """The beverage maker's 9 entries signed at 9, then 3 more signed at 12."""
    lid = f.private_ledger(engine, clock)
    _export(invoke, f.BEVERAGE, tmp_path / "first.jsonl")
    for i in range(3):
        f.add(engine, clock, lid, "customer", f.customer(code=f"C{i}", name=f"客户 {i}"))
    clock.advance(timedelta(seconds=2))
    return _export(invoke, f.BEVERAGE, tmp_path / "ledger.jsonl")


def test_an_exported_ledger_verifies_with_the_key_alone(engine, clock, invoke, tmp_path) -> None:
    data = _grown_ledger(engine, clock, invoke, tmp_path)
    lines = _lines(data)
    assert lines[0] == {
        "format": BUNDLE_FORMAT,
        "origin": ORIGIN,
        "entries": 12,
        "checkpoints": 2,
    }
    assert [x["seq"] for x in lines[1:13]] == list(range(1, 13))
    assert all(set(x) == {"checkpoint"} for x in lines[13:])
    vkey = _vkey(invoke)
    r = invoke("verify-bundle", str(tmp_path / "ledger.jsonl"), "--key", vkey)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"ok  {ORIGIN}: 12 entries, 2 signed checkpoints (sizes 9, 12)")
    # The first export, at 9, still verifies: what was signed never changes.
    r = invoke("verify-bundle", str(tmp_path / "first.jsonl"), "--key", vkey)
    assert r.exit_code == 0, r.output
    assert ": 9 entries, 1 signed checkpoints (sizes 9)" in r.stdout


def test_verify_bundle_needs_no_database(engine, clock, invoke, tmp_path, monkeypatch) -> None:
    data = _grown_ledger(engine, clock, invoke, tmp_path)
    keyfile = tmp_path / "platform.vkey"
    keyfile.write_text(f"# the platform's key\n{_vkey(invoke)}\n")
    monkeypatch.setenv("TRACE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    (tmp_path / "copy.jsonl").write_bytes(data)
    r = invoke("verify-bundle", str(tmp_path / "copy.jsonl"), "--key", str(keyfile))
    assert r.exit_code == 0, r.output


def test_several_keys_may_be_given_and_a_stranger_alone_fails(
    engine, clock, invoke, tmp_path
) -> None:
    data = _grown_ledger(engine, clock, invoke, tmp_path)
    stranger = NoteSigner.generate(PLATFORM).verifier.vkey
    path = str(tmp_path / "ledger.jsonl")
    r = invoke("verify-bundle", path, "--key", stranger, "--key", _vkey(invoke))
    assert r.exit_code == 0, r.output
    r = invoke("verify-bundle", path, "--key", stranger)
    assert r.exit_code == 1
    assert "FAIL" in r.stdout
    assert "no known key signed the note" in r.stdout
    assert verify_bundle(data, verifiers=[Verifier.from_vkey(_vkey(invoke))]).size == 12
    r = invoke("verify-bundle", path, "--key", "not-a-key+1234")
    assert r.exit_code == 2


def _replace_line(data: bytes, index: int, obj: dict) -> bytes:
    lines = data.split(b"\n")
    lines[index] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return b"\n".join(lines)


def _fails(data: bytes, key: Verifier, match: str) -> BundleError:
    with pytest.raises(BundleError, match=match) as exc:
        verify_bundle(data, verifiers=[key])
    return exc.value


def test_one_changed_byte_at_any_of_these_places_fails(engine, clock, invoke, tmp_path) -> None:
    data = _grown_ledger(engine, clock, invoke, tmp_path)
    key = Verifier.from_vkey(_vkey(invoke))
    lines = data.split(b"\n")
    cp_line = 13  # the checkpoint at 9 (0-based line index: header, 12 entries)

    def at(line: int, offset: int) -> int:
        return sum(len(x) + 1 for x in lines[:line]) + offset

    def flip(pos: int, to: bytes) -> bytes:
        assert data[pos : pos + 1] != to
        return data[:pos] + to + data[pos + 1 :]

    # an entry byte (inside the base64 of entry 5's bytes)
    pos = at(5, lines[5].index(b'"bytes":"') + 40)
    changed = flip(pos, b"A" if data[pos : pos + 1] != b"A" else b"B")
    err = _fails(changed, key, "entry 5")
    # the bytes may still be an entry (a letter of a name changed): then the next link breaks
    assert err.where.startswith(("entry 5 ", "entry 6 ")), err
    # a byte of a checkpoint's signature
    note = json.loads(lines[cp_line])["checkpoint"]
    sig = note.rsplit(" ", 1)[1].rstrip("\n")
    pos = at(cp_line, lines[cp_line].index(sig.encode()) + 30)
    changed = flip(pos, b"A" if data[pos : pos + 1] != b"A" else b"B")
    _fails(changed, key, "checkpoint on line 14: the signature of trace.example.cn")
    # a byte of the signed root
    root = note.split("\\n" if "\\n" in note else "\n")[2]
    pos = at(cp_line, lines[cp_line].index(root.encode()) + 5)
    changed = flip(pos, b"A" if data[pos : pos + 1] != b"A" else b"B")
    _fails(changed, key, "checkpoint on line 14")
    # the header's count, the seq of an entry line, the final newline
    _fails(flip(at(0, lines[0].index(b'"entries":1') + 11), b"3"), key, "bundle|header")
    _fails(flip(at(3, lines[3].index(b'"seq":3') + 6), b"4"), key, "entry 3")
    _fails(data[:-1] + b" ", key, "newline")
    # a re-spaced line (same JSON value) is refused too
    _fails(data.replace(b'{"bytes":', b'{ "bytes":', 1), key, "line 2: not in the bundle's")


def test_every_single_byte_change_of_a_small_bundle_fails(engine, clock, invoke, tmp_path) -> None:
    lid = f.register(engine, clock)
    _export(invoke, f.BEVERAGE, tmp_path / "a.jsonl")
    f.add(engine, clock, lid, "customer", f.customer())
    clock.advance(timedelta(seconds=2))
    data = _export(invoke, f.BEVERAGE, tmp_path / "b.jsonl")
    key = Verifier.from_vkey(_vkey(invoke))
    assert verify_bundle(data, verifiers=[key]).checkpoint_sizes == (1, 2)
    passed = []
    for pos in range(len(data)):
        for to in {data[pos] ^ 0x01, data[pos] ^ 0x20, ord("A")} - {data[pos]}:
            changed = data[:pos] + bytes([to]) + data[pos + 1 :]
            try:
                verify_bundle(changed, verifiers=[key])
            except BundleError:
                continue
            passed.append((pos, chr(data[pos]), chr(to)))
    assert passed == [], f"{len(passed)} one-byte changes passed verification: {passed[:10]}"


def test_a_consistently_rewritten_entry_fails_at_its_checkpoint(
    engine, clock, invoke, tmp_path
) -> None:
    """Rewrite entry 12 (a new salt, a valid canonical entry): only the signed root knows."""
    data = _grown_ledger(engine, clock, invoke, tmp_path)
    key = Verifier.from_vkey(_vkey(invoke))
    lines = _lines(data)
    entry = json.loads(base64.b64decode(lines[12]["bytes"]))
    entry["salt"] = "AAAAAAAAAAAAAAAAAAAAAA=="
    forged = _replace_line(
        data, 12, {"seq": 12, "bytes": base64.b64encode(canonical_bytes(entry)).decode()}
    )
    err = _fails(forged, key, "an entry among 10..12 was changed")
    assert err.where == "checkpoint at size 12"
    # Entries beyond the last checkpoint prove nothing: refused.
    cut = b"\n".join(data.split(b"\n")[:-2]) + b"\n"  # drop the checkpoint at 12
    cut = cut.replace(b'"checkpoints":2', b'"checkpoints":1', 1)
    _fails(cut, key, "entries 10..12 are covered by no signed checkpoint")
    # An entry of another ledger's log.
    other = dict(entry, log=f"{PLATFORM}/ledger/{f.SUGAR}")
    forged = _replace_line(
        data, 12, {"seq": 12, "bytes": base64.b64encode(canonical_bytes(other)).decode()}
    )
    _fails(forged, key, "entry 12 .*not of")


@pytest.mark.demo
def test_an_exported_demo_ledger_verifies(engine, invoke, tmp_path) -> None:
    vkey = _vkey(invoke)
    for code in ("91370404MA3F42206T", "91370404MA3793PC3E"):  # the juice and sugar makers
        path = tmp_path / f"{code}.jsonl"
        r = invoke("export-ledger", "--enterprise", code, "-o", str(path))
        assert r.exit_code == 0, r.output
        r = invoke("verify-bundle", str(path), "--key", vkey)
        assert r.exit_code == 0, r.output
        assert r.stdout.startswith(f"ok  {PLATFORM}/ledger/{code}: ")
    data = (tmp_path / "91370404MA3F42206T.jsonl").read_bytes()
    assert _lines(data)[0]["entries"] > 300
    mid = len(data) // 2
    mid = data.index(b'"bytes":"', mid) + 20
    changed = data[:mid] + (b"B" if data[mid : mid + 1] != b"B" else b"C") + data[mid + 1 :]
    path = tmp_path / "changed.jsonl"
    path.write_bytes(changed)
    r = invoke("verify-bundle", str(path), "--key", vkey)
    assert r.exit_code == 1
    assert r.stdout.startswith(f"FAIL  {path}  entry ")


def test_export_of_an_unknown_ledger_is_an_error(engine, invoke, tmp_path) -> None:
    r = invoke("export-ledger", "--enterprise", f.SUGAR, "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 2
    assert "no ledger" in r.output


def test_an_authoritys_ledger_exports_and_verifies(engine, clock, invoke, tmp_path) -> None:
    from foodtrace.accounts.models import Authority
    from foodtrace.accounts.service import create_authority
    from foodtrace.cases.service import authority_ledger
    from foodtrace.db import write_session

    code = "11370404004321071W"
    with write_session(engine) as s:
        auth: Authority = create_authority(
            session=s, credit_code=code, name="峄城区市场监督管理局", region_codes=["370404"],
            now=clock.now(),
        )  # fmt: skip
        lid = authority_ledger(s, auth, clock).id
    assert lid is not None
    f.raw_append(engine, clock, lid, "failed_sample", {"lot_code": "PJ-D05"})
    f.raw_append(engine, clock, lid, "public_recall", {"case_seq": 1, "lots": []})
    path = tmp_path / "authority.jsonl"
    _export(invoke, code, path)
    r = invoke("verify-bundle", str(path), "--key", _vkey(invoke))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"ok  {PLATFORM}/ledger/{code}: 2 entries")


def test_a_bundle_of_an_empty_ledger_holds_the_empty_trees_checkpoint() -> None:
    import io

    from foodtrace.tlog.bundle import write_bundle
    from foodtrace.tlog.checkpoint import Checkpoint
    from foodtrace.tlog.merkle import EMPTY_ROOT
    from foodtrace.tlog.note import sign_note

    key = NoteSigner.generate(PLATFORM)
    out = io.BytesIO()
    note = sign_note(Checkpoint(ORIGIN, 0, EMPTY_ROOT).text(), [key])
    write_bundle(out, origin=ORIGIN, entries=[], size=0, checkpoints=[note])
    verified = verify_bundle(out.getvalue(), verifiers=[key.verifier])
    assert (verified.size, verified.checkpoint_sizes, verified.root) == (0, (0,), EMPTY_ROOT)
    wrong = sign_note(Checkpoint(ORIGIN, 0, bytes(32)).text(), [key])
    out = io.BytesIO()
    write_bundle(out, origin=ORIGIN, entries=[], size=0, checkpoints=[wrong])
    with pytest.raises(BundleError, match="checkpoint at size 0"):
        verify_bundle(out.getvalue(), verifiers=[key.verifier])
