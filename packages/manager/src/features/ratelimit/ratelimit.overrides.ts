import { type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import type { LimitOverrides } from './ratelimit.service.ts';

async function rows<T>(db: Db, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

/**
 * The per-project rate-limit overrides (project_quotas), as they apply to callers: a token takes its project's
 * per-token override; a user the largest per-user override of the projects they are a member of. Read again at most
 * every `maxAgeMs` (and at once on this manager after a quota change), so counting a request costs no extra read.
 */
export class ProjectLimitOverrides implements LimitOverrides {
  private tokens = new Map<string, number>();
  private users = new Map<string, number>();
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly maxAgeMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  invalidate(): void {
    this.readAt = Number.NEGATIVE_INFINITY;
  }

  async fresh(): Promise<void> {
    if (this.now() - this.readAt < this.maxAgeMs) return;
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    await this.reading;
  }

  forToken(tokenId: string): number | undefined {
    return this.tokens.get(tokenId);
  }

  forUser(userId: string): number | undefined {
    return this.users.get(userId);
  }

  private async read(): Promise<void> {
    const startedAt = this.now();
    const [tokens, users] = await Promise.all([
      rows<{ id: string; n: number }>(
        this.db,
        sql`SELECT t.id, q.rate_limit_per_token AS n FROM api_tokens t
            JOIN project_quotas q ON q.project_id = t.project_id WHERE q.rate_limit_per_token IS NOT NULL`,
      ),
      rows<{ id: string; n: number }>(
        this.db,
        sql`SELECT m.user_id AS id, max(q.rate_limit_per_user) AS n FROM project_members m
            JOIN project_quotas q ON q.project_id = m.project_id WHERE q.rate_limit_per_user IS NOT NULL
            GROUP BY m.user_id`,
      ),
    ]);
    this.tokens = new Map(tokens.map((r) => [r.id, Number(r.n)]));
    this.users = new Map(users.map((r) => [r.id, Number(r.n)]));
    this.readAt = startedAt;
  }
}
