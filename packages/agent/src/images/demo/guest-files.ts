/**
 * Text of the files baked into the demo initramfs and rootfs. Kept apart from the builder so the boot
 * protocol (kernel command line parameters the guest understands) reads in one place:
 *
 * - `root=/dev/vdX`, `ro`/`rw`, `rootfstype=`: honoured by the initramfs (default `/dev/vda`, rw, ext4).
 * - `ip=<addr>::<gw>:<netmask>:<hostname>:<dev>:off[:<dns0>]`: the kernel's own static `ip=` syntax
 *   (this kernel has no IP_PNP, so rcS applies it with `ip addr`/`ip route` before userspace goes on).
 * - `nqvm.tick=1`: print `tick N` every 0.2 s on the console (tests see pause/resume through it).
 * - `nqvm.ping=<ipv4>`: after boot, ping it and print `nqvm: ping <ip> ok|failed`.
 * - `nqvm.nic=<mac>,<addr>/<prefix>` (repeatable): static address of another NIC, found by its MAC.
 *
 * The console shows `nqvm: userspace ready` once rcS is done; `/etc/init.d/S??*` scripts (the injection
 * hook for services) run with `start` just before it.
 */

export const READY_MARKER = 'nqvm: userspace ready';

/** Modules the initramfs loads, in this order, when present in the kernel package. */
export const INITRAMFS_MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_mmio',
  'virtio_blk',
  'failover',
  'net_failover',
  'virtio_net',
  'virtio_balloon',
  'rng-core',
  'virtio-rng',
  'vsock',
  'vmw_vsock_virtio_transport_common',
  'vmw_vsock_virtio_transport',
  'button',
  'evdev',
] as const;

/** Modules also installed in the rootfs under /lib/modules so a guest can modprobe them. */
export const ROOTFS_MODULES = [
  'virtio_balloon',
  'virtio-rng',
  'vmw_vsock_virtio_transport',
  'vsock_diag',
  'button',
  'evdev',
] as const;

/** `/init` of the initramfs; `moduleFiles` are basenames under /lib/modules, already in load order. */
export function initScript(moduleFiles: readonly string[]): string {
  return `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# the initramfs has no /dev/console node, so the kernel could not give us stdio
exec 0</dev/console 1>/dev/console 2>&1
for m in ${moduleFiles.join(' ')}; do
  insmod /lib/modules/$m 2>/dev/null
done
root=/dev/vda
mode=rw
fstype=ext4
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=/dev/*) root=\${arg#root=} ;;
    rootfstype=*) fstype=\${arg#rootfstype=} ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
  esac
done
# virtio devices probe asynchronously; give the block device up to 5 s to appear
i=0
while [ ! -b "$root" ] && [ $i -lt 250 ]; do usleep 20000; i=$((i+1)); done
if ! mount -t "$fstype" -o "$mode" "$root" /mnt; then
  echo "nqvm-initramfs: cannot mount $root"
  poweroff -f
fi
umount /proc /sys
mount --move /dev /mnt/dev
exec switch_root /mnt /sbin/init
`;
}

export const INITTAB = `::sysinit:/etc/init.d/rcS
ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100
::ctrlaltdel:/sbin/poweroff
::shutdown:/etc/init.d/rcK
`;

