"""The platform's checkpoint signer: an Ed25519 key and a last-signed state, both outside the DB.

DESIGN.md: a log never signs two checkpoints that are inconsistent with each
other. The database cannot be trusted to remember what was signed (a restored
backup or a truncated table forgets it), so the signer keeps, beside its key
file, the last (size, root) it signed for every origin, and refuses to sign a
checkpoint that is not consistent with it:

- a smaller size than the last signed one (the ledger went back: a restored
  backup, or a truncation);
- the same size with another root (a rewritten ledger);
- a larger size whose consistency proof from the last signed (size, root) does
  not verify (a rewritten prefix, or a backup that has grown again since).

Files (``key_file`` is e.g. ``foodtrace-signing.key``)::

    <key_file>             PRIVATE+KEY+<name>+<key ID>+base64(0x01 || seed), mode 0600
    <key_file>.state.json  {"version": 1, "origins": {<origin>: {"size": n, "root": base64}}}
    <key_file>.lock        held (flock) while one signature is checked, made and recorded
    <key_file>.retired     the verifier keys of earlier keys, one a line (after a rotation)

Rotation (:func:`rotate_key`): a new key under a new name (the platform's name,
or ``<platform>/<suffix>`` such as ``trace.example.cn/2027``) replaces the old
one; the old verifier key is kept in ``.retired`` so that checkpoints it signed
still verify, and the old secret is set aside as ``<key_file>.<key ID>.old``
for the operator to archive offline or destroy. The state file is the same:
the new key continues the same histories and refuses what the old one would.

The state is written atomically (temporary file, fsync, rename, fsync of the
directory) *before* the signature is handed out, so a crash can lose a
signature but never the record of one.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from foodtrace.tlog.checkpoint import Checkpoint
from foodtrace.tlog.merkle import EMPTY_ROOT, ProofError, verify_consistency
from foodtrace.tlog.note import NoteSigner, Verifier, check_key_name, sign_note

ConsistencyProver = Callable[[int, int], Sequence[bytes]]
"""``prove(old_size, new_size)``: the RFC 9162 consistency proof between two sizes of the log."""

STATE_VERSION = 1
T = TypeVar("T")


class SignerError(ProofError, RuntimeError):
    """The signer cannot work: an unsafe or unreadable key or state file."""


class InconsistentCheckpointError(SignerError):
    """Refused: the checkpoint is not consistent with the last one signed for its origin."""

    def __init__(self, message: str, *, origin: str, last: tuple[int, bytes]) -> None:
        self.origin = origin
        self.last_size, self.last_root = last
        super().__init__(
            f"refusing to sign {origin}: {message} "
            f"(last signed: size {self.last_size}, root {self.last_root.hex()[:16]}…)"
        )


def _create_private(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``, mode 0600; never overwrites (FileExistsError).

    Written to a temporary file first and linked into place, so that another
    process never reads a half-written key.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: write a temporary file, fsync, rename, fsync the dir."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def read_state(
    path: Path, version: int, parse: Callable[[Any], T], fail: Callable[[str], Exception]
) -> T | None:
    """A JSON state file of this ``version``, parsed; None when there is none yet.

    An unreadable state stops its user (``fail``), never resets it: an empty state would
    sign a restored backup, or accept any ledger, as if nothing had been before."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        doc: Any = json.loads(raw)
        if doc.get("version") != version:
            raise ValueError(f"unknown version {doc.get('version')!r}")
        return parse(doc)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise fail(f"{path} is unreadable: {exc}") from None


