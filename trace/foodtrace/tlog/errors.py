"""The one error root of the transparency log: :class:`ProofError`.

Every error a :mod:`foodtrace.tlog` module raises on purpose is a
``ProofError``, so that a caller can catch "the log did not check out" once::

    ProofError (ValueError)                   merkle: malformed proof, impossible sizes
    ├── RootMismatchError                     merkle: a well-formed proof, another root
    ├── MalformedProofError                   checkpoint: not a tlog-proof@v1 bundle
    ├── CheckpointError                       checkpoint: a malformed or unexpected checkpoint
    ├── NoteError                             note: a signed note that cannot be trusted
    │   ├── MalformedNoteError
    │   ├── UnverifiedNoteError
    │   └── InvalidSignatureError
    ├── BundleError                           bundle: a ledger bundle that does not verify
    ├── SignerError (also RuntimeError)       signer: unsafe or unreadable key or state file
    │   └── InconsistentCheckpointError       signer: refused, not consistent with the last
    └── WitnessError (also RuntimeError)      witness: cannot run at all

Each class keeps its name in the module that raises it. The signer's and the
witness's errors were RuntimeErrors and stay RuntimeErrors as well, so that code
catching them by that base goes on doing so.
"""

from __future__ import annotations

__all__ = ["ProofError"]


class ProofError(ValueError):
    """A proof that does not prove what it claims: malformed, wrong length, impossible sizes."""
