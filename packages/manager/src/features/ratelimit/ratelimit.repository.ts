import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';

const textArray = (v: string[]) =>
  sql`ARRAY[${sql.join(
    v.map((x) => sql`${x}`),
    sql`, `,
  )}]::text[]`;
const intArray = (v: number[]) =>
  sql`ARRAY[${sql.join(
    v.map((x) => sql`${x}`),
    sql`, `,
  )}]::int[]`;

export interface Count {
  key: string;
  hits: number;
  /** Seconds until this key's window ends (at least 1). */
  resetS: number;
}

/** What the limiter needs of the counters; an interface so its unit tests can pass a fake. */
export interface CounterStore {
  hit(keys: { key: string; amount: number }[], windowS: number): Promise<Count[]>;
  prune(windowS: number): Promise<void>;
}

/** Fixed-window counters in the database: every manager counts into the same rows, windows by the database clock. */
export class RateLimitRepository implements CounterStore {
  constructor(private readonly db: Db) {}

  /** Adds `amount` to each key's count in the current window, in one statement; returns the counts after it. */
  async hit(keys: { key: string; amount: number }[], windowS: number): Promise<Count[]> {
    const res = (await this.db.execute(sql`
      INSERT INTO rate_limit_counters AS c (key, window_start, hits)
      SELECT x.k, to_timestamp(floor(extract(epoch FROM now()) / ${windowS}) * ${windowS}), x.n
        FROM unnest(${textArray(keys.map((k) => k.key))}, ${intArray(keys.map((k) => k.amount))}) AS x(k, n)
      ON CONFLICT (key, window_start) DO UPDATE SET hits = c.hits + excluded.hits
      RETURNING c.key, c.hits,
        greatest(1, ceil(extract(epoch FROM c.window_start) + ${windowS} - extract(epoch FROM now())))::int AS reset_s
    `)) as unknown as { rows: { key: string; hits: number; reset_s: number }[] };
    return res.rows.map((r) => ({ key: r.key, hits: Number(r.hits), resetS: Number(r.reset_s) }));
  }

  /** Drops windows that have ended. */
  async prune(windowS: number): Promise<void> {
    await this.db.execute(
      sql`DELETE FROM rate_limit_counters WHERE window_start < now() - make_interval(secs => ${windowS * 2})`,
    );
  }
}
