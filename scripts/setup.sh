#!/usr/bin/env bash
# Installs what nqvm needs on a Debian 12 host (as root): Debian packages when missing, npm dependencies.
# Used by both Quick start commands; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(qemu-system-x86 qemu-utils e2fsprogs busybox-static cpio iproute2 nftables util-linux procps zstd xz-utils genisoimage)
# systemd: only its systemd-analyze, which checks the units `nqvm install` writes. docker-registry, skopeo and
# apache2-utils (htpasswd): the OCI pull tests' local registry.
if [ "${1:-}" = "--test" ]; then packages+=(postgresql chromium debootstrap systemd docker-registry skopeo apache2-utils); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "nqvm needs these Debian packages: ${missing[*]} — run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
