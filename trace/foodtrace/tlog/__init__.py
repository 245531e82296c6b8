"""The transparency log over each ledger (DESIGN.md, "Merkle log and checkpoints", "Proofs").

- :mod:`~foodtrace.tlog.merkle`: RFC 9162 Merkle tree hashes, inclusion and
  consistency proofs, and the compact range kept in each ledger's head row;
- :mod:`~foodtrace.tlog.note`: C2SP signed notes (Ed25519);
- :mod:`~foodtrace.tlog.checkpoint`: C2SP tlog-checkpoint and tlog-proof@v1;
- :mod:`~foodtrace.tlog.signer`: the platform's checkpoint signer, whose key and
  last-signed state live outside the database;
- :mod:`~foodtrace.tlog.service`: checkpoints and proofs of stored ledgers.
"""
