"""The foodtrace command: verify (exit codes, naming the entry), user add, help."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import text

from factories import BEVERAGE, beverage_ledger


def test_verify_exits_0_when_every_ledger_holds(engine, clock, invoke) -> None:
    beverage_ledger(engine, clock)
    result = invoke("verify")
    assert result.exit_code == 0, result.output
    assert f"ok    {BEVERAGE}  10 entries" in result.output


@pytest.mark.parametrize(
    ("sql", "seq"),
    [
        (
            "UPDATE entries SET body = "
            "REPLACE(body, CAST('\"400\"' AS BLOB), CAST('\"401\"' AS BLOB)) WHERE seq = 6",
            6,
        ),
        ("UPDATE lots SET quantity = '401'", 6),
        ("DELETE FROM entries WHERE seq = 3", 3),
    ],
    ids=["entry byte", "derived column", "deleted entry"],
)
def test_verify_exits_1_naming_the_first_bad_entry(engine, clock, invoke, sql, seq) -> None:
    beverage_ledger(engine, clock)
    if engine.dialect.name == "postgresql":
        sql = sql.replace(
            "REPLACE(body, CAST('\"400\"' AS BLOB), CAST('\"401\"' AS BLOB))",
            "convert_to(replace(convert_from(body, 'UTF8'), '\"400\"', '\"401\"'), 'UTF8')",
        )
    with engine.begin() as conn:
        assert conn.execute(text(sql)).rowcount == 1
    result = invoke("verify", "--enterprise", BEVERAGE)
    assert result.exit_code == 1, result.output
    assert f"FAIL  {BEVERAGE}  first bad entry: seq {seq} " in result.output


def test_verify_in_parallel_says_what_one_process_says(engine, clock, invoke) -> None:
    from factories import SUGAR

    beverage_ledger(engine, clock)
    beverage_ledger(engine, clock, SUGAR)
    with engine.begin() as conn:
        conn.execute(text("UPDATE lots SET quantity = '401'"))
    one = invoke("verify", "--jobs", "1")
    assert one.exit_code == 1, one.output
    for jobs in ("2", "0"):  # 0: one per core
        many = invoke("verify", "--jobs", jobs)
        assert (many.exit_code, many.output) == (1, one.output)


def test_verify_unknown_enterprise_is_an_error(engine, invoke) -> None:
    result = invoke("verify", "--enterprise", "91370404MA3386YX15")
    assert result.exit_code == 2
    assert "no ledger" in result.output


def test_user_add(engine, clock, invoke) -> None:
    beverage_ledger(engine, clock)
    add = ("user", "add", "qa_wang", "--role", "enterprise_user", "--enterprise", BEVERAGE)
    ok = invoke(*add, "--password", "long enough 1")
    assert ok.exit_code == 0, ok.output
    assert "user qa_wang created" in ok.output
    dup = invoke(*add, "--password", "long enough 1")  # the same user again
    assert dup.exit_code == 2
    assert "already exists" in dup.output
    bad = invoke("user", "add", "x", "--role", "boss", "--password", "long enough 1")
    assert bad.exit_code == 2
    assert "not a role" in bad.output
    short = invoke("user", "add", "y", "--role", "platform_admin", "--password", "short")
    assert short.exit_code == 2
    assert "at least 8" in short.output
    prompted = invoke(
        "user", "add", "admin2", "--role", "platform_admin", input="long enough 2\nlong enough 2\n"
    )
    assert prompted.exit_code == 0, prompted.output


def test_python_m_foodtrace_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "foodtrace", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for command in ("serve", "demo", "verify", "user", "migrate"):
        assert command in result.stdout


def test_key_checkpoint_and_verify_with_signatures(
    engine, clock, invoke, monkeypatch, tmp_path
) -> None:
    key_file = tmp_path / "signing.key"
    monkeypatch.setenv("TRACE_SIGNING_KEY_FILE", str(key_file))
    beverage_ledger(engine, clock)
    vkey = invoke("key")
    assert vkey.exit_code == 0, vkey.output
    assert vkey.output.startswith("trace.example.cn+")
    signed = invoke("checkpoint")
    assert signed.exit_code == 0, signed.output
    assert f"ok    {BEVERAGE}  size 10  signed " in signed.output
    result = invoke("verify")
    assert result.exit_code == 0, result.output
    assert f"ok    {BEVERAGE}  10 entries, 1 checkpoints" in result.output
    assert "not checked" not in result.output
    # A rewritten ledger: the signer refuses, and verification fails at the checkpoint.
    with engine.begin() as conn:
        conn.execute(text("UPDATE checkpoints SET root = :r"), {"r": bytes(32)})
    result = invoke("verify")
    assert result.exit_code == 1, result.output
    assert f"FAIL  {BEVERAGE}  first bad entry: seq 10 (checkpoint)" in result.output


def test_checkpoint_refused_for_a_truncated_ledger(
    engine, clock, invoke, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("TRACE_SIGNING_KEY_FILE", str(tmp_path / "signing.key"))
    beverage_ledger(engine, clock)
    assert invoke("checkpoint", "--enterprise", BEVERAGE).exit_code == 0
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM checkpoints"))
        conn.execute(text("DELETE FROM sales"))
        conn.execute(text("DELETE FROM entries WHERE seq = 9"))
        conn.execute(
            text(
                "UPDATE ledgers SET size = 8, compact_range = :c,"
                " head_hash = (SELECT hash FROM entries WHERE seq = 8)"
            ),
            {"c": bytes(32)},  # 8 = one perfect subtree: any 32 bytes parse
        )
    result = invoke("checkpoint")
    assert result.exit_code == 1, result.output
    assert f"FAIL  {BEVERAGE}  refusing to sign" in result.output
    assert "behind the last signed size" in result.output
