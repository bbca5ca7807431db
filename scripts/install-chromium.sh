#!/bin/sh
# Installs Debian's chromium for the browser test (test/browser), unless it is already there.
# Idempotent: a no-op when /usr/bin/chromium exists. Needs root (or sudo) and the Debian archive.
# CHROMIUM_PATH, which test/support/browser.ts also reads, names a browser of your own instead: then
# nothing is installed (on a machine without apt-get, say).
set -eu

if [ -n "${CHROMIUM_PATH:-}" ]; then
  if [ -x "$CHROMIUM_PATH" ]; then
    echo "chromium: CHROMIUM_PATH=$CHROMIUM_PATH ($("$CHROMIUM_PATH" --version 2>/dev/null || echo "version unknown"))"
    exit 0
  fi
  echo "install-chromium: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file" >&2
  exit 1
fi

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "chromium: already installed ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"))"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: $CHROMIUM is missing and apt-get is not available; install Chromium and set CHROMIUM_PATH to it" >&2
  exit 1
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-chromium: must run as root (or with sudo) to install chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive

# apt may be busy (another job installing); retry a few times.
apt() {
  n=0
  until $SUDO apt-get -o DPkg::Lock::Timeout=120 "$@"; do
    n=$((n + 1))
    if [ "$n" -ge 5 ]; then return 1; fi
    echo "install-chromium: apt-get $1 failed, retrying ($n)" >&2
    sleep 5
  done
}

# Only refresh the package lists when they do not know chromium yet.
if ! apt-cache show chromium >/dev/null 2>&1; then
  apt update
fi
if ! apt install -y --no-install-recommends chromium; then
  # stale package lists (a 404 on a superseded version): refresh them and try once more
  apt update
  apt install -y --no-install-recommends chromium
fi

if [ ! -x "$CHROMIUM" ]; then
  echo "install-chromium: chromium installed but $CHROMIUM is missing" >&2
  exit 1
fi
echo "chromium: installed ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"))"