export const RCS = `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname -F /etc/hostname
ip link set lo up
cmdline=$(cat /proc/cmdline)
param() {
  for a in $cmdline; do
    case "$a" in "$1"=*) echo "\${a#*=}"; return 0 ;; esac
  done
  return 1
}
mask2prefix() {
  p=0
  for o in $(echo "$1" | tr . ' '); do
    case "$o" in
      255) p=$((p+8)) ;; 254) p=$((p+7)) ;; 252) p=$((p+6)) ;; 248) p=$((p+5)) ;;
      240) p=$((p+4)) ;; 224) p=$((p+3)) ;; 192) p=$((p+2)) ;; 128) p=$((p+1)) ;;
    esac
  done
  echo $p
}
if ipconf=$(param ip); then
  set -f
  IFS=:
  set -- $ipconf
  unset IFS
  set +f
  dev=\${6:-eth0}
  i=0
  while [ ! -e "/sys/class/net/$dev" ] && [ $i -lt 100 ]; do usleep 20000; i=$((i+1)); done
  [ -n "$5" ] && hostname "$5"
  prefix=32
  [ -n "$4" ] && prefix=$(mask2prefix "$4")
  ip link set "$dev" up
  [ -n "$1" ] && ip addr add "$1/$prefix" dev "$dev"
  [ -n "$3" ] && ip route add default via "$3" dev "$dev"
  [ -n "$8" ] && echo "nameserver $8" > /etc/resolv.conf 2>/dev/null
  echo "nqvm: net $dev $1/$prefix gw \${3:-none}"
fi
# nqvm.nic=<mac>,<addr>/<prefix>: another NIC's address; replies from it leave by it (the host drops spoofed sources)
t=100
for a in $cmdline; do
  case "$a" in nqvm.nic=*,*/*) ;; *) continue ;; esac
  mac=\${a#nqvm.nic=}
  addr=\${mac#*,}
  mac=\${mac%%,*}
  dev=
  i=0
  while [ -z "$dev" ] && [ $i -lt 100 ]; do
    for d in /sys/class/net/*; do
      [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && dev=\${d##*/}
    done
    [ -n "$dev" ] || { usleep 20000; i=$((i+1)); }
  done
  [ -n "$dev" ] || { echo "nqvm: no NIC with MAC $mac"; continue; }
  echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore
  echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce
  t=$((t+1))
  ip link set "$dev" up
  ip addr add "$addr" dev "$dev"
  ip route show dev "$dev" scope link | while read -r net rest; do ip route add "$net" dev "$dev" table $t; done
  ip rule add from "\${addr%/*}" table $t
  echo "nqvm: net $dev $addr"
done
for ev in /sys/class/input/event*; do
  [ "$(cat "$ev/device/name" 2>/dev/null)" = "Power Button" ] || continue
  # ACPI power button (QMP system_powerdown): any event on it powers the guest off
  (head -c 1 "/dev/input/\${ev##*/}" >/dev/null 2>&1 && poweroff) &
done
for s in /etc/init.d/S[0-9][0-9]*; do
  [ -x "$s" ] && "$s" start
done
echo "${READY_MARKER}"
if [ "$(param nqvm.tick)" = 1 ]; then
  (n=0; while :; do echo "tick $n"; n=$((n+1)); usleep 200000; done) >/dev/console 2>&1 &
fi
if target=$(param nqvm.ping); then
  (if ping -c 3 -W 3 "$target" >/dev/null 2>&1; then r=ok; else r=failed; fi
   echo "nqvm: ping $target $r") >/dev/console 2>&1 &
fi
exit 0
`;

export const RCK = `#!/bin/sh
echo "nqvm: shutting down"
sync
umount -a -r 2>/dev/null
exit 0
`;

export const ETC_FILES: Readonly<Record<string, { text: string; mode: number }>> = {
  'etc/inittab': { text: INITTAB, mode: 0o644 },
  'etc/init.d/rcS': { text: RCS, mode: 0o755 },
  'etc/init.d/rcK': { text: RCK, mode: 0o755 },
  'etc/hostname': { text: 'nqvm\n', mode: 0o644 },
  'etc/hosts': { text: '127.0.0.1\tlocalhost\n127.0.1.1\tnqvm\n', mode: 0o644 },
  'etc/passwd': { text: 'root:x:0:0:root:/root:/bin/sh\n', mode: 0o644 },
  // root is locked; the agent's rootfs injection sets a real hash or SSH keys per VM
  'etc/shadow': { text: 'root:*:19000:0:99999:7:::\n', mode: 0o600 },
  'etc/group': { text: 'root:x:0:\ntty:x:5:\n', mode: 0o644 },
  'etc/shells': { text: '/bin/sh\n/bin/ash\n', mode: 0o644 },
  'etc/securetty': { text: 'ttyS0\nconsole\n', mode: 0o644 },
  'etc/profile': { text: 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nexport PS1="\\u@\\h:\\w# "\n', mode: 0o644 },
  'etc/fstab': { text: '/dev/root / ext4 defaults 0 1\n', mode: 0o644 },
};
