"""The transparency log over each ledger (DESIGN.md, "Merkle log and checkpoints", "Proofs").

Pure crypto and formats: nothing here reads a database (the stored side is
:mod:`foodtrace.ledger.checkpoints`), and every error raised on purpose is a
:class:`~foodtrace.tlog.errors.ProofError`.

- :mod:`~foodtrace.tlog.merkle`: RFC 9162 Merkle tree hashes, inclusion and
  consistency proofs, and the compact range kept in each ledger's head row;
- :mod:`~foodtrace.tlog.note`: C2SP signed notes (Ed25519);
- :mod:`~foodtrace.tlog.checkpoint`: C2SP tlog-checkpoint and tlog-proof@v1;
- :mod:`~foodtrace.tlog.bundle`: a ledger's bundle, written and verified offline;
- :mod:`~foodtrace.tlog.signer`: the platform's checkpoint signer, whose key and
  last-signed state live outside the database;
- :mod:`~foodtrace.tlog.witness`: a witness of a server's checkpoints, over HTTP;
- :mod:`~foodtrace.tlog.errors`: :class:`~foodtrace.tlog.errors.ProofError`.
"""
