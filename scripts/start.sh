#!/usr/bin/env bash
# Starts nqvm on this machine: manager (embedded database) + local agent + demo images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx packages/cli/bin/nqvm.ts up "$@"
