/**
 * Lists at scale, on PostgreSQL and on the embedded PGlite in one run:
 * - `GET /v1/vms?limit=100`, first page and cursor pages, with 10,000 VMs (NICs, tags, four hosts), and
 * - `GET /v1/events?limit=100` with 100,000 events,
 * each with 32 keep-alive clients against a bare Fastify route serving the same bytes from memory, in alternating
 * rounds; then creates accepted and placed (`start: false`, with a NIC) from 16 clients, and a count of address and
 * MAC collisions. Rows are seeded with SQL (test/support/seed.ts), shaped like real ones.
 * Run: `npx tsx bench/lists.ts` (BENCH_SECONDS per list and server, default 8; BENCH_DB=postgres|pglite for one;
 * BENCH_PARTS=lists|creates for one part).
 * The load runs in a worker thread so it does not share the servers' event loop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Fastify from 'fastify';
import { buildApp } from '../packages/manager/src/app.ts';
import { loadConfig } from '../packages/manager/src/config.ts';
import { type Database, newPglite, openPglite, openPostgres } from '../packages/manager/src/db/client.ts';
import { createDatabase, startPostgres, type TestPostgres } from '../packages/manager/test/support/postgres.ts';
import { seedEvents, seedVms } from '../packages/manager/test/support/seed.ts';

const VMS = 10_000;
const EVENTS = 100_000;
const PAGE = 100;
const LIST_CLIENTS = 32;
const CREATE_CLIENTS = 16;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const PARTS = process.env.BENCH_PARTS ?? 'lists,creates';

interface Round {
  lat: number[];
  errors: number;
  seconds: number;
}

interface Result {
  requests: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
}

function summarise(rounds: Round[]): Result {
  const lat = rounds.flatMap((r) => r.lat).sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? Number.NaN;
  return {
    requests: lat.length,
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    seconds: rounds.reduce((n, r) => n + r.seconds, 0),
    p50: q(0.5),
    p99: q(0.99),
  };
}

// Plain JS so the worker needs no TypeScript loader. GETs cycle through `paths`; with `create`, each request POSTs
// a new VM (a unique name per client and request) and expects 202.
const LOAD = `
const { workerData, parentPort } = require('node:worker_threads');
const http = require('node:http');
const { base, paths, token, clients, seconds, create, warmMs } = workerData;
const url = new URL(base);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const lat = [];
let errors = 0;
let seq = 0;
function call(path, body) {
  return new Promise((resolve) => {
    const headers = { authorization: 'Bearer ' + token };
    if (body) { headers['content-type'] = 'application/json'; headers['content-length'] = Buffer.byteLength(body); }
    const req = http.request({ host: url.hostname, port: url.port, path, agent, method: body ? 'POST' : 'GET', headers }, (res) => {
      if (res.statusCode !== (body ? 202 : 200)) errors++;
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => { errors++; resolve(); });
    req.end(body);
  });
}
async function client(i, until, record) {
  let n = i;
  while (performance.now() < until) {
    const t0 = performance.now();
    if (create) await call('/v1/vms', JSON.stringify({ ...create, name: create.name + '-' + i + '-' + seq++ }));
    else await call(paths[n++ % paths.length]);
    if (record) lat.push(performance.now() - t0);
  }
}
(async () => {
  const warm = performance.now() + warmMs;
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i, warm, false)));
  errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i, end, true)));
  const took = (performance.now() - start) / 1000;
  parentPort.postMessage({ lat, errors, seconds: took });
  agent.destroy();
})();
`;

function load(
  base: string,
  token: string,
  opts: { paths?: string[]; clients: number; seconds: number; create?: object; warmMs?: number },
): Promise<Round> {
  return new Promise((resolve, reject) => {
    const w = new Worker(LOAD, {
      eval: true,
      workerData: {
        base,
        token,
        paths: opts.paths ?? [],
        clients: opts.clients,
        seconds: opts.seconds,
        create: opts.create,
        warmMs: opts.warmMs ?? 1000,
      },
    });
    w.once('message', (r: Round) => {
      void w.terminate();
      resolve(r);
    });
    w.once('error', reject);
  });
}

const row = (name: string, r: Result) =>
  `${name.padEnd(30)} ${(r.requests / r.seconds).toFixed(0).padStart(8)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(9)} ${String(r.errors).padStart(7)}`;
const header = `${'server'.padEnd(30)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'errors'.padStart(7)}`;

/** Walks every page once (the paths, and the bytes the bare route serves), then loads both servers in turns. */
async function listBench(name: string, managerBase: string, token: string, first: string): Promise<string[]> {
  const pages = new Map<string, string>();
  let path: string | null = first;
  while (path) {
    // A kept-alive connection left idle through a long seed may be closed by the server as it is reused: retry once.
    const get = () => fetch(managerBase + path, { headers: { authorization: `Bearer ${token}` } });
    const res = await get().catch(get);
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
    pages.set(path, text);
    const next = (JSON.parse(text) as { next_cursor: string | null }).next_cursor;
    path = next ? `${first}&cursor=${encodeURIComponent(next)}` : null;
  }
  const bare = Fastify({ logger: false });
  bare.get(first.split('?')[0]!, async (req, reply) =>
    reply.type('application/json; charset=utf-8').send(pages.get(req.url)),
  );
  const bareBase = await bare.listen({ host: '127.0.0.1', port: 0 });
  const paths = [...pages.keys()];
  const nqvmRounds: Round[] = [];
  const bareRounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    nqvmRounds.push(await load(managerBase, token, { paths, clients: LIST_CLIENTS, seconds: SECONDS / ROUNDS }));
    bareRounds.push(await load(bareBase, token, { paths, clients: LIST_CLIENTS, seconds: SECONDS / ROUNDS }));
  }
  await bare.close();
  const nqvm = summarise(nqvmRounds);
  const baseline = summarise(bareRounds);
  const ratio = nqvm.requests / nqvm.seconds / (baseline.requests / baseline.seconds);
  const bytes = [...pages.values()].reduce((n, p) => n + p.length, 0) / pages.size;
  return [
    `${name}: ${pages.size} pages of ${PAGE} (first page and cursor pages, ${(bytes / 1024).toFixed(0)} KiB each), ${LIST_CLIENTS} clients`,
    header,
    row(`nqvm ${first.split('?')[0]}`, nqvm),
    row('bare Fastify (memory)', baseline),
    `throughput ratio nqvm/bare: ${ratio.toFixed(2)}   p99 ${nqvm.p99.toFixed(1)} ms   (target ratio >= 0.5, p99 <= 50 ms; goal >= 0.8, <= 20 ms)`,
  ];
}

