#!/bin/sh
# The container's start (docker/Dockerfile ENTRYPOINT): wait for the database, migrate it,
# check the signing key on its mounted volume, then become the server. Arguments go to
# `foodtrace serve` (the image's CMD: --host 0.0.0.0 --port 8000). Configuration comes from
# TRACE_* environment variables only (README, "Configuration").
set -eu

key="${TRACE_SIGNING_KEY_FILE:?set TRACE_SIGNING_KEY_FILE to the key file on the mounted signing volume}"
dir=$(dirname "$key")
# The signer keeps <key>.state.json and its lock beside the key: the directory must exist (a
# mistyped path must not silently make a new key somewhere) and be writable by this user.
if [ ! -d "$dir" ]; then
  echo "entrypoint: the signing-key directory $dir does not exist: mount the signing volume there" >&2
  exit 2
fi
if [ ! -w "$dir" ]; then
  echo "entrypoint: $dir is not writable by $(id -un) (uid $(id -u)); the signer writes its state there" >&2
  exit 2
fi
if ! python -c 'import os, sys; sys.exit(not os.path.ismount(sys.argv[1]))' "$dir"; then
  echo "entrypoint: WARNING: $dir is not a mounted volume; a key made here is lost with the container" >&2
fi

foodtrace wait-db
# Upgrade the schema once, here, before any worker starts (workers find it at head).
foodtrace migrate >&2  # stdout is for the server's JSON log
# Load and check the key (mode 0600, named after the platform). On the first start of an empty
# installation it is made on the volume; a database that holds checkpoints signed by a key that
# is missing here is refused (restore the key and its .state.json; README, "The signing key").
vkey=$(foodtrace init)
echo "entrypoint: checkpoint verifier key (publish it): $vkey" >&2

exec foodtrace serve "$@"
