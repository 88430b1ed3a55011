import { createReadStream, statSync } from 'node:fs';
import { ApiError, api, NqvmClient, type RouteDef } from '@nqvm/api';
import { type CliConfig, saveCliConfig } from './config.ts';
import { COLUMNS, table } from './format.ts';

export class UsageError extends Error {}

export interface Io {
  out(s: string): void;
  /** Errors and diagnostics: stderr, so `nqvm … --json | jq` never parses a failure. */
  err(s: string): void;
  readStdin(): Promise<string>;
}

type Flags = Record<string, string | boolean>;

const GROUP_ALIASES: Record<string, keyof typeof api> = {
  vm: 'vms',
  vms: 'vms',
  image: 'images',
  images: 'images',
  host: 'hosts',
  hosts: 'hosts',
  template: 'templates',
  templates: 'templates',
  event: 'events',
  events: 'events',
  token: 'tokens' as keyof typeof api,
  tokens: 'tokens' as keyof typeof api,
};

/** `tokens` live in the auth group of the route table; everything else maps one to one. */
function routesOf(group: string): Record<string, RouteDef> | undefined {
  if (group === 'tokens')
    return { list: api.auth.listTokens, create: api.auth.createToken, delete: api.auth.deleteToken } as Record<
      string,
      RouteDef
    >;
  const g = GROUP_ALIASES[group];
  return g ? (api[g] as unknown as Record<string, RouteDef>) : undefined;
}

function coerce(v: string | boolean): unknown {
  if (typeof v === 'boolean') return v;
  if (/^-?\d+$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  if (/^[[{]/.test(v)) return JSON.parse(v);
  return v;
}

export function helpText(): string {
  const groups = ['vms', 'images', 'hosts', 'templates', 'events', 'tokens'];
  const lines = [
    'nqvm — run and manage microVMs',
    '',
    'Usage:',
    '  nqvm up [--data-dir DIR] [--bind HOST:PORT]   start manager + local agent + demo images (root)',
    '  nqvm images build-demo [--out DIR]             build the demo kernel/initrd/rootfs from Debian packages',
    '  nqvm login [--url URL] --username NAME         read the password from stdin, save a session token',
    '  nqvm <resource> <operation> [ID] [--field value ...] [--json]',
    '',
    'Resources and operations:',
  ];
  for (const g of groups) lines.push(`  ${g.padEnd(10)} ${Object.keys(routesOf(g) ?? {}).join(', ')}`);
  lines.push('', 'Body fields are flags (--vcpu 2 --tags \'["a"]\'), or --body JSON. Env: NQVM_URL, NQVM_TOKEN.');
  return lines.join('\n');
}

export async function runApiCommand(
  cfg: CliConfig,
  io: Io,
  group: string,
  op: string,
  positional: string[],
  flags: Flags,
) {
  const routes = routesOf(group);
  if (!routes) throw new UsageError(`unknown resource "${group}"`);
  const def = routes[op];
  if (!def) throw new UsageError(`unknown operation "${op}" for ${group}; try: ${Object.keys(routes).join(', ')}`);
  const client = new NqvmClient({ baseUrl: cfg.url, token: cfg.token });
  const { json, body: bodyJson, file, ...rest } = flags;
  const params = def.path.includes(':id') ? { id: positional[0] ?? rest.id } : undefined;
  if (params && !params.id) throw new UsageError(`${group} ${op} needs an ID`);
  delete rest.id;
  const fields = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k.replace(/-/g, '_'), coerce(v)]));
  let result: unknown;
  if (def.rawBody) {
    if (typeof file !== 'string') throw new UsageError(`${group} ${op} needs --file PATH`);
    const url = client.url(def, undefined as never, fields as never);
    const res = await fetch(url, {
      method: def.method,
      headers: {
        'content-type': 'application/octet-stream',
        ...(cfg.token ? { authorization: `Bearer ${cfg.token}` } : {}),
        'content-length': String(statSync(file).size),
      },
      body: createReadStream(file) as never,
      duplex: 'half',
    } as RequestInit);
    result = await res.json();
    if (!res.ok) throw new ApiError(res.status, result as never);
  } else {
    const hasBody = !!def.body;
    const body = hasBody ? (typeof bodyJson === 'string' ? JSON.parse(bodyJson) : fields) : undefined;
    const query = !hasBody && def.query ? fields : undefined;
    result = await client.call(def, { params, query, body } as never);
  }
  if (json || result === undefined) {
    io.out(result === undefined ? '' : JSON.stringify(result, null, 2));
    return;
  }
  const items = (result as { items?: Record<string, unknown>[] }).items;
  if (Array.isArray(items)) io.out(table(items, COLUMNS[group.replace(/s?$/, 's')] ?? Object.keys(items[0] ?? {})));
  else io.out(JSON.stringify(result, null, 2));
}

export async function login(cfg: CliConfig, io: Io, flags: Flags): Promise<void> {
  const url = typeof flags.url === 'string' ? flags.url : cfg.url;
  const username = typeof flags.username === 'string' ? flags.username : 'admin';
  const password = (await io.readStdin()).trim();
  if (!password) throw new UsageError('give the password on stdin');
  const res = await new NqvmClient({ baseUrl: url }).call(api.auth.login, { body: { username, password } });
  saveCliConfig(cfg.file, { url, token: res.token });
  io.out(`logged in to ${url} as ${username} (session until ${res.expires_at})`);
}
