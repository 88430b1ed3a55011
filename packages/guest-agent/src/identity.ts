import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';

/** A new identity pushed by the host agent to a guest restored from a snapshot (a clone of another VM). */
export interface NewIdentity {
  vm_id: string;
  token: string;
  hostname: string;
  /** Address with prefix, e.g. 10.88.0.7/24 */
  ip: string;
  gateway: string;
  mac: string;
  /** The address the clone still has from its source. */
  old_ip: string;
  /** Random bytes (base64) mixed into the guest's pool so clones do not share RNG state. */
  entropy: string;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const CHECKS: Record<keyof NewIdentity, (v: string) => boolean> = {
  vm_id: (v) => /^[A-Za-z0-9_-]{1,128}$/.test(v),
  token: (v) => /^[\x21-\x7e]{1,4096}$/.test(v),
  hostname: (v) => /^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$/.test(v),
  ip: (v) => {
    const [a, p] = v.split('/');
    return !!a && IPV4.test(a) && /^([1-9]|[12]\d|3[0-2])$/.test(p ?? '');
  },
  gateway: (v) => IPV4.test(v),
  old_ip: (v) => IPV4.test(v),
  mac: (v) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(v) && (Number.parseInt(v.slice(0, 2), 16) & 1) === 0,
  entropy: (v) => /^[A-Za-z0-9+/=]{0,1024}$/.test(v),
};

/** Every field must be present and match its strict pattern: the values reach `ip` argv. */
export function parseIdentity(raw: unknown): NewIdentity | string {
  if (typeof raw !== 'object' || raw === null) return 'body must be a JSON object';
  const o = raw as Record<string, unknown>;
  for (const [k, ok] of Object.entries(CHECKS)) {
    const v = o[k];
    if (typeof v !== 'string' || !ok(v)) return `${k} is missing or invalid`;
  }
  return o as unknown as NewIdentity;
}

export type Exec = (cmd: string, args: string[]) => Promise<void>;

export const execArgv: Exec = (cmd, args) =>
  new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 10_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(),
    ),
  );

/** The interface holding `ip`, in the kernel's order. */
export function interfaceWith(ip: string): string | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces()))
    if (addrs?.some((a) => a.address === ip)) return name;
  return undefined;
}

/** Moves the interface that holds the old address to the new MAC and address, and renames the host. */
export async function applyIdentity(id: NewIdentity, exec: Exec, iface: string): Promise<void> {
  await exec('ip', ['link', 'set', 'dev', iface, 'address', id.mac]);
  await exec('ip', ['addr', 'flush', 'dev', iface]);
  await exec('ip', ['addr', 'add', id.ip, 'dev', iface]);
  await exec('ip', ['link', 'set', 'dev', iface, 'up']);
  await exec('ip', ['route', 'replace', 'default', 'via', id.gateway, 'dev', iface]);
  // The kernel's own file: no process to start (each costs a lot in an emulated guest); `hostname` if it is absent.
  await writeFile('/proc/sys/kernel/hostname', id.hostname).catch(() => exec('hostname', [id.hostname]));
  await writeFile('/etc/hostname', `${id.hostname}\n`).catch(() => undefined);
  if (id.entropy) await writeFile('/dev/urandom', Buffer.from(id.entropy, 'base64')).catch(() => undefined);
}
