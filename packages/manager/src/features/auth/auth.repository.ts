import { and, asc, desc, eq, gt, isNull, lt, ne, or } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { apiTokens, type ProjectRole, projectMembers, sessions, users } from '../../db/schema.ts';

export type UserRow = typeof users.$inferSelect;
export type TokenRow = typeof apiTokens.$inferSelect;

export class AuthRepository {
  constructor(private readonly db: Db) {}

  async userByName(username: string): Promise<UserRow | undefined> {
    const [u] = await this.db.select().from(users).where(eq(users.username, username));
    return u;
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.db.update(users).set({ passwordHash }).where(eq(users.id, id));
  }

  async userById(id: string): Promise<UserRow | undefined> {
    const [u] = await this.db.select().from(users).where(eq(users.id, id));
    return u;
  }

  async recordLogin(id: string, at: Date): Promise<void> {
    await this.db.update(users).set({ lastLoginAt: at }).where(eq(users.id, id));
  }

  /** A changed password: every session of the user but `keep` ends (tokens stay). */
  async changePassword(id: string, passwordHash: string, keep: string | undefined): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.update(users).set({ passwordHash }).where(eq(users.id, id));
      await tx
        .delete(sessions)
        .where(keep ? and(eq(sessions.userId, id), ne(sessions.id, keep)) : eq(sessions.userId, id));
    });
  }

  async countUsers(): Promise<number> {
    return (await this.db.select({ id: users.id }).from(users).limit(1)).length;
  }

  /** Inserts unless the username exists (two managers starting together create one admin). */
  async insertUserIfAbsent(u: { username: string; passwordHash: string; role: 'admin' | 'user' }): Promise<boolean> {
    const rows = await this.db.insert(users).values(u).onConflictDoNothing({ target: users.username }).returning();
    return rows.length === 1;
  }

  /** A new password for a user, whose sessions end with it; false when there is no such user. */
  async setPassword(username: string, passwordHash: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [u] = await tx.update(users).set({ passwordHash }).where(eq(users.username, username)).returning();
      if (!u) return false;
      await tx.delete(sessions).where(eq(sessions.userId, u.id));
      return true;
    });
  }

  async insertSession(s: { userId: string; tokenHash: string; expiresAt: Date }): Promise<void> {
    await this.db.insert(sessions).values(s);
  }

  async sessionByHash(hash: string, now: Date) {
    const [row] = await this.db
      .select({ session: sessions, user: users })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.tokenHash, hash), gt(sessions.expiresAt, now), eq(users.disabled, false)));
    return row;
  }

  async deleteSession(id: string): Promise<void> {
    await this.db.delete(sessions).where(eq(sessions.id, id));
  }

  async deleteExpiredSessions(now: Date): Promise<void> {
    await this.db.delete(sessions).where(lt(sessions.expiresAt, now));
  }

  /** The projects a user is a member of, with its role in each. */
  async memberships(userId: string): Promise<Record<string, ProjectRole>> {
    const rows = await this.db
      .select({ projectId: projectMembers.projectId, role: projectMembers.role })
      .from(projectMembers)
      .where(eq(projectMembers.userId, userId))
      .orderBy(asc(projectMembers.createdAt));
    return Object.fromEntries(rows.map((r) => [r.projectId, r.role]));
  }

  async tokenByHash(hash: string, now: Date) {
    const [row] = await this.db
      .select({ token: apiTokens, user: users })
      .from(apiTokens)
      .innerJoin(users, eq(users.id, apiTokens.userId))
      .where(
        and(
          eq(apiTokens.tokenHash, hash),
          or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, now)),
          eq(users.disabled, false),
        ),
      );
    return row;
  }

  async touchToken(id: string, now: Date): Promise<void> {
    await this.db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, id));
  }

  async insertToken(t: typeof apiTokens.$inferInsert): Promise<TokenRow> {
    const [row] = await this.db.insert(apiTokens).values(t).returning();
    return row!;
  }

  listTokens(userId: string): Promise<TokenRow[]> {
    return this.db.select().from(apiTokens).where(eq(apiTokens.userId, userId)).orderBy(desc(apiTokens.createdAt));
  }

  async deleteToken(userId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .delete(apiTokens)
      .where(and(eq(apiTokens.id, id), eq(apiTokens.userId, userId)))
      .returning({ id: apiTokens.id });
    return rows.length === 1;
  }
}
