import type { CreatedJoinToken, CreateJoinTokenRequest, JoinToken } from '@nqvm/api';
import { and, desc, eq, getTableColumns, gt, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { decodeCursor, encodeCursor, isoUs, type Key } from '../../db/keyset.ts';
import { hostJoinTokens } from '../../db/schema.ts';
import { DomainError, NotFound } from '../../domain/errors.ts';
import { hashToken, newToken } from '../../security/tokens.ts';

type Row = typeof hostJoinTokens.$inferSelect;

const JOIN_TOKEN_KEYS: Key[] = [
  { column: 'created_at', kind: 'timestamptz' },
  { column: 'id', kind: 'uuid' },
];

export const DEFAULT_JOIN_TOKEN_TTL_S = 3600;
const FIELD = 'body.join_token';

/**
 * Host join tokens: an admin makes one, it is shown once and stored as its SHA-256; it expires, and one host
 * joins with it, once. Taking a token is a compare-and-set, so two agents racing with one token cannot both join.
 */
export class JoinTokens {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async create(req: CreateJoinTokenRequest, createdBy: string): Promise<CreatedJoinToken> {
    const token = newToken('join');
    const now = this.now();
    const [row] = await this.db
      .insert(hostJoinTokens)
      .values({
        tokenHash: hashToken(token),
        description: req.description ?? '',
        createdBy,
        createdAt: now,
        expiresAt: new Date(now.getTime() + (req.ttl_s ?? DEFAULT_JOIN_TOKEN_TTL_S) * 1000),
      })
      .returning();
    if (!row) throw new Error('join token insert returned no row');
    return { ...this.toApi(row), token };
  }

  /**
   * Newest first, a keyset page in one query through (created_at, id); the cursor is the last item's creation time
   * (with microseconds) and id.
   */
  async list(limit = 50, cursor?: string): Promise<{ items: JoinToken[]; next_cursor: string | null }> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor, JOIN_TOKEN_KEYS);
    const t = hostJoinTokens;
    const rows = await this.db
      .select({ ...getTableColumns(t), key: sql<string>`${isoUs(sql`${t.createdAt}`)}` })
      .from(t)
      .where(after ? sql`(${t.createdAt}, ${t.id}) < (${after[0]}::timestamptz, ${after[1]}::uuid)` : undefined)
      .orderBy(desc(t.createdAt), desc(t.id))
      .limit(limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(({ key: _, ...r }) => this.toApi(r)),
      next_cursor: rows.length > limit && last ? encodeCursor([last.key, last.id]) : null,
    };
  }

  async delete(id: string): Promise<void> {
    const gone = await this.db.delete(hostJoinTokens).where(eq(hostJoinTokens.id, id)).returning();
    if (gone.length === 0) throw new NotFound('join_token', id);
  }

  /** Removes a token nobody joined with (a token made for one local agent that turned out to have an identity). */
  async revokeUnused(id: string): Promise<void> {
    await this.db.delete(hostJoinTokens).where(and(eq(hostJoinTokens.id, id), isNull(hostJoinTokens.usedAt)));
  }

  /** Takes the token for one registration; the caller gives it back (`release`) when the registration fails. */
  async take(token: string): Promise<string> {
    const hash = hashToken(token);
    const now = this.now();
    const [taken] = await this.db
      .update(hostJoinTokens)
      .set({ usedAt: now })
      .where(and(eq(hostJoinTokens.tokenHash, hash), isNull(hostJoinTokens.usedAt), gt(hostJoinTokens.expiresAt, now)))
      .returning({ id: hostJoinTokens.id });
    if (taken) return taken.id;
    const [row] = await this.db.select().from(hostJoinTokens).where(eq(hostJoinTokens.tokenHash, hash));
    // 401 with a code saying which: unknown (or revoked), used, expired.
    if (!row) throw new DomainError(401, 'invalid_join_token', 'unknown join token', FIELD);
    if (row.usedAt)
      throw new DomainError(
        401,
        'join_token_used',
        'this join token was used already; an admin creates a new one (nqvm join-tokens create)',
        FIELD,
      );
    throw new DomainError(
      401,
      'join_token_expired',
      `this join token expired at ${row.expiresAt.toISOString()}; an admin creates a new one (nqvm join-tokens create)`,
      FIELD,
    );
  }

  async release(id: string): Promise<void> {
    await this.db.update(hostJoinTokens).set({ usedAt: null }).where(eq(hostJoinTokens.id, id));
  }

  async joined(id: string, hostId: string): Promise<void> {
    await this.db.update(hostJoinTokens).set({ hostId }).where(eq(hostJoinTokens.id, id));
  }

  private toApi(r: Row): JoinToken {
    const state = r.usedAt ? 'used' : r.expiresAt.getTime() <= this.now().getTime() ? 'expired' : 'valid';
    return {
      id: r.id,
      description: r.description,
      created_by: r.createdBy,
      created_at: r.createdAt.toISOString(),
      expires_at: r.expiresAt.toISOString(),
      used_at: r.usedAt?.toISOString() ?? null,
      host_id: r.hostId,
      state,
    };
  }
}
