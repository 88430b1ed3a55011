import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Role = 'manager' | 'agent';
export const ROLES: readonly Role[] = ['manager', 'agent'];

/** `packages/cli/{src,dist}/` — the same depth from source (tsx) and from the bundle. */
const HERE = dirname(fileURLToPath(import.meta.url));
const CHECKOUT = resolve(HERE, '../../..');

export interface InstallOptions {
  /** Settings for the role's environment file, over what is there already and the defaults. */
  set: Record<string, string>;
  /** Written under this root instead of `/` (tests, image builds); nothing is started then. */
  prefix?: string;
  /** Write the unit and the environment file, do not enable or start the service. */
  noStart?: boolean;
  /** The node binary and checkout the service runs; the running CLI's by default. */
  node?: string;
  checkout?: string;
}

export interface Installed {
  unit: string;
  envFile: string;
  started: boolean;
  /** Lines worth showing the operator (generated secrets among them). */
  notes: string[];
}

const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;

/** The unit from `deploy/systemd`, its ExecStart pointing at this node binary and checkout. */
export function renderUnit(role: Role, node = process.execPath, checkout = CHECKOUT): string {
  const template = readFileSync(join(checkout, 'deploy', 'systemd', `nqvm-${role}.service`), 'utf8');
  const bin = join(checkout, 'packages', role, 'bin', `nqvm-${role}.mjs`);
  return template.replace(/^ExecStart=.*$/m, `ExecStart=${node} ${bin}`);
}

function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1]) out.set(m[1], m[2] ?? '');
  }
  return out;
}

/** systemd's EnvironmentFile syntax: one KEY=VALUE a line, values never containing a newline. */
function envFileText(role: Role, values: Map<string, string>): string {
  const lines = [`# nqvm ${role} settings (see the README's Configuration table). Root-only: it holds secrets.`];
  for (const [k, v] of values) {
    if (/[\n\r]/.test(v)) throw new Error(`${k}: a value cannot contain a line break`);
    lines.push(`${k}=${v}`);
  }
  return `${lines.join('\n')}\n`;
}

function defaults(role: Role): [string, string][] {
  if (role === 'manager')
    return [
      ['NQVM_DATA_DIR', '/var/lib/nqvm'],
      ['MANAGER_BIND', '127.0.0.1:18080'],
      ['NQVM_ADMIN_PASSWORD', randomBytes(12).toString('base64url')],
    ];
  return [
    ['AGENT_DATA_DIR', '/var/lib/nqvm-agent'],
    ['AGENT_BIND', '127.0.0.1:19090'],
  ];
}

/**
 * Writes `/etc/systemd/system/nqvm-<role>.service` and `/etc/nqvm/<role>.env` (0600), keeping the settings an
 * earlier install wrote, then enables and starts the service. A manager's first install generates its admin
 * password into the environment file and shows it; agents join with tokens an admin makes (`nqvm join-tokens create`).
 */
export function install(role: Role, opts: InstallOptions): Installed {
  for (const k of Object.keys(opts.set)) if (!ENV_NAME.test(k)) throw new Error(`--set ${k}: not a variable name`);
  if (role === 'agent' && !opts.set.MANAGER_BASE && !opts.prefix)
    throw new Error('an agent needs the manager: --set MANAGER_BASE=URL --set NQVM_JOIN_TOKEN=… (or nqvm host join)');
  const root = opts.prefix ? resolve(opts.prefix) : '/';
  const unit = join(root, 'etc', 'systemd', 'system', `nqvm-${role}.service`);
  const envFile = join(root, 'etc', 'nqvm', `${role}.env`);
  const previous = existsSync(envFile) ? parseEnvFile(readFileSync(envFile, 'utf8')) : new Map<string, string>();
  const values = new Map<string, string>();
  const notes: string[] = [];
  for (const [k, v] of defaults(role)) {
    if (previous.has(k) || k in opts.set) continue;
    values.set(k, v);
    if (k === 'NQVM_ADMIN_PASSWORD') notes.push(`admin credentials: admin / ${v}  (kept in ${envFile})`);
  }
  if (role === 'manager')
    notes.push('hosts join with a token an admin makes: nqvm join-tokens create (then nqvm host join URL --token …)');
  for (const [k, v] of previous) values.set(k, v);
  for (const [k, v] of Object.entries(opts.set)) values.set(k, v);

  mkdirSync(dirname(unit), { recursive: true });
  mkdirSync(dirname(envFile), { recursive: true, mode: 0o700 });
  writeFileSync(unit, renderUnit(role, opts.node, opts.checkout));
  writeFileSync(envFile, envFileText(role, values), { mode: 0o600 });
  chmodSync(envFile, 0o600);
  notes.push(`wrote ${unit} and ${envFile}`);

  const started = !opts.prefix && !opts.noStart;
  if (started) {
    systemctl(['daemon-reload']);
    systemctl(['enable', `nqvm-${role}.service`]);
    systemctl(['restart', `nqvm-${role}.service`]);
    notes.push(`nqvm-${role} is running: systemctl status nqvm-${role}, journalctl -u nqvm-${role}`);
  }
  return { unit, envFile, started, notes };
}

function systemctl(args: string[]): void {
  const r = spawnSync('systemctl', args, { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    throw new Error(
      `systemctl ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()} ` +
        '(without systemd, run the bin directly with the environment file, or pass --no-start)',
    );
}
