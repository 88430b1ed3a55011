#!/usr/bin/env bash
# Starts nqvm on this machine: manager (embedded database) + local agent + demo images.
# Everything it serves is built first (web console, bundled bins); no step after setup needs the network
# except the demo images' first build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "building the web console and the nqvm bins…"
npm run --silent build >/dev/null
exec node packages/cli/bin/nqvm.mjs up "$@"
