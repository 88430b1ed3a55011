import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  baseUrl: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function ids(user: string): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', user]).toString().trim()),
    gid: Number(execFileSync('id', ['-g', user]).toString().trim()),
  };
}

/** A throwaway PostgreSQL cluster from Debian's binaries: initdb in a temp dir, a free port, removed on stop. */
export async function startPostgres(): Promise<TestPostgres> {
  if (!existsSync(join(PG_BIN, 'postgres'))) throw new Error(`PostgreSQL 15 not found in ${PG_BIN}`);
  const dir = mkdtempSync(join(tmpdir(), 'nqvm-pg-'));
  // PostgreSQL refuses to run as root; run it as the postgres user when we are root.
  const owner = process.getuid?.() === 0 ? ids('postgres') : undefined;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  execFileSync(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
    ...(owner ?? {}),
    stdio: 'ignore',
  });
  const port = await freePort();
  const child: ChildProcess = spawn(
    join(PG_BIN, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ],
    { ...(owner ?? {}), stdio: 'ignore' },
  );
  const baseUrl = `postgres://postgres@127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = new pg.Client({ connectionString: `${baseUrl}/postgres` });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => {});
      if (Date.now() > deadline || child.exitCode !== null) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    baseUrl,
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh, empty database on the shared test cluster. */
export async function createDatabase(baseUrl: string): Promise<string> {
  const name = `t_${Math.random().toString(36).slice(2, 10)}`;
  const c = new pg.Client({ connectionString: `${baseUrl}/postgres` });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return `${baseUrl}/${name}`;
}
