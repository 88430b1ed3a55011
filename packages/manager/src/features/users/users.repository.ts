import { and, asc, eq, gt } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { DEFAULT_PROJECT_ID, projectMembers, sessions, users } from '../../db/schema.ts';

export type UserRow = typeof users.$inferSelect;
export type UserChange = { role?: 'admin' | 'user'; disabled?: boolean };

/** What a change would leave: whether `id` stays an active admin after it (deleted: no). */
type After = (row: UserRow) => boolean;

export class LastAdmin extends Error {}

export class UsersRepository {
  constructor(private readonly db: Db) {}

  list(limit: number, after?: string): Promise<UserRow[]> {
    return this.db
      .select()
      .from(users)
      .where(after ? gt(users.username, after) : undefined)
      .orderBy(asc(users.username))
      .limit(limit);
  }

  async get(id: string): Promise<UserRow | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.id, id));
    return row;
  }

  /**
   * The new user, or undefined when the username is taken. A user starts as a member of the `default` project, as
   * every user that existed before projects did (migration 0020): an operator, an admin its owner.
   */
  async insert(u: { username: string; passwordHash: string; role: 'admin' | 'user' }): Promise<UserRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.insert(users).values(u).onConflictDoNothing({ target: users.username }).returning();
      if (row)
        await tx
          .insert(projectMembers)
          .values({ projectId: DEFAULT_PROJECT_ID, userId: row.id, role: u.role === 'admin' ? 'owner' : 'operator' });
      return row;
    });
  }

  /**
   * Changes a user; disabling ends their sessions. Throws LastAdmin when no active admin would be left. The active
   * admins are locked first, so two parallel changes (demote A, disable B) cannot both pass the check.
   */
  update(id: string, change: UserChange): Promise<UserRow | undefined> {
    return this.guarded(
      id,
      (row) => (change.role ?? row.role) === 'admin' && !(change.disabled ?? row.disabled),
      async (tx) => {
        const [row] = await tx.update(users).set(change).where(eq(users.id, id)).returning();
        if (row && change.disabled) await tx.delete(sessions).where(eq(sessions.userId, id));
        return row;
      },
    );
  }

  /** Deletes a user with their sessions and tokens (foreign keys cascade); false when there is none. */
  async delete(id: string): Promise<boolean> {
    const row = await this.guarded(
      id,
      () => false,
      async (tx) => (await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id }))[0],
    );
    return row !== undefined;
  }

  private guarded<T>(id: string, staysAdmin: After, apply: (tx: Db) => Promise<T | undefined>): Promise<T | undefined> {
    return this.db.transaction(async (tx) => {
      const admins = await tx
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.role, 'admin'), eq(users.disabled, false)))
        .for('update');
      const [row] = await tx.select().from(users).where(eq(users.id, id));
      if (!row) return undefined;
      const others = admins.filter((a) => a.id !== id).length;
      if (others === 0 && !staysAdmin(row) && admins.some((a) => a.id === id)) throw new LastAdmin();
      return apply(tx as unknown as Db);
    });
  }
}
