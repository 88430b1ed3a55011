import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import pg from 'pg';
import * as schema from './schema.ts';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** Runs plain SQL on one connection (migrations, advisory locks). */
export interface SqlSession {
  exec(sql: string): Promise<void>;
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Database {
  kind: 'postgres' | 'pglite';
  db: Db;
  /** Borrow one connection for work that must stay on it (advisory locks). */
  withSession<T>(fn: (s: SqlSession) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  /**
   * Calls `onNotify` for every NOTIFY on `channel` until the returned stop is called. `onLost` says the feed broke
   * and may have missed notifications; it is then stopped and the caller decides whether to listen again.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onLost: (err: Error) => void,
  ): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

// LISTEN takes an identifier, not a parameter: only plain names reach it.
function checkChannel(channel: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`invalid notification channel ${channel}`);
  return channel;
}

export async function openDatabase(opts: { url?: string; dataDir: string }): Promise<Database> {
  if (opts.url) return openPostgres(opts.url);
  const dir = join(opts.dataDir, 'pglite');
  mkdirSync(dir, { recursive: true });
  return openPglite(newPglite(dir));
}

/** An embedded database (in memory without a directory) with the extensions the migrations use (pg_trgm). */
export function newPglite(dir?: string): PGlite {
  return new PGlite(dir, { extensions: { pg_trgm } });
}

export function openPostgres(url: string): Database {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client's error would otherwise crash the process; the next query reports it instead.
  pool.on('error', () => {});
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  return {
    kind: 'postgres',
    db,
    async withSession(fn) {
      const client = await pool.connect();
      try {
        return await fn({
          exec: async (sql) => {
            await client.query(sql);
          },
          query: async <T>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as T[],
        });
      } finally {
        client.release();
      }
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async listen(channel, onNotify, onLost) {
      // A dedicated connection: a pooled one would be handed to other queries and lose its LISTEN.
      const client = new pg.Client({ connectionString: url });
      let stopped = false;
      const lost = (err: Error) => {
        if (stopped) return;
        stopped = true;
        client.end().catch(() => {});
        onLost(err);
      };
      client.on('error', lost);
      client.on('end', () => lost(new Error('the notification connection ended')));
      client.on('notification', (n) => {
        if (n.channel === channel) onNotify(n.payload ?? '');
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${checkChannel(channel)}`);
      } catch (err) {
        stopped = true;
        await client.end().catch(() => {});
        throw err;
      }
      return async () => {
        stopped = true;
        await client.end().catch(() => {});
      };
    },
    close: () => pool.end(),
  };
}

export function openPglite(client: PGlite): Database {
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    kind: 'pglite',
    db,
    withSession: (fn) =>
      fn({
        exec: async (sql) => {
          await client.exec(sql);
        },
        query: async <T>(sql: string, params?: unknown[]) => (await client.query<T>(sql, params)).rows,
      }),
    async ping() {
      await client.query('SELECT 1');
    },
    async listen(channel, onNotify) {
      // One process owns an embedded database: its notifications cannot be lost to a broken connection.
      return client.listen(checkChannel(channel), (payload) => onNotify(payload));
    },
    close: () => client.close(),
  };
}
