"""foodtrace init, and rotating the checkpoint key: old checkpoints stay verifiable."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from foodtrace.config import Settings
from foodtrace.tlog import merkle
from foodtrace.tlog.bundle import BundleError, verify_bundle
from foodtrace.tlog.checkpoint import Checkpoint, open_checkpoint
from foodtrace.tlog.note import Verifier
from foodtrace.tlog.signer import (
    CheckpointSigner,
    InconsistentCheckpointError,
    SignerError,
    load_verifiers,
    rotate_key,
)
from foodtrace.tlog.witness import witness
from webapp.main import create_app

import factories as f

PLATFORM = "trace.example.cn"
ORIGIN = f"{PLATFORM}/ledger/{f.BEVERAGE}"


def test_init_makes_the_key_once_and_prints_the_verifier_key(invoke) -> None:
    key_file = Path(os.environ["TRACE_SIGNING_KEY_FILE"])
    r = invoke("init")
    assert r.exit_code == 0, r.output
    vkey = r.stdout.strip()
    assert Verifier.from_vkey(vkey).name == PLATFORM
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert f"signing key: {key_file}" in r.stderr
    again = invoke("init")
    assert again.exit_code == 0
    assert again.stdout.strip() == vkey


def _leaves(n: int) -> list[bytes]:
    return [bytes([i]) * 32 for i in range(n)]


def test_rotation_keeps_the_old_verifier_key_and_the_signed_history(tmp_path) -> None:
    key_file = tmp_path / "k" / "signing.key"
    key_file.parent.mkdir()
    old = CheckpointSigner.open(key_file, name=PLATFORM)
    leaves = _leaves(6)

    def prove(a: int, b: int) -> list[bytes]:
        return merkle.consistency_proof(a, leaves[:b])

    old.sign(Checkpoint(ORIGIN, 5, merkle.root(leaves[:5])), prove=prove)
    for bad, match in (
        ("other.example.cn/2027", "is named"),
        (PLATFORM, "used before"),
        (f"{PLATFORM}/", "is named"),
        ("trace example", "invalid key name"),
    ):
        with pytest.raises((SignerError, ValueError), match=match):
            rotate_key(key_file, new_name=bad, platform=PLATFORM)
    retired, current = rotate_key(key_file, new_name=f"{PLATFORM}/2027", platform=PLATFORM)
    assert retired == old.verifier
    assert current.name == f"{PLATFORM}/2027"
    assert key_file.stat().st_mode & 0o777 == 0o600
    archive = key_file.with_name(f"signing.key.{old.verifier.key_id:08x}.old")
    assert archive.stat().st_mode & 0o777 == 0o600
    assert load_verifiers(key_file) == [current, retired]
    new = CheckpointSigner.open(key_file, name=PLATFORM)
    assert new.verifiers == [current, retired]
    # The new key continues the same history: what the old one would refuse, it refuses.
    with pytest.raises(InconsistentCheckpointError, match="behind"):
        new.sign(Checkpoint(ORIGIN, 4, merkle.root(leaves[:4])), prove=prove)
    note = new.sign(Checkpoint(ORIGIN, 6, merkle.root(leaves)), prove=prove)
    assert open_checkpoint(note, [current])[0].size == 6
    with pytest.raises(SignerError, match="used before"):
        rotate_key(key_file, new_name=f"{PLATFORM}/2027", platform=PLATFORM)


def test_after_a_rotation_old_and_new_checkpoints_verify_with_both_keys(
    db_url, engine, clock, invoke, tmp_path
) -> None:
    lid = f.private_ledger(engine, clock)
    assert invoke("checkpoint").exit_code == 0  # signed at 9 by the first key
    first = invoke("key").stdout.strip()
    r = invoke("rotate-key", "--name", f"{PLATFORM}/2027")
    assert r.exit_code == 0, r.output
    second = r.stdout.strip()
    assert f"retired: {first}" in r.stderr
    assert invoke("key", "--all").stdout.split() == [second, first]
    f.add(engine, clock, lid, "customer", f.customer(code="C2", name="第二客户"))
    clock.advance(timedelta(seconds=2))
    bundle = tmp_path / "ledger.jsonl"
    assert invoke("export-ledger", "--enterprise", f.BEVERAGE, "-o", str(bundle)).exit_code == 0
    r = invoke("verify-bundle", str(bundle), "--key", first, "--key", second)
    assert r.exit_code == 0, r.output
    names = ["+".join(k.split("+", 2)[:2]) for k in (first, second)]
    assert f"signed by {names[0]}, {names[1]}" in r.stdout
    with pytest.raises(BundleError, match="no known key signed"):
        verify_bundle(bundle.read_bytes(), verifiers=[Verifier.from_vkey(second)])
    r = invoke("verify", "--enterprise", f.BEVERAGE)  # the stored checkpoints, both keys
    assert r.exit_code == 0, r.output
    assert "2 checkpoints" in r.stdout
    # The app publishes both, the signing one first; a witness holding both keys carries on.
    app = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
    with TestClient(app) as client:
        assert client.get("/.well-known/foodtrace/checkpoint-key").text.split() == [second, first]
        keys = [Verifier.from_vkey(first), Verifier.from_vkey(second)]
        state: dict[str, str] = {}
        (out,) = witness(client=client, verifiers=keys, state=state, platform=PLATFORM)
        assert out.message == "first seen at size 10"
        cp, note = open_checkpoint(state[f.BEVERAGE], keys)
        assert note.verified_by == (Verifier.from_vkey(second),)