async function run(kind: 'postgres' | 'pglite', pgServer?: TestPostgres): Promise<string[]> {
  const database: Database =
    kind === 'pglite' ? openPglite(newPglite()) : openPostgres(await createDatabase(pgServer!.baseUrl));
  const dataDir = mkdtempSync(join(tmpdir(), 'nqvm-bench-'));
  const config = loadConfig({
    NQVM_DATA_DIR: dataDir,
    NQVM_ADMIN_PASSWORD: 'bench-admin-password',
    NQVM_LOG_LEVEL: 'silent',
    // Measured is list serving at full load, far past any default rate limit; the limiter still counts every request.
    NQVM_RATE_LIMIT_PER_TOKEN: '10000000',
    NQVM_RATE_LIMIT_PER_USER: '10000000',
    NQVM_NETWORK_CIDR: '10.64.0.0/16',
    NQVM_HOST_HEARTBEAT_TIMEOUT_S: '3600',
    MANAGER_ENABLE_METRICS: 'false',
    MANAGER_RECONCILER_DISABLED: 'true',
  });
  const { app } = await buildApp(config, { database, logger: false, metricsSampleIntervalMs: 0 });
  const managerBase = await app.listen({ host: '127.0.0.1', port: 0 });
  const post = async (path: string, body: unknown, auth?: string) => {
    const res = await fetch(managerBase + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, string>;
  };
  const { token } = await post('/v1/auth/login', { username: 'admin', password: 'bench-admin-password' });
  const hosts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const { token: join_token } = await post('/v1/join-tokens', {}, token);
    const reg = await post('/v1/hosts/register', { join_token, name: `host-${i}`, addr: 'http://127.0.0.1:9' });
    await post(
      `/v1/hosts/${reg.id}/heartbeat`,
      {
        capacity: { cpus: 100_000, memory_mib: 100_000_000, disk_free_bytes: 1e12, disk_total_bytes: 2e12 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
        vms: [],
      },
      reg.secret,
    );
    hosts.push(reg.id!);
  }
  const [kernel, rootfs] = await database.withSession((s) =>
    s.query<{ id: string }>(
      `INSERT INTO images (name, kind, description, state, sha256, size_bytes, bytes_done, bytes_total, source)
       VALUES ('bench-kernel', 'kernel', '', 'ready', repeat('a', 64), 1048576, 1048576, 1048576, '{"type":"upload"}'),
              ('bench-rootfs', 'rootfs', '', 'ready', repeat('b', 64), 1048576, 1048576, 1048576, '{"type":"upload"}')
       RETURNING id`,
    ),
  );
  const t0 = performance.now();
  await seedVms(database, { count: VMS, hosts, kernel: kernel!.id, rootfs: rootfs!.id, network: 'default' });
  const vmIds = await database.withSession((s) => s.query<{ id: string }>('SELECT id::text AS id FROM vms LIMIT 500'));
  await seedEvents(
    database,
    EVENTS,
    vmIds.map((v) => v.id),
  );
  await database.withSession((s) => s.exec('ANALYZE'));
  const seeded = ((performance.now() - t0) / 1000).toFixed(1);

  const out = [`== database ${kind}: ${VMS} VMs and ${EVENTS} events seeded with SQL in ${seeded} s`];
  if (PARTS.includes('lists')) {
    out.push(...(await listBench('VM list', managerBase, token!, `/v1/vms?limit=${PAGE}`)));
    out.push(...(await listBench('event list', managerBase, token!, `/v1/events?limit=${PAGE}`)));
  }
  if (PARTS.includes('creates'))
    out.push(...(await createBench(database, managerBase, token!, kernel!.id, rootfs!.id)));
  await app.close();
  await database.close();
  rmSync(dataDir, { recursive: true, force: true });
  return out;
}

async function createBench(
  database: Database,
  managerBase: string,
  token: string,
  kernel: string,
  rootfs: string,
): Promise<string[]> {
  const out: string[] = [];

  // Process CPU (the manager and the load worker): a figure the machine's other load does not change much.
  const cpu0 = process.cpuUsage();
  const creates = summarise([
    await load(managerBase, token, {
      clients: CREATE_CLIENTS,
      seconds: SECONDS,
      warmMs: 500,
      create: {
        name: 'bench',
        vcpu: 1,
        mem_mib: 128,
        start: false,
        kernel_image_id: kernel,
        rootfs_image_id: rootfs,
      },
    }),
  ]);
  const cpu = process.cpuUsage(cpu0);
  const [check] = await database.withSession((s) =>
    s.query<{ vms: number; nics: number; ip_dup: number; mac_dup: number; unplaced: number }>(
      `SELECT (SELECT count(*) FROM vms)::int AS vms, (SELECT count(*) FROM vm_nics)::int AS nics,
         (SELECT count(*) - count(DISTINCT (network, ip)) FROM vm_nics)::int AS ip_dup,
         (SELECT count(*) - count(DISTINCT mac) FROM vm_nics)::int AS mac_dup,
         (SELECT count(*) FROM vms v WHERE v.host_id IS NULL
            OR NOT EXISTS (SELECT 1 FROM vm_nics n WHERE n.vm_id = v.id))::int AS unplaced`,
    ),
  );
  out.push(
    `creates (start:false, with a NIC): ${CREATE_CLIENTS} clients, ${SECONDS} s on top of the ${VMS} VMs`,
    `  ${(creates.requests / creates.seconds).toFixed(0)} VMs/s accepted and placed, p50 ${creates.p50.toFixed(1)} ms, p99 ${creates.p99.toFixed(1)} ms, ${creates.errors} errors (target >= 150 VMs/s)`,
    `  ${((cpu.user + cpu.system) / 1000 / Math.max(1, creates.requests)).toFixed(1)} ms of process CPU per create (manager and load worker)`,
    `  after: ${check!.vms} VMs, ${check!.nics} NICs, ${check!.ip_dup} address collisions, ${check!.mac_dup} MAC collisions, ${check!.unplaced} VMs without host or NIC`,
  );
  return out;
}

async function main() {
  const only = process.env.BENCH_DB;
  const kinds = (['postgres', 'pglite'] as const).filter((k) => !only || only === k);
  const pgServer = kinds.includes('postgres') ? await startPostgres() : undefined;
  process.stdout.write(`lists at scale: ${SECONDS} s per list and server in ${ROUNDS} alternating rounds\n`);
  try {
    for (const kind of kinds) process.stdout.write(`${(await run(kind, pgServer)).join('\n')}\n`);
  } finally {
    await pgServer?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
