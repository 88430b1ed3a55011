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
# Function runtimes (node20: the demo rootfs; python3: the demo rootfs + python3.11 from its .debs), from the demo images.
node --import tsx scripts/build-runtime-images.ts .cache/demo-images .cache/runtime-cache .cache/runtime-images >/dev/null
report=$(mktemp -t nqvm-vitest-XXXXXX.json)
status=0
unshare -n -- bash -c 'ip link set lo up && exec npx vitest run --reporter=default --reporter=json --outputFile.json="$0"' "$report" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
  // The slowest files: the time budget of the suite (~25 min on 2 cores) shows in every CI log.
  const files = r.testResults.map((f) => ({ name: f.name.replace(process.cwd() + "/", ""), s: (f.endTime - f.startTime) / 1000 }));
  files.sort((a, b) => b.s - a.s);
  for (const f of files.slice(0, 15)) console.log(`  ${f.s.toFixed(0).padStart(5)} s  ${f.name}`);
' "$report" || true
rm -f "$report"
exit $status
