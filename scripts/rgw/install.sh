#!/usr/bin/env bash
# Installs the Ceph packages `npm run test:rgw` needs (one monitor, one OSD, one radosgw).
# Idempotent: does nothing when every binary is already there.
set -euo pipefail

PKGS=(ceph-mon ceph-osd radosgw ceph-common)
BINS=(ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool)

missing=0
for b in "${BINS[@]}"; do
  command -v "$b" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 0 ]; then
  echo "rgw: ceph packages already installed ($(ceph --version 2>/dev/null | awk '{print $3}'))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "rgw: need root (or sudo) to install ${PKGS[*]}" >&2; exit 1
  fi
fi

start=$(date +%s.%N)
export DEBIAN_FRONTEND=noninteractive
# apt-get update only when the package lists do not know the packages yet.
if ! apt-cache show radosgw >/dev/null 2>&1 || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
  echo "rgw: apt-get update"
  $SUDO apt-get update -qq
fi
log=$(mktemp)
echo "rgw: apt-get install ${PKGS[*]}"
if ! $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
end=$(date +%s.%N)
awk -v v="$(ceph --version | awk '{print $3}')" -v s="$start" -v e="$end" 'BEGIN { printf "rgw: installed ceph %s in %.1f s\n", v, e - s }'
