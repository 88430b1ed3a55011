import { hostname } from 'node:os';
import { resolve } from 'node:path';

export interface AgentConfig {
  bind: { host: string; port: number };
  dataDir: string;
  managerBase: string;
  joinToken?: string;
  name: string;
  advertiseUrl: string;
  guestPort: number;
  heartbeatS: number;
  /** What a VM's console and VMM logs each keep on disk unless its logger setting says otherwise. */
  logMaxBytes: number;
  firecrackerBin?: string;
  qemuBin?: string;
  /** PATH, for finding VMM binaries that are not given as absolute paths. */
  pathEnv?: string;
  labels: Record<string, string>;
  /** The reserved uid/gid range VMMs run as, one per VM (NQVM_VMM_UID_BASE, NQVM_VMM_UID_COUNT). */
  vmmUsers: { base: number; count: number };
}

export class AgentConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid agent configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'AgentConfigError';
  }
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/;
const LABEL_KEY = /^[a-z0-9][a-z0-9._/-]{0,62}$/;

function parseUrl(problems: string[], key: string, raw: string): string {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    return raw.replace(/\/+$/, '');
  } catch {
    problems.push(`${key} must be an http(s) URL, got "${raw}"`);
    return raw;
  }
}

function intVar(problems: string[], key: string, raw: string | undefined, def: number, min: number, max: number) {
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) problems.push(`${key} must be an integer in ${min}..${max}`);
  return n;
}

/** Reads the agent's environment once; every problem is reported together. */
export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const problems: string[] = [];
  const bindRaw = env.AGENT_BIND || '127.0.0.1:19090';
  const bm = /^([0-9a-zA-Z.:-]+):(\d{1,5})$/.exec(bindRaw);
  if (!bm || Number(bm[2]) > 65535) problems.push(`AGENT_BIND must be host:port, got "${bindRaw}"`);
  const bind = { host: bm?.[1] ?? '127.0.0.1', port: Number(bm?.[2] ?? 19090) };

  let managerBase = '';
  if (!env.MANAGER_BASE) problems.push('MANAGER_BASE is required (e.g. http://127.0.0.1:18080)');
  else managerBase = parseUrl(problems, 'MANAGER_BASE', env.MANAGER_BASE);

  const name = env.AGENT_NAME || hostname().split('.')[0] || 'agent';
  if (!NAME.test(name)) problems.push(`AGENT_NAME must match ${NAME.source}, got "${name}"`);

  const advertiseUrl = parseUrl(problems, 'AGENT_ADVERTISE_URL', env.AGENT_ADVERTISE_URL || `https://${bindRaw}`);
  const guestPort = intVar(problems, 'AGENT_GUEST_PORT', env.AGENT_GUEST_PORT, 19091, 1, 65535);
  const heartbeatS = intVar(problems, 'AGENT_HEARTBEAT_S', env.AGENT_HEARTBEAT_S, 3, 1, 300);
  const vmmUidBase = intVar(problems, 'NQVM_VMM_UID_BASE', env.NQVM_VMM_UID_BASE, 900_000, 1000, 0xffff_0000);
  const vmmUidCount = intVar(problems, 'NQVM_VMM_UID_COUNT', env.NQVM_VMM_UID_COUNT, 65_536, 1, 0xffff);
  const logMaxBytes = intVar(problems, 'AGENT_LOG_MAX_BYTES', env.AGENT_LOG_MAX_BYTES, 8 * 1024 * 1024, 65536, 2 ** 34);

  const labels: Record<string, string> = {};
  for (const pair of (env.AGENT_LABELS ?? '').split(',').filter((p) => p.trim())) {
    const [k, v, ...rest] = pair.split('=');
    const key = k?.trim() ?? '';
    if (!LABEL_KEY.test(key) || v === undefined || rest.length) {
      problems.push(`AGENT_LABELS must be k=v,k=v; bad entry "${pair}"`);
      continue;
    }
    labels[key] = v.trim();
  }

  if (problems.length) throw new AgentConfigError(problems);
  return {
    bind,
    dataDir: resolve(env.AGENT_DATA_DIR || '/var/lib/nqvm-agent'),
    managerBase,
    ...(env.NQVM_JOIN_TOKEN ? { joinToken: env.NQVM_JOIN_TOKEN } : {}),
    name,
    advertiseUrl,
    guestPort,
    heartbeatS,
    logMaxBytes,
    ...(env.FIRECRACKER_BIN ? { firecrackerBin: env.FIRECRACKER_BIN } : {}),
    ...(env.QEMU_BIN ? { qemuBin: env.QEMU_BIN } : {}),
    ...(env.PATH ? { pathEnv: env.PATH } : {}),
    labels,
    vmmUsers: { base: vmmUidBase, count: vmmUidCount },
  };
}
