/** Pure text of every file prepareRootfs injects, per init system; validated inputs only reach here. */
import type { InitKind } from './init-detect.ts';

export class PlanError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'PlanError';
  }
}

export const AGENT_DIR = '/opt/nqvm';
export const AGENT_JS = `${AGENT_DIR}/guest-agent.js`;
export const RUNTIME_DIR = `${AGENT_DIR}/node`;
export const LOADER = 'ld-linux-x86-64.so.2';
export const CONFIG_DIR = '/etc/nqvm';
export const AGENT_CONFIG = `${CONFIG_DIR}/guest-agent.json`;
export const RUN_AGENT = `${CONFIG_DIR}/run-agent.sh`;
export const SUPERVISE = `${CONFIG_DIR}/supervise.sh`;
export const NETWORK_SCRIPT = `${CONFIG_DIR}/network.sh`;
export const SERVICE_NAME = 'nqvm-guest-agent';
export const TOOLS_LABEL = 'nqvm-tools';

export interface NetworkPlan {
  /** IPv4 with prefix, e.g. `10.0.0.5/24`. */
  address: string;
  gateway?: string;
  dns?: string[];
  /** Guest interface name; default `eth0`. */
  interface?: string;
  /** Lets systemd-networkd match the NIC by MAC rather than by name. */
  mac?: string;
}

export interface ParsedNetwork {
  ip: string;
  prefix: number;
  netmask: string;
  gateway?: string;
  dns: string[];
  iface: string;
  mac?: string;
}

function ipv4(field: string, s: string): string {
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) {
    throw new PlanError(field, `not an IPv4 address: ${JSON.stringify(s)}`);
  }
  return s;
}

export function parseNetwork(plan: NetworkPlan): ParsedNetwork {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(plan.address);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 32)
    throw new PlanError('network.address', `expected a.b.c.d/prefix, got ${JSON.stringify(plan.address)}`);
  const ip = ipv4('network.address', m[1] ?? '');
  const prefix = Number(m[2]);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const netmask = [24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join('.');
  const iface = plan.interface ?? 'eth0';
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(iface))
    throw new PlanError('network.interface', `invalid interface name ${JSON.stringify(iface)}`);
  if (plan.mac !== undefined && !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(plan.mac))
    throw new PlanError('network.mac', `invalid MAC ${JSON.stringify(plan.mac)}`);
  return {
    ip,
    prefix,
    netmask,
    iface,
    dns: (plan.dns ?? []).map((d) => ipv4('network.dns', d)),
    ...(plan.gateway !== undefined ? { gateway: ipv4('network.gateway', plan.gateway) } : {}),
    ...(plan.mac !== undefined ? { mac: plan.mac.toLowerCase() } : {}),
  };
}

export function assertHostname(name: string): string {
  if (
    name.length > 253 ||
    !/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(name)
  ) {
    throw new PlanError('hostname', `invalid hostname ${JSON.stringify(name)}`);
  }
  return name;
}

/** /etc/hosts with the hostname on 127.0.1.1 (Debian's convention), keeping unrelated lines. */
export function hostsFile(existing: string | undefined, hostname: string): string {
  const short = hostname.split('.')[0] ?? hostname;
  const names = short === hostname ? hostname : `${hostname} ${short}`;
  const kept = (existing ?? '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n')
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^127\.0\.1\.1\s/.test(l));
  return `${[...kept, `127.0.1.1\t${names}`].join('\n')}\n`;
}

export function interfacesFile(n: ParsedNetwork): string {
  const gw = n.gateway ? `    gateway ${n.gateway}\n` : '';
  return `# Written by nqvm before boot: static address allocated by the manager.
auto lo
iface lo inet loopback

auto ${n.iface}
iface ${n.iface} inet static
    address ${n.ip}
    netmask ${n.netmask}
${gw}`;
}

export function networkdFile(n: ParsedNetwork): string {
  const match = n.mac ? `MACAddress=${n.mac}` : `Name=${n.iface}`;
  const gw = n.gateway ? `Gateway=${n.gateway}\n` : '';
  const dns = n.dns.map((d) => `DNS=${d}\n`).join('');
  return `# Written by nqvm before boot: static address allocated by the manager.
[Match]
${match}

[Network]
Address=${n.ip}/${n.prefix}
${gw}${dns}`;
}

export function resolvConf(n: ParsedNetwork): string {
  return n.dns.map((d) => `nameserver ${d}\n`).join('');
}

/** Busybox init has no network service: this runs as an inittab `sysinit` entry. */
export function networkScript(n: ParsedNetwork): string {
  const gw = n.gateway ? `ip route replace default via ${n.gateway} dev ${n.iface}\n` : '';
  return `#!/bin/sh
# Written by nqvm: bring up the manager-allocated static address without DHCP.
ip link set lo up
ip link set ${n.iface} up
ip addr replace ${n.ip}/${n.prefix} dev ${n.iface}
${gw}`;
}

export type AgentMode = 'tools-drive' | 'copy';

