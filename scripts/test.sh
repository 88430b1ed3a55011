#!/usr/bin/env bash
# The whole test suite: types, lint, then unit, integration and end-to-end tests.
# It runs inside a private network namespace (unshare -n): the bridges, TAPs and guests the tests make
# never touch this machine's real network, and nothing can reach beyond it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "npm test needs root: the tests create network namespaces, bridges, TAPs and QEMU microVMs" >&2
  exit 1
fi
bash scripts/setup.sh --test
npm run typecheck
npm run lint
# The web console and the bundled bins (the install and start tests run what a user would).
npm run --silent build >/dev/null
# The production-install test runs `npm ci --omit=dev --offline`: fill npm's cache while the network is reachable.
node --import tsx scripts/release.ts --seed-npm-cache
# Demo guest images come from Debian packages: fetch and build them while the network is still reachable.
node --import tsx scripts/build-demo-images.ts .cache/demo-images .cache/demo-cache >/dev/null
# Guests with other inits (Debian + systemd, + sysvinit, + sysvinit with OpenRC; debootstrap) prove the agent install.
node --import tsx scripts/build-systemd-rootfs.ts .cache/demo-cache systemd sysvinit openrc >/dev/null
report=$(mktemp -t nqvm-vitest-XXXXXX.json)
status=0
unshare -n -- bash -c 'ip link set lo up && exec npx vitest run --reporter=default --reporter=json --outputFile.json="$0"' "$report" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' "$report" || true
rm -f "$report"
exit $status