class CheckpointSigner:
    """Signs checkpoints with the platform key; never two inconsistent ones for an origin."""

    def __init__(self, key: NoteSigner, key_file: Path) -> None:
        self._key = key
        self.key_file = key_file
        self.state_file = key_file.with_name(key_file.name + ".state.json")
        self._lock_file = key_file.with_name(key_file.name + ".lock")

    @classmethod
    def open(cls, key_file: str | Path, *, name: str) -> CheckpointSigner:
        """Load the key named ``name`` from ``key_file``, generating it (mode 0600) the first time.

        A key file that group or others may read is refused, as is a key of
        another name: the name is the platform's, fixed when it was initialised.
        """
        path = Path(key_file)
        if not path.exists():
            try:
                _create_private(path, NoteSigner.generate(name).skey + "\n")
            except FileExistsError:
                pass  # another process generated it first: use theirs
        key = load_key(path)
        if not key_belongs_to(key.name, name):
            raise SignerError(f"{path} holds the key of {key.name!r}, not of {name!r}")
        return cls(key, path)

    @property
    def name(self) -> str:
        return self._key.name

    @property
    def verifier(self) -> Verifier:
        """The public key to publish (C2SP verifier key: ``verifier.vkey``)."""
        return self._key.verifier

    @property
    def verifiers(self) -> list[Verifier]:
        """The current verifier key, then those of earlier (rotated) keys."""
        return _unique([self.verifier, *load_retired(self.key_file)])

    def last_signed(self, origin: str) -> tuple[int, bytes] | None:
        """The (size, root) last signed for ``origin``, if any."""
        return self._read_state().get(origin)

    def sign(self, checkpoint: Checkpoint, *, prove: ConsistencyProver) -> str:
        """The signed checkpoint note, after checking it against the last one signed.

        ``prove(old_size, new_size)`` is asked for a consistency proof when the
        tree grew; the proof comes from the caller's copy of the log, and the
        signer checks it against the (size, root) it recorded itself.
        """
        (note,) = self.sign_many([(checkpoint, prove)])
        if isinstance(note, InconsistentCheckpointError):
            raise note
        return note

    def sign_many(
        self, requests: Sequence[tuple[Checkpoint, ConsistencyProver]]
    ) -> list[str | InconsistentCheckpointError]:
        """Each checkpoint's signed note, or why it was refused, as :meth:`sign` decides.

        One lock, one read of the state and one (fsynced) write of it for all of
        them, before any note is returned: the background signer's round over
        the ledgers that grew costs one state write, not one per ledger. A
        refusal refuses that checkpoint only; an origin asked twice is checked
        against what this call signed first.
        """
        notes: list[str | InconsistentCheckpointError] = []
        with self._locked():
            state = self._read_state()
            grown = False
            for checkpoint, prove in requests:
                last = state.get(checkpoint.origin)
                if last is not None:
                    try:
                        self._check_consistent(checkpoint, last, prove)
                    except InconsistentCheckpointError as exc:
                        notes.append(exc)
                        continue
                notes.append(sign_note(checkpoint.text(), [self._key]))
                if last is None or checkpoint.size > last[0]:
                    state[checkpoint.origin] = (checkpoint.size, checkpoint.root)
                    grown = True
            if grown:
                self._write_state(state)
        return notes

    def _check_consistent(
        self, checkpoint: Checkpoint, last: tuple[int, bytes], prove: ConsistencyProver
    ) -> None:
        origin, size, root = checkpoint.origin, checkpoint.size, checkpoint.root
        old_size, old_root = last
        if size < old_size:
            raise InconsistentCheckpointError(
                f"size {size} is behind the last signed size (restored backup or truncation?)",
                origin=origin,
                last=last,
            )
        if size == old_size:
            if root != old_root:
                raise InconsistentCheckpointError(
                    f"same size {size}, another root {root.hex()[:16]}… (rewritten ledger?)",
                    origin=origin,
                    last=last,
                )
            return
        if old_size == 0:
            if old_root != EMPTY_ROOT:
                raise SignerError(f"state file records a non-empty root at size 0 for {origin}")
            return  # every tree extends the empty tree
        try:
            verify_consistency(
                size1=old_size, size2=size, proof=prove(old_size, size), root1=old_root, root2=root
            )
        except ProofError as exc:
            raise InconsistentCheckpointError(
                f"size {size} root {root.hex()[:16]}… does not extend it ({exc})",
                origin=origin,
                last=last,
            ) from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock conflicts between open file descriptions, so this serialises
        # both threads and processes that share the key file.
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read_state(self) -> dict[str, tuple[int, bytes]]:
        return _read_state_file(self.state_file)

    def _write_state(self, state: dict[str, tuple[int, bytes]]) -> None:
        doc = {
            "version": STATE_VERSION,
            "origins": {
                origin: {"size": size, "root": base64.b64encode(root).decode("ascii")}
                for origin, (size, root) in sorted(state.items())
            },
        }
        atomic_write(self.state_file, json.dumps(doc, indent=1).encode("utf-8") + b"\n")


