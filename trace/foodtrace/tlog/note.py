"""C2SP signed notes with Ed25519 (https://c2sp.org/signed-note), read like the spec.

A signed note is UTF-8 text without control characters other than newline::

    <text, one or more lines, ending in "\\n">
    "\\n"
    "— " <key name> " " base64(key ID (4 bytes, big-endian) || signature) "\\n"    (one or more)

The separator is an em dash (U+2014). The text is everything up to and
including the newline before the *last* empty line. Ed25519 signatures
(type 0x01, RFC 8032) sign the text's bytes, and::

    key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]

Keys travel as text, as in golang.org/x/mod/sumdb/note::

    verifier key  <name>+<key ID, 8 hex digits>+base64(0x01 || public key)
    signer key    PRIVATE+KEY+<name>+<key ID>+base64(0x01 || 32-byte seed)

Opening a note: signatures from unknown keys (name and ID not both matching a
known key) are ignored; a known key's signature that fails rejects the whole
note; and at least one known key must have signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from foodtrace.tlog.errors import ProofError

ALG_ED25519 = 0x01
"""Signature type identifier byte of Ed25519 note signatures."""
SIG_PREFIX = "\u2014 "
"""Em dash and space: the start of every signature line."""
MAX_SIGNATURES = 100
"""The spec asks to accept at least 16; a note with more is refused as malformed."""

_KEY_ID = re.compile(r"[0-9a-f]{8}")


class NoteError(ProofError):
    """A note that cannot be trusted."""


class MalformedNoteError(NoteError):
    """Not a signed note: bad characters, no signature block, a bad signature line or key."""


class UnverifiedNoteError(NoteError):
    """No known key signed the note."""


class InvalidSignatureError(NoteError):
    """A known key's signature does not verify: the text was changed or the signature forged."""


def check_key_name(name: str) -> str:
    """Key names are non-empty, without Unicode spaces or ``+``."""
    if not name or "+" in name or any(c.isspace() for c in name):
        raise MalformedNoteError(f"invalid key name {name!r}")
    return name


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """SHA-256(key name || 0x0A || signature type || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedNoteError(f"{what} is not base64") from None


def _split_key(text: str, parts: int) -> list[str]:
    fields = text.strip().split("+", parts - 1)
    if len(fields) != parts:
        raise MalformedNoteError("malformed key")
    return fields


def _key_data(name: str, key_hex: str, data_b64: str) -> tuple[int, bytes]:
    check_key_name(name)
    if not _KEY_ID.fullmatch(key_hex):
        raise MalformedNoteError(f"key ID {key_hex!r} is not 8 lowercase hex digits")
    data = _b64decode(data_b64, "key data")
    if len(data) != 33 or data[0] != ALG_ED25519:
        raise MalformedNoteError("key data is not an Ed25519 key (0x01 || 32 bytes)")
    return int(key_hex, 16), data[1:]


@dataclass(frozen=True)
class Verifier:
    """A known public key: name, key ID and 32-byte Ed25519 public key."""

    name: str
    key_id: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``name+keyid+base64(0x01 || key)``; the key ID must be the key's own."""
        name, key_hex, data = _split_key(vkey, 3)
        kid, public = _key_data(name, key_hex, data)
        if kid != key_id(name, public):
            raise MalformedNoteError(f"key ID {key_hex} does not match the key named {name}")
        return cls(name, kid, public)

    @property
    def vkey(self) -> str:
        """The verifier key text to publish."""
        data = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{data}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """A private key that signs notes under ``name``. The seed never appears in a repr."""

    name: str
    key_id: int
    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A fresh Ed25519 key named ``name``."""
        check_key_name(name)
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls.from_seed(name, seed)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> NoteSigner:
        check_key_name(name)
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed has 32 bytes")
        public = _public_key(seed)
        return cls(name, key_id(name, public), seed)

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+name+keyid+base64(0x01 || seed)``."""
        private, key, name, key_hex, data = _split_key(skey, 5)
        if (private, key) != ("PRIVATE", "KEY"):
            raise MalformedNoteError("a signer key starts with PRIVATE+KEY+")
        kid, seed = _key_data(name, key_hex, data)
        signer = cls.from_seed(name, seed)
        if signer.key_id != kid:
            raise MalformedNoteError(f"key ID {key_hex} does not match the key named {name}")
        return signer

    @property
    def skey(self) -> str:
        """The signer key text (secret: keep it in an owner-only file)."""
        data = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{data}"

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, _public_key(self.seed))

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


def _public_key(seed: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        data = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode("ascii")
        return f"{SIG_PREFIX}{self.name} {data}\n"


@dataclass(frozen=True)
class Note:
    """A note's text, all its signature lines, and the known keys whose signatures verified."""

    text: str
    signatures: tuple[Signature, ...]
    verified_by: tuple[Verifier, ...] = ()


def _check_text(text: str, what: str) -> None:
    bad = next((c for c in text if c < " " and c != "\n"), None)
    if bad is not None:
        raise MalformedNoteError(f"{what} holds the control character U+{ord(bad):04X}")


def sign_note(text: str, signers: Iterable[NoteSigner]) -> str:
    """The signed note: ``text`` (ending in a newline), an empty line, one line per signer."""
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end in a newline")
    _check_text(text, "note text")
    message = text.encode("utf-8")
    lines = [Signature(s.name, s.key_id, s.sign(message)).line() for s in signers]
    if not lines:
        raise ValueError("a signed note needs at least one signer")
    return text + "\n" + "".join(lines)


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into its text and signature lines, verifying nothing."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNoteError("note is not valid UTF-8") from None
    _check_text(note, "note")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise MalformedNoteError("no signature block (an empty line, then signature lines)")
    text, block = note[: split + 1], note[split + 2 :]
    signatures: list[Signature] = []
    for line in block[:-1].split("\n"):
        if len(signatures) == MAX_SIGNATURES:
            raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
        if not line.startswith(SIG_PREFIX):
            raise MalformedNoteError(f"not a signature line: {line[:40]!r}")
        name, sep, data = line[len(SIG_PREFIX) :].partition(" ")
        if not sep:
            raise MalformedNoteError(f"signature line without a signature: {line[:40]!r}")
        check_key_name(name)
        raw = _b64decode(data, "signature")
        if len(raw) < 5:
            raise MalformedNoteError("signature too short")
        signatures.append(Signature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return Note(text, tuple(signatures))


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> Note:
    """Verify a signed note against the known keys and return it (see the module docstring)."""
    parsed = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    message = parsed.text.encode("utf-8")
    verified: list[Verifier] = []
    for sig in parsed.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue  # an unknown key (a witness, a rotated key): ignored
        if verifier in verified:
            raise MalformedNoteError(f"key {sig.name}+{sig.key_id:08x} signed twice")
        if not verifier.verify(message, sig.signature):
            raise InvalidSignatureError(
                f"the signature of {sig.name}+{sig.key_id:08x} does not verify"
            )
        verified.append(verifier)
    if not verified:
        raise UnverifiedNoteError(
            "no known key signed the note (signed by: "
            + ", ".join(f"{s.name}+{s.key_id:08x}" for s in parsed.signatures)
            + ")"
        )
    return Note(parsed.text, parsed.signatures, tuple(verified))
