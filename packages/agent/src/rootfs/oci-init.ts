import type { AgentService } from '@nqvm/api';
import type { Ext4Batch } from './ext4.ts';
import { AGENT_DIR, CONFIG_DIR, NETWORK_SCRIPT, RUN_AGENT, TOOLS_LABEL } from './guest-config.ts';
import type { InitDetection } from './init-detect.ts';

/**
 * A container image has no init of its own (its runtime starts the entrypoint): a VM of one boots nqvm's. The
 * host's static busybox becomes /sbin/init and the few tools the boot needs; the guest agent (respawned by it)
 * runs the image's entrypoint as the VM's service, described by SERVICE_FILE.
 */
export const OCI_INIT: InitDetection = { kind: 'busybox', evidence: ['an OCI image: nqvm provides the init'] };
export const BIN_DIR = `${CONFIG_DIR}/bin`;
export const BUSYBOX = `${BIN_DIR}/busybox`;
export const SERVICE_FILE = `${CONFIG_DIR}/service.json`;
const RC = `${CONFIG_DIR}/rc.sh`;
const APPLETS = ['sh', 'mount', 'mkdir', 'ip', 'hostname', 'head', 'poweroff', 'sleep', 'cat', 'usleep', 'sync', 'ls'];

/** Every path writeOciInit looks at, for prepareRootfs's one prefetching debugfs run. */
export const OCI_PATHS = [BUSYBOX, RC, SERVICE_FILE, '/sbin/init', ...APPLETS.map((a) => `${BIN_DIR}/${a}`)];

export function ociInittab(): string {
  return `# Written by nqvm: this VM's image is an OCI image; nqvm's init runs its entrypoint through the guest agent.
::sysinit:${BIN_DIR}/sh ${RC}
::respawn:${BIN_DIR}/sh ${RUN_AGENT}
::ctrlaltdel:${BIN_DIR}/poweroff
::shutdown:${BIN_DIR}/sync
`;
}

/** Mounts what a container runtime would have, applies the network, mounts the guest tools, watches the power button. */
export function ociRc(network: boolean): string {
  return `#!${BIN_DIR}/sh
export PATH=${BIN_DIR}:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
[ -f /etc/hostname ] && hostname -F /etc/hostname
${network ? `sh ${NETWORK_SCRIPT}\n` : ''}mkdir -p ${AGENT_DIR}
mount -o ro LABEL=${TOOLS_LABEL} ${AGENT_DIR} || echo "nqvm: cannot mount the ${TOOLS_LABEL} drive"
for ev in /sys/class/input/event*; do
  [ "$(cat "$ev/device/name" 2>/dev/null)" = "Power Button" ] || continue
  (head -c 1 "/dev/input/\${ev##*/}" >/dev/null 2>&1 && poweroff) &
done
echo "nqvm: init ready, starting the image's service"
`;
}

/** The guest agent reads this to run the service: argv, env, working dir, user, restart policy. */
export function serviceJson(s: AgentService): string {
  return `${JSON.stringify(s, null, 2)}\n`;
}

/** Writes nqvm's init into a VM's copy of an OCI image (replacing any /sbin/init and /etc/inittab it has). */
export async function writeOciInit(
  b: Ext4Batch,
  service: AgentService,
  opts: { busybox: string; network: boolean },
): Promise<void> {
  await b.mkdirP(BIN_DIR, { mode: 0o755 });
  await b.writeFile(BUSYBOX, { hostFile: opts.busybox }, { mode: 0o755 });
  for (const applet of APPLETS) await b.symlink(`${BIN_DIR}/${applet}`, 'busybox');
  await b.mkdirP('/sbin');
  await b.symlink('/sbin/init', BUSYBOX);
  await b.writeFile('/etc/inittab', ociInittab(), { mode: 0o644 });
  await b.writeFile(RC, ociRc(opts.network), { mode: 0o755 });
  await b.writeFile(SERVICE_FILE, serviceJson(service), { mode: 0o600 });
}
