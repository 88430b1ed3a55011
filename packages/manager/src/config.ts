import { resolve } from 'node:path';
import { originOf } from './http/browser-guard.ts';
import { parseCidr } from './security/url-guard.ts';

export interface FunctionsConfig {
  /** Paused pre-restored instances kept per current version (0: none). */
  poolSize: number;
  /** The kernel (and initrd, when one of that name exists) runtime VMs boot; the rootfs is `runtime-<runtime>`. */
  kernelImage: string;
  initrdImage: string;
  /** Caps stdout and stderr each, and the value. */
  outputLimitBytes: number;
  /** How long an instance may take to boot or restore and report its guest agent ready. */
  readyTimeoutMs: number;
}

export interface ManagerConfig {
  databaseUrl: string | undefined;
  bind: { host: string; port: number };
  dataDir: string;
  imageRoot: string | undefined;
  allowImagePaths: boolean;
  reconcilerDisabled: boolean;
  enableMetrics: boolean;
  /** `/metrics` without credentials (otherwise a user session or API token is needed). */
  metricsPublic: boolean;
  /** Origins besides the manager's own whose pages may open WebSockets (the console's origin is always allowed). */
  allowedOrigins: string[];
  /** Address ranges URL imports may reach although internal (loopback, private, link-local, guest networks). */
  importAllowCidrs: string[];
  adminPassword: string | undefined;
  /** Base64 32-byte key for encrypting secrets at rest; generated under the data dir when absent. */
  secretKey: string | undefined;
  logLevel: string;
  sessionTtlHours: number;
  /** No API token outlives this many days; one asked for without an expiry gets it. */
  tokenMaxTtlDays: number;
  maxUploadBytes: number;
  maxImportBytes: number;
  metricsRetentionDays: number;
  cpuOvercommit: number;
  memOvercommit: number;
  hostHeartbeatTimeoutS: number;
  reconcileIntervalMs: number;
  /** Period of the stored metrics samples; 0 turns the history sampler off. */
  metricsSampleIntervalMs: number;
  stopTimeoutS: number;
  /** API rate limits per window (0: that kind is not limited); counters live in the database, shared by managers. */
  rateLimits: { windowS: number; perToken: number; perUser: number; perAddress: number };
  /** Webhook deliveries: attempts, the first retry's wait (doubling up to the cap), a receiver's time to answer. */
  webhooks: { maxAttempts: number; backoffMs: number; maxBackoffMs: number; timeoutMs: number };
  /** How often alert rules are evaluated. */
  alertIntervalMs: number;
  /** The managed default network: a bridge of this name on every host, addresses from this CIDR. */
  network: { cidr: string; gateway: string; bridge: string; nat: boolean };
  functions: FunctionsConfig;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Parses the manager's environment once; every problem is reported together. */
export function loadConfig(env: Env): ManagerConfig {
  const problems: string[] = [];
  const bool = (name: string, def: boolean): boolean => {
    const v = env[name];
    if (v === undefined || v === '') return def;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off)$/i.test(v)) return false;
    problems.push(`${name} must be true or false, got "${v}"`);
    return def;
  };
  const num = (name: string, def: number, min: number, max: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      problems.push(`${name} must be a number between ${min} and ${max}, got "${v}"`);
      return def;
    }
    return n;
  };

  const imageName = (name: string, def: string): string => {
    const v = env[name] || def;
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/.test(v)) problems.push(`${name} must be an image name, got "${v}"`);
    return v;
  };

  const bindRaw = env.MANAGER_BIND || '127.0.0.1:18080';
  const m = /^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]+):(\d{1,5})$/.exec(bindRaw);
  let bind = { host: '127.0.0.1', port: 18080 };
  if (!m || Number(m[2]) > 65535) problems.push(`MANAGER_BIND must be host:port, got "${bindRaw}"`);
  else bind = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };

  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl))
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');

  const dataDir = resolve(env.NQVM_DATA_DIR || '/var/lib/nqvm');
  const imageRoot = env.MANAGER_IMAGE_ROOT ? resolve(env.MANAGER_IMAGE_ROOT) : undefined;
  const allowImagePaths = bool('MANAGER_ALLOW_IMAGE_PATHS', false);
  if (allowImagePaths && !imageRoot) problems.push('MANAGER_ALLOW_IMAGE_PATHS=true needs MANAGER_IMAGE_ROOT');

  const adminPassword = env.NQVM_ADMIN_PASSWORD || undefined;
  if (adminPassword !== undefined && adminPassword.length < 8)
    problems.push('NQVM_ADMIN_PASSWORD must be at least 8 characters');

  const secretKey = env.NQVM_SECRET_KEY || undefined;
  if (secretKey !== undefined && Buffer.from(secretKey, 'base64').length !== 32)
    problems.push('NQVM_SECRET_KEY must be 32 bytes, base64-encoded');

  const logLevel = env.NQVM_LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel))
    problems.push(`NQVM_LOG_LEVEL must be one of fatal,error,warn,info,debug,trace,silent, got "${logLevel}"`);

  const cidr = env.NQVM_NETWORK_CIDR || '10.88.0.0/24';
  const cm = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  let gateway = '10.88.0.1';
  if (!cm || cm.slice(1, 5).some((o) => Number(o) > 255) || Number(cm[5]) < 8 || Number(cm[5]) > 29)
    problems.push(`NQVM_NETWORK_CIDR must be an IPv4 CIDR with a prefix from /8 to /29, got "${cidr}"`);
  else gateway = `${cm[1]}.${cm[2]}.${cm[3]}.${Number(cm[4]) + 1}`;
  const bridge = env.FC_BRIDGE || 'nqbr0';
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(bridge))
    problems.push(`FC_BRIDGE must be a valid interface name, got "${bridge}"`);

  const allowedOrigins: string[] = [];
  for (const raw of (env.NQVM_ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)) {
    const origin = originOf(raw);
    if (!origin || origin !== raw.replace(/\/$/, ''))
      problems.push(`NQVM_ALLOWED_ORIGINS must list origins like https://console.example:8443, got "${raw}"`);
    else allowedOrigins.push(origin);
  }
  const importAllowCidrs = (env.NQVM_IMPORT_ALLOW_CIDRS ?? '')
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  for (const c of importAllowCidrs)
    if (!parseCidr(c))
      problems.push(`NQVM_IMPORT_ALLOW_CIDRS must list CIDRs like 10.1.0.0/16 or fd00::/8, got "${c}"`);

  // NQVM_TOKEN_MAX_TTL: days, written `90` or `90d`.
  const ttl = /^([0-9]{1,4})d?$/.exec((env.NQVM_TOKEN_MAX_TTL ?? '365').trim());
  const tokenMaxTtlDays = ttl ? Number(ttl[1]) : 365;
  if (!ttl || tokenMaxTtlDays < 1 || tokenMaxTtlDays > 3650)
    problems.push(
      `NQVM_TOKEN_MAX_TTL must be a number of days from 1 to 3650 (like 90d), got "${env.NQVM_TOKEN_MAX_TTL}"`,
    );

  const config: ManagerConfig = {
    databaseUrl,
    bind,
    dataDir,
    imageRoot,
    allowImagePaths,
    reconcilerDisabled: bool('MANAGER_RECONCILER_DISABLED', false),
    enableMetrics: bool('MANAGER_ENABLE_METRICS', true),
    metricsPublic: bool('NQVM_METRICS_PUBLIC', false),
    allowedOrigins,
    importAllowCidrs,
    adminPassword,
    secretKey,
    logLevel,
    sessionTtlHours: num('NQVM_SESSION_TTL_HOURS', 12, 1, 24 * 90),
    tokenMaxTtlDays,
    maxUploadBytes: num('NQVM_MAX_UPLOAD_BYTES', 20 * 1024 ** 3, 1024, 2 ** 50),
    maxImportBytes: num('NQVM_MAX_IMPORT_BYTES', 20 * 1024 ** 3, 1024, 2 ** 50),
    metricsRetentionDays: num('NQVM_METRICS_RETENTION_DAYS', 30, 1, 3650),
    cpuOvercommit: num('NQVM_CPU_OVERCOMMIT', 4, 1, 64),
    memOvercommit: num('NQVM_MEM_OVERCOMMIT', 1, 0.1, 8),
    hostHeartbeatTimeoutS: num('NQVM_HOST_HEARTBEAT_TIMEOUT_S', 30, 3, 3600),
    reconcileIntervalMs: num('NQVM_RECONCILE_INTERVAL_MS', 5000, 200, 600_000),
    metricsSampleIntervalMs: num('NQVM_METRICS_SAMPLE_INTERVAL_S', 10, 0, 3600) * 1000,
    stopTimeoutS: num('NQVM_STOP_TIMEOUT_S', 20, 1, 600),
    network: { cidr, gateway, bridge, nat: bool('NQVM_NETWORK_NAT', false) },
    alertIntervalMs: num('NQVM_ALERT_INTERVAL_S', 10, 1, 3600) * 1000,
    webhooks: {
      maxAttempts: num('NQVM_WEBHOOK_MAX_ATTEMPTS', 10, 1, 100),
      backoffMs: num('NQVM_WEBHOOK_BACKOFF_MS', 5000, 10, 3_600_000),
      maxBackoffMs: num('NQVM_WEBHOOK_MAX_BACKOFF_S', 3600, 1, 86_400) * 1000,
      timeoutMs: num('NQVM_WEBHOOK_TIMEOUT_S', 10, 1, 120) * 1000,
    },
    functions: {
      poolSize: num('NQVM_FUNCTION_POOL_SIZE', 1, 0, 16),
      kernelImage: imageName('NQVM_FUNCTION_KERNEL', 'demo-kernel'),
      initrdImage: imageName('NQVM_FUNCTION_INITRD', 'demo-initrd'),
      outputLimitBytes: num('NQVM_FUNCTION_OUTPUT_LIMIT_BYTES', 1024 * 1024, 1024, 4 * 1024 * 1024),
      readyTimeoutMs: num('NQVM_FUNCTION_READY_TIMEOUT_S', 180, 5, 3600) * 1000,
    },
    rateLimits: {
      windowS: num('NQVM_RATE_LIMIT_WINDOW_S', 60, 1, 3600),
      perToken: num('NQVM_RATE_LIMIT_PER_TOKEN', 6000, 0, 10_000_000),
      perUser: num('NQVM_RATE_LIMIT_PER_USER', 6000, 0, 10_000_000),
      perAddress: num('NQVM_RATE_LIMIT_PER_ADDRESS', 600, 0, 10_000_000),
    },
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}