def load_key(key_file: str | Path) -> NoteSigner:
    """Read a signer key file, refusing one that group or others can read."""
    path = Path(key_file)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SignerError(
            f"{path} is accessible to group or others (mode {stat.S_IMODE(mode):04o}); chmod 600 it"
        )
    return NoteSigner.from_skey(path.read_text(encoding="utf-8"))


def key_belongs_to(key_name: str, platform: str) -> bool:
    """Whether a key may sign the platform's checkpoints: named after it, or ``<platform>/…``."""
    return key_name == platform or (
        key_name.startswith(platform + "/") and len(key_name) > len(platform) + 1
    )


def retired_file(key_file: str | Path) -> Path:
    path = Path(key_file)
    return path.with_name(path.name + ".retired")


def load_retired(key_file: str | Path) -> list[Verifier]:
    """The verifier keys of the keys that signed before a rotation (none without a rotation)."""
    try:
        text = retired_file(key_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [Verifier.from_vkey(line) for line in text.splitlines() if line.strip()]


def _unique(keys: list[Verifier]) -> list[Verifier]:
    return list(dict.fromkeys(keys))


def load_verifiers(key_file: str | Path) -> list[Verifier]:
    """The current and retired verifier keys beside ``key_file``; empty without a key file."""
    current = load_verifier(key_file)
    return [] if current is None else _unique([current, *load_retired(key_file)])


def rotate_key(key_file: str | Path, *, new_name: str, platform: str) -> tuple[Verifier, Verifier]:
    """Replace the signing key with a new one named ``new_name``; (old, new) verifier keys.

    The old verifier key is added to ``<key_file>.retired`` first (so a crash
    half-way never loses it), the old secret is set aside as
    ``<key_file>.<key ID>.old`` (mode 0600), and the new key replaces the key
    file atomically, all under the signer's lock. The state file is kept: the
    new key extends the same histories. A running server keeps signing with the
    key it loaded until it is restarted.
    """
    path = Path(key_file)
    old = load_key(path)
    check_key_name(new_name)
    if not key_belongs_to(new_name, platform):
        raise SignerError(f"a key of {platform!r} is named {platform!r} or {platform!r}/…")
    used = {old.name} | {v.name for v in load_retired(path)}
    if new_name in used:
        raise SignerError(f"the key name {new_name!r} was used before: choose a new one")
    new = NoteSigner.generate(new_name)
    with CheckpointSigner(old, path)._locked():
        retired = _unique([*load_retired(path), old.verifier])
        atomic_write(retired_file(path), "".join(v.vkey + "\n" for v in retired).encode("ascii"))
        archive = path.with_name(f"{path.name}.{old.key_id:08x}.old")
        try:
            _create_private(archive, old.skey + "\n")
        except FileExistsError:
            pass  # set aside by an earlier, interrupted rotation
        atomic_write(path, (new.skey + "\n").encode("ascii"))
    return old.verifier, new.verifier


def load_verifier(key_file: str | Path) -> Verifier | None:
    """The verifier of the key in ``key_file``, or None when there is no key file yet."""
    path = Path(key_file)
    if not path.exists():
        return None
    return load_key(path).verifier


def _read_state_file(state_file: Path) -> dict[str, tuple[int, bytes]]:
    def parse(doc: Any) -> dict[str, tuple[int, bytes]]:
        return {
            origin: (int(v["size"]), base64.b64decode(v["root"], validate=True))
            for origin, v in doc["origins"].items()
        }

    found = read_state(state_file, STATE_VERSION, parse, lambda m: SignerError(f"signer state {m}"))
    return found or {}


def load_signed_state(key_file: str | Path) -> dict[str, tuple[int, bytes]]:
    """The (size, root) last signed for every origin, from the state kept beside ``key_file``.

    Read-only and without the private key: verification compares each ledger
    with it, so that a database restored from an older backup (which remembers
    fewer signed checkpoints than were issued) is caught. Empty when nothing
    was signed yet or there is no state file here.
    """
    path = Path(key_file)
    return _read_state_file(path.with_name(path.name + ".state.json"))
