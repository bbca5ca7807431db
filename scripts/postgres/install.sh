#!/usr/bin/env bash
# Installs the PostgreSQL server `npm run test:postgres` needs (initdb, pg_ctl, postgres).
# Idempotent: does nothing when Debian's server binaries (or ones on PATH) are already there.
set -euo pipefail

found() {
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return 0; }
  return 1
}

if bin=$(found); then
  echo "postgres: server already installed ($("$bin/postgres" --version))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "postgres: need root (or sudo) to install postgresql" >&2; exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "postgres: apt-get install postgresql"
if ! $SUDO apt-get install -y -qq --no-install-recommends postgresql >"$log" 2>&1; then
  # the package lists may be missing or old: update once, then try again
  echo "postgres: apt-get update"
  $SUDO apt-get update -qq
  if ! $SUDO apt-get install -y -qq --no-install-recommends postgresql >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    exit 1
  fi
fi
bin=$(found) || { echo "postgres: installed, but no initdb/pg_ctl found" >&2; exit 1; }
echo "postgres: installed $("$bin/postgres" --version)"
