/**
 * Lists 10,000 images, 100 per page, with 32 concurrent keep-alive clients for 10 s against the manager,
 * and against a bare Fastify route serving the same pages from memory, in alternating rounds of the same run.
 * Run: `npx tsx bench/images-list.ts` (BENCH_DB=pglite for the embedded database; default a temp PostgreSQL).
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

const ROWS = 10_000;
const PAGE = 100;
const CLIENTS = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

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

// Rounds alternate between the two servers so both see the same background noise.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);

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

// Plain JS so the worker needs no TypeScript loader.
const LOAD = `
const { workerData, parentPort } = require('node:worker_threads');
const http = require('node:http');
const { base, paths, token, clients, seconds } = workerData;
const url = new URL(base);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const lat = [];
let errors = 0;
function get(path) {
  return new Promise((resolve) => {
    const req = http.get({ host: url.hostname, port: url.port, path, agent, headers: { authorization: 'Bearer ' + token } }, (res) => {
      if (res.statusCode !== 200) errors++;
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => { errors++; resolve(); });
  });
}
async function client(i, until, record) {
  let n = i;
  while (performance.now() < until) {
    const t0 = performance.now();
    await get(paths[n++ % paths.length]);
    if (record) lat.push(performance.now() - t0);
  }
}
(async () => {
  const warm = performance.now() + 1000;
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

function load(base: string, paths: string[], token: string): Promise<Round> {
  return new Promise((resolve, reject) => {
    const seconds = SECONDS / ROUNDS;
    const w = new Worker(LOAD, { eval: true, workerData: { base, paths, token, clients: CLIENTS, seconds } });
    w.once('message', (r: Round) => {
      void w.terminate();
      resolve(r);
    });
    w.once('error', reject);
  });
}

async function main() {
  const usePglite = process.env.BENCH_DB === 'pglite';
  let pgServer: TestPostgres | undefined;
  let database: Database;
  if (usePglite) database = openPglite(newPglite());
  else {
    pgServer = await startPostgres();
    database = openPostgres(await createDatabase(pgServer.baseUrl));
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'nqvm-bench-'));
  const config = loadConfig({
    NQVM_DATA_DIR: dataDir,
    NQVM_ADMIN_PASSWORD: 'bench-admin-password',
    NQVM_LOG_LEVEL: 'silent',
    // Measured is list serving at full load, far past any default rate limit; the limiter still counts every request.
    NQVM_RATE_LIMIT_PER_TOKEN: '10000000',
    NQVM_RATE_LIMIT_PER_USER: '10000000',
    MANAGER_ENABLE_METRICS: 'false',
  });
  const { app } = await buildApp(config, { database, logger: false });
  await database.withSession((s) =>
    s.exec(`INSERT INTO images (name, kind, description, state, sha256, size_bytes, bytes_done, bytes_total, source)
      SELECT 'image-' || lpad(i::text, 5, '0'), (ARRAY['kernel','initrd','rootfs','volume'])[1 + i % 4],
             'benchmark image ' || i, 'ready', encode(sha256(i::text::bytea), 'hex'), 1048576::bigint * i, 1048576::bigint * i,
             1048576::bigint * i, '{"type":"upload"}'::jsonb
      FROM generate_series(1, ${ROWS}) AS i`),
  );
  const managerBase = await app.listen({ host: '127.0.0.1', port: 0 });
  const login = await fetch(`${managerBase}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'bench-admin-password' }),
  });
  const { token } = (await login.json()) as { token: string };

  // Walk every page once: the request paths for both servers, and the bodies the bare route serves.
  const pages = new Map<string, string>();
  let cursor: string | null = null;
  do {
    const path: string = `/v1/images?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await fetch(managerBase + path, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    pages.set(path, text);
    cursor = (JSON.parse(text) as { next_cursor: string | null }).next_cursor;
  } while (cursor);
  if (pages.size !== ROWS / PAGE) throw new Error(`expected ${ROWS / PAGE} pages, walked ${pages.size}`);

  const bare = Fastify({ logger: false });
  bare.get('/v1/images', async (req, reply) => reply.type('application/json').send(pages.get(req.url)));
  const bareBase = await bare.listen({ host: '127.0.0.1', port: 0 });

  const paths = [...pages.keys()];
  const nqvmRounds: Round[] = [];
  const bareRounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    nqvmRounds.push(await load(managerBase, paths, token));
    bareRounds.push(await load(bareBase, paths, token));
  }
  const nqvm = summarise(nqvmRounds);
  const baseline = summarise(bareRounds);

  const row = (name: string, r: Result) =>
    `${name.padEnd(24)} ${(r.requests / r.seconds).toFixed(0).padStart(8)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(9)} ${String(r.errors).padStart(7)}`;
  const out = [
    `images list: ${ROWS} rows, ${PAGE} per page, ${CLIENTS} clients, ${SECONDS} s each in ${ROUNDS} alternating rounds, database ${database.kind}`,
    'nqvm renders each page in one database query (keyset on the name index), no memory cache',
    `${'server'.padEnd(24)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'errors'.padStart(7)}`,
    row('nqvm GET /v1/images', nqvm),
    row('bare Fastify (memory)', baseline),
    `throughput ratio nqvm/bare: ${((nqvm.requests / nqvm.seconds / (baseline.requests / baseline.seconds)) * 100).toFixed(1)}%`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);

  await bare.close();
  await app.close();
  await database.close();
  await pgServer?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
