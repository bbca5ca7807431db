#!/usr/bin/env bash
# scripts/ci/suite.sh <20|22|24>: the README's test command (`npm ci && npm test`) on that Node, in a
# copy of this tree (the files git tracks or would track) with its own node_modules, so the native
# modules built for one Node's ABI never meet another Node. The copy lives outside the tree (jest
# would otherwise find a second package of the same name under it): $AWS_STORAGE_CI_DIR/node<major>.
set -euo pipefail
cd "$(dirname "$0")/../.."
major="${1:?usage: scripts/ci/suite.sh <20|22|24>}"
copy="${AWS_STORAGE_CI_DIR:-${TMPDIR:-/tmp}/aws-storage-ci}/node$major"
rm -rf "$copy"
mkdir -p "$copy"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$copy"
cd "$copy"
started=$(date +%s)
bash scripts/ci/node.sh "$major" bash -c 'node --version && npm ci --no-audit --no-fund && npm test'
echo "scripts/ci/suite.sh: Node $major passed in $(( $(date +%s) - started )) s"
