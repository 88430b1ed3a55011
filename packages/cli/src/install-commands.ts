import { last, on, type ParsedArgv, parseArgv } from './argv.ts';
import { UsageError } from './flags.ts';
import { EXIT } from './help.ts';
import { type InstallOptions, install, ROLES, type Role } from './install.ts';
import type { Io } from './run.ts';

const VALUED = new Set(['set', 'prefix', 'token', 'name', 'bind', 'advertise', 'labels', 'data-dir', 'profile', 'url']);

function reparse(argv: string[]): ParsedArgv {
  return parseArgv(argv, (name) => VALUED.has(name));
}

function settings(p: ParsedArgv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of p.flags.get('set') ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set ${kv}: expected KEY=VALUE`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function options(p: ParsedArgv, set: Record<string, string>): InstallOptions {
  const prefix = last(p, 'prefix');
  return { set, ...(prefix ? { prefix } : {}), noStart: last(p, 'start') === 'false' };
}

function requireRoot(p: ParsedArgv): void {
  if (!last(p, 'prefix') && process.getuid?.() !== 0)
    throw new Error('installing a service writes /etc/systemd/system and /etc/nqvm: run it as root');
}

/** `nqvm install manager|agent`: the service's unit and environment file, enabled and started. */
export async function installCommand(argv: string[], io: Io): Promise<number> {
  const p = reparse(argv);
  const role = p.positionals[1] as Role | undefined;
  if (!role || !ROLES.includes(role)) throw new UsageError('install needs a role: manager or agent');
  requireRoot(p);
  const done = install(role, options(p, settings(p)));
  for (const n of done.notes) io.out(n);
  return EXIT.ok;
}

/**
 * `nqvm host join URL --token TOKEN`: this machine's agent registers with the manager at URL. A thin layer over
 * the agent's own registration: it writes the agent's settings and service and starts it (or, `--foreground`,
 * runs the agent in this process), and the agent registers with the token on its first start.
 */
export async function hostJoin(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  const p = reparse(argv);
  const url = p.positionals[2];
  const token = last(p, 'token');
  if (!url || !token) throw new UsageError('host join needs the manager URL and --token TOKEN');
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new UsageError(`host join: ${url} is not a URL`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError('host join: the URL is http(s)');
  const set: Record<string, string> = {
    ...settings(p),
    MANAGER_BASE: base.href.replace(/\/$/, ''),
    NQVM_JOIN_TOKEN: token,
  };
  const flagged: [string, string][] = [
    ['name', 'AGENT_NAME'],
    ['bind', 'AGENT_BIND'],
    ['advertise', 'AGENT_ADVERTISE_URL'],
    ['labels', 'AGENT_LABELS'],
    ['data-dir', 'AGENT_DATA_DIR'],
  ];
  for (const [flag, key] of flagged) {
    const v = last(p, flag);
    if (v) set[key] = v;
  }
  if (on(p, 'foreground')) return joinInForeground({ ...env, ...set }, io);
  requireRoot(p);
  const done = install('agent', options(p, set));
  for (const n of done.notes) io.out(n);
  if (done.started) io.out(`the agent registers with ${set.MANAGER_BASE} now: see it with nqvm hosts list`);
  return EXIT.ok;
}

/** The agent in this process until SIGINT/SIGTERM; its VMs keep running after it stops. */
async function joinInForeground(env: Record<string, string | undefined>, io: Io): Promise<number> {
  const { loadAgentConfig, startAgent } = await import('@nqvm/agent');
  const agent = await startAgent(loadAgentConfig(env));
  io.out(
    `joined ${env.MANAGER_BASE} as host ${agent.hostId}; agent at ${agent.url} (Ctrl-C stops it, VMs keep running)`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await agent.close();
  return EXIT.ok;
}
