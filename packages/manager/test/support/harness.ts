import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { inject } from 'vitest';
import { type BuiltApp, buildApp } from '../../src/app.ts';
import { loadConfig, type ManagerConfig } from '../../src/config.ts';
import { type Database, newPglite, openPglite, openPostgres } from '../../src/db/client.ts';
import { createDatabase } from './postgres.ts';

export type DbKind = 'postgres' | 'pglite';
export const DB_KINDS: DbKind[] = ['postgres', 'pglite'];
export const ADMIN_PASSWORD = 'admin-password-for-tests';

export interface TestApp {
  built: BuiltApp;
  app: FastifyInstance;
  config: ManagerConfig;
  database: Database;
  dataDir: string;
  /** A session token for the admin user. */
  token: string;
  request(opts: InjectOptions): Promise<LightMyRequestResponse>;
  /** A fresh host join token (made by the admin through the API): it joins one host, once. */
  joinToken(): Promise<string>;
  close(): Promise<void>;
}

export async function openTestDatabase(kind: DbKind): Promise<Database> {
  if (kind === 'pglite') return openPglite(newPglite());
  return openPostgres(await createDatabase(inject('pgBaseUrl')));
}

/** scrypt at 2^12 in tests: the production cost (2^17, about 0.3 s a hash) would dominate every suite. */
export const TEST_PASSWORD_LOG2N = 12;

/** A manager on a fresh database (real PostgreSQL or in-memory PGlite) with a temp data dir. */
export async function startTestApp(
  kind: DbKind,
  env: Record<string, string> = {},
  /** A database another test app already uses (several managers on one database); closed by its opener. */
  shared?: Database,
  /** plainHttpAgents: stand-in agents serve plain HTTP (default true); false calls agents over mutual TLS only. */
  opts: { passwordLog2N?: number; plainHttpAgents?: boolean } = {},
): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nqvm-mgr-'));
  const config = loadConfig({
    NQVM_DATA_DIR: dataDir,
    NQVM_ADMIN_PASSWORD: ADMIN_PASSWORD,
    NQVM_LOG_LEVEL: 'silent',
    ...env,
  });
  const database = shared ?? (await openTestDatabase(kind));
  const built = await buildApp(config, {
    database,
    logger: false,
    passwordLog2N: opts.passwordLog2N ?? TEST_PASSWORD_LOG2N,
    plainHttpAgents: opts.plainHttpAgents ?? true,
  });
  const login = await built.app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { username: 'admin', password: ADMIN_PASSWORD },
  });
  const token = (login.json() as { token: string }).token;
  const request = (opts: InjectOptions) =>
    built.app.inject({ ...opts, headers: { authorization: `Bearer ${token}`, ...(opts.headers ?? {}) } });
  return {
    built,
    app: built.app,
    config,
    database,
    dataDir,
    token,
    request,
    async joinToken() {
      const res = await request({ method: 'POST', url: '/v1/join-tokens', payload: {} });
      if (res.statusCode !== 201) throw new Error(`creating a join token: ${res.statusCode} ${res.body}`);
      return (res.json() as { token: string }).token;
    },
    async close() {
      await built.app.close();
      if (!shared) await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
