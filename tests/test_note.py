"""C2SP signed notes: the spec's example verifies, and stops verifying after any change."""

from __future__ import annotations

from pathlib import Path

import pytest

from foodtrace.tlog.note import (
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    NoteSigner,
    UnverifiedNoteError,
    Verifier,
    key_id,
    open_note,
    parse_note,
    sign_note,
)

C2SP = Path(__file__).parent / "vectors" / "c2sp"
EXAMPLE_NOTE = (C2SP / "signed-note-example.note").read_text(encoding="utf-8")
EXAMPLE_VKEY = (C2SP / "signed-note-example.vkey").read_text(encoding="utf-8").strip()


def test_the_spec_example_verifies() -> None:
    verifier = Verifier.from_vkey(EXAMPLE_VKEY)
    assert verifier.name == "example.com/foo"
    assert f"{verifier.key_id:08x}" == "530d903a"
    assert verifier.vkey == EXAMPLE_VKEY
    note = open_note(EXAMPLE_NOTE, [verifier])
    assert note.text == "This is an example message.\n"
    assert note.verified_by == (verifier,)
    assert EXAMPLE_NOTE.split("\n")[2].startswith("\u2014 example.com/foo ")


def test_the_spec_example_fails_after_any_change_to_its_text() -> None:
    verifier = Verifier.from_vkey(EXAMPLE_VKEY)
    text_end = EXAMPLE_NOTE.index("\n\n") + 1
    for i in range(text_end):
        for replacement in {"x", "T", " ", "\n"} - {EXAMPLE_NOTE[i]}:
            changed = EXAMPLE_NOTE[:i] + replacement + EXAMPLE_NOTE[i + 1 :]
            with pytest.raises(NoteError):
                open_note(changed, [verifier])
    for changed in (
        "  " + EXAMPLE_NOTE,
        EXAMPLE_NOTE.replace("message.", "message!"),
        EXAMPLE_NOTE.replace("This is", "This was"),
        EXAMPLE_NOTE.replace(".\n\n", ".\n\n\n"),
    ):
        with pytest.raises(NoteError):
            open_note(changed, [verifier])


def test_a_changed_signature_or_key_fails() -> None:
    verifier = Verifier.from_vkey(EXAMPLE_VKEY)
    sig_line = EXAMPLE_NOTE.split("\n")[2]
    data = sig_line.split(" ")[2]
    flipped = data[:20] + ("A" if data[20] != "A" else "B") + data[21:]
    with pytest.raises(InvalidSignatureError):
        open_note(EXAMPLE_NOTE.replace(data, flipped), [verifier])
    other = NoteSigner.generate("example.com/foo").verifier
    with pytest.raises(UnverifiedNoteError):  # same name, other key ID: unknown, ignored
        open_note(EXAMPLE_NOTE, [other])


def test_key_id_is_the_first_four_bytes_of_the_hash_of_name_newline_type_and_key() -> None:
    verifier = Verifier.from_vkey(EXAMPLE_VKEY)
    assert key_id(verifier.name, verifier.public_key) == 0x530D903A
    with pytest.raises(MalformedNoteError, match="does not match"):
        Verifier.from_vkey(EXAMPLE_VKEY.replace("+530d903a+", "+530d903b+"))


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "example.com/foo",
        "example.com/foo+530d903a",
        "exa mple.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # type 0x02
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
        "example.com/foo+530d903a+not base64!",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(MalformedNoteError):
        Verifier.from_vkey(vkey)


def test_sign_and_open_round_trip_with_unknown_signatures_ignored() -> None:
    ours = NoteSigner.generate("trace.example.cn")
    witness = NoteSigner.generate("witness.example")
    text = "trace.example.cn/ledger/91370404MA3F42206T\n3\nAAAA\n"
    note = sign_note(text, [witness, ours])
    assert note.startswith(text + "\n\u2014 witness.example ")
    opened = open_note(note, [ours.verifier])
    assert opened.text == text
    assert opened.verified_by == (ours.verifier,)
    assert [s.name for s in opened.signatures] == ["witness.example", "trace.example.cn"]
    assert open_note(note.encode("utf-8"), [ours.verifier, witness.verifier]).verified_by == (
        witness.verifier,
        ours.verifier,
    )
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [])


def test_signer_key_text_round_trips_and_keeps_the_seed_out_of_its_repr() -> None:
    signer = NoteSigner.generate("trace.example.cn")
    assert signer.skey.startswith(f"PRIVATE+KEY+trace.example.cn+{signer.key_id:08x}+")
    assert NoteSigner.from_skey(signer.skey) == signer
    assert signer.verifier.vkey == Verifier.from_vkey(signer.verifier.vkey).vkey
    assert signer.seed.hex() not in repr(signer)
    with pytest.raises(MalformedNoteError):
        NoteSigner.from_skey(signer.skey.replace("PRIVATE+KEY", "PUBLIC+KEY"))


def test_the_same_known_key_twice_is_malformed() -> None:
    signer = NoteSigner.generate("trace.example.cn")
    note = sign_note("hello\n", [signer, signer])
    with pytest.raises(MalformedNoteError, match="twice"):
        open_note(note, [signer.verifier])


@pytest.mark.parametrize(
    "note",
    [
        "hello\n",  # no signature block
        "hello\n\n",  # empty signature block
        "hello\n\n- trace.example.cn AAAAAAA=\n",  # hyphen, not an em dash
        "hello\n\n\u2014 trace.example.cn\n",  # no signature
        "hello\n\n\u2014 trace.example.cn AAAA\n",  # shorter than key ID + 1 byte
        "hello\n\n\u2014 trace.example.cn AAAAAAA=",  # no final newline
        "hel\rlo\n\n\u2014 trace.example.cn AAAAAAA=\n",  # control character
        "hello\n\n\u2014 trace+example AAAAAAA=\n",  # plus in key name
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(MalformedNoteError):
        parse_note(note)


def test_signing_refuses_text_without_final_newline_or_with_control_characters() -> None:
    signer = NoteSigner.generate("trace.example.cn")
    with pytest.raises(MalformedNoteError):
        sign_note("no newline", [signer])
    with pytest.raises(MalformedNoteError):
        sign_note("tab\tis a control character\n", [signer])


def test_more_than_the_maximum_signatures_is_malformed() -> None:
    line = "\u2014 w.example AAAAAAA=\n"
    parse_note("hello\n\n" + line * 100)
    with pytest.raises(MalformedNoteError, match="more than 100"):
        parse_note("hello\n\n" + line * 101)