/** The launcher every init runs; in tools-drive mode it first mounts the shared read-only runtime drive. */
export function runAgentScript(mode: AgentMode): string {
  const mount =
    mode === 'tools-drive'
      ? `if [ ! -x ${RUNTIME_DIR}/node ]; then
  mount -o ro -L ${TOOLS_LABEL} ${AGENT_DIR} 2>/dev/null || mount -o ro LABEL=${TOOLS_LABEL} ${AGENT_DIR} || {
    echo "nqvm: cannot mount the ${TOOLS_LABEL} drive at ${AGENT_DIR}" >&2
    sleep 5
    exit 1
  }
fi
`
      : '';
  return `#!/bin/sh
# Written by nqvm: started (and restarted on exit) by the guest's init.
${mount}exec ${RUNTIME_DIR}/${LOADER} --library-path ${RUNTIME_DIR} ${RUNTIME_DIR}/node ${AGENT_JS}
`;
}

export function systemdUnit(): string {
  return `[Unit]
Description=nqvm guest agent
After=network-online.target systemd-networkd.service
Wants=network-online.target

[Service]
ExecStart=${RUN_AGENT}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`;
}

export function openrcScript(): string {
  return `#!/sbin/openrc-run
# Written by nqvm; supervise-daemon restarts the agent whenever it exits.
description="nqvm guest agent"
supervisor=supervise-daemon
command=${RUN_AGENT}
respawn_delay=2
respawn_max=0

depend() {
  use net
  after net
}
`;
}

/** sysvinit has no supervisor: the script starts a restart loop and stops its whole process group. */
export function superviseScript(): string {
  return `#!/bin/sh
# Written by nqvm: keep the guest agent running (sysvinit does not respawn init.d services).
while :; do
  ${RUN_AGENT}
  sleep 2
done
`;
}

export function sysvinitScript(): string {
  return `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ${SERVICE_NAME}
# Required-Start:    $network $remote_fs
# Required-Stop:     $network $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: nqvm guest agent
### END INIT INFO
PIDFILE=/run/${SERVICE_NAME}.pid
case "$1" in
  start)
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then exit 0; fi
    setsid ${SUPERVISE} </dev/null >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then kill -- -"$(cat "$PIDFILE")" 2>/dev/null; rm -f "$PIDFILE"; fi
    ;;
  restart)
    "$0" stop
    "$0" start
    ;;
  status)
    [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
    ;;
  *)
    echo "usage: $0 {start|stop|restart|status}" >&2
    exit 3
    ;;
esac
`;
}

/**
 * Debian's rc boots from insserv's makefiles (/etc/init.d/.depend.start, .depend.stop) when they exist, and then runs
 * only the scripts they list: a script linked into rcN.d without running insserv must join their TARGETS too.
 */
export function insservDepend(text: string, service: string): string {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => /^TARGETS\s*=/.test(l));
  const targets =
    at < 0
      ? []
      : (lines[at] ?? '')
          .replace(/^TARGETS\s*=/, '')
          .trim()
          .split(/\s+/)
          .filter(Boolean);
  if (targets.includes(service)) return text;
  const line = `TARGETS = ${[...targets, service].join(' ')}`;
  if (at < 0) return `${line}\n${text}`;
  lines[at] = line;
  return lines.join('\n');
}

/** Busybox's built-in defaults, written out because any /etc/inittab replaces them entirely. */
const BUSYBOX_DEFAULT_INITTAB = `::sysinit:/etc/init.d/rcS
::askfirst:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/sbin/swapoff -a
::shutdown:/bin/umount -a -r
::restart:/sbin/init
`;

/** Adds nqvm's entries to a busybox inittab (idempotent: earlier nqvm lines are replaced). */
export function busyboxInittab(existing: string | undefined, opts: { network: boolean; agent: boolean }): string {
  const base = (existing ?? BUSYBOX_DEFAULT_INITTAB)
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.includes(CONFIG_DIR));
  const lastSysinit = base.reduce((at, l, i) => (/^[^#:]*::sysinit:/.test(l) ? i : at), -1);
  if (opts.network) base.splice(lastSysinit + 1, 0, `::sysinit:${NETWORK_SCRIPT}`);
  if (opts.agent) base.push(`::respawn:${RUN_AGENT}`);
  return `${base.join('\n')}\n`;
}

export interface AgentConfig {
  vm_id: string;
  token: string;
  host_url: string;
  port?: number;
}

export function agentConfigJson(c: AgentConfig): string {
  if (!c.vm_id || !c.token) throw new PlanError('guestAgent.config', 'vm_id and token are required');
  if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(c.host_url))
    throw new PlanError('guestAgent.config.host_url', `not an http(s) URL: ${c.host_url}`);
  const port = c.port ?? 9000;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new PlanError('guestAgent.config.port', `bad port ${port}`);
  return `${JSON.stringify({ vm_id: c.vm_id, token: c.token, host_url: c.host_url, port }, null, 2)}\n`;
}

export function wantsNetworkConfig(kind: InitKind): 'networkd' | 'interfaces' | 'script' {
  return kind === 'systemd' ? 'networkd' : kind === 'busybox' ? 'script' : 'interfaces';
}
