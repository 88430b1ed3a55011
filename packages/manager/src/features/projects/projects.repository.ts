import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { images, type ProjectRole, projectMembers, projects, templates, users, vms } from '../../db/schema.ts';
import { snapshots } from '../snapshots/snapshots.table.ts';

export type ProjectRow = typeof projects.$inferSelect;

export class ProjectsRepository {
  constructor(private readonly db: Db) {}

  async get(id: string): Promise<ProjectRow | undefined> {
    const [row] = await this.db.select().from(projects).where(eq(projects.id, id));
    return row;
  }

  /** By name after `afterName`; only `ids` when given (a non-admin's memberships). */
  list(limit: number, afterName: string | undefined, ids: string[] | null): Promise<ProjectRow[]> {
    const w = [
      afterName !== undefined ? gt(projects.name, afterName) : undefined,
      ids ? inArray(projects.id, ids.length ? ids : ['00000000-0000-0000-0000-000000000000']) : undefined,
    ];
    return this.db
      .select()
      .from(projects)
      .where(and(...w))
      .orderBy(asc(projects.name))
      .limit(limit);
  }

  async insert(v: { name: string; description: string }): Promise<ProjectRow> {
    const [row] = await this.db.insert(projects).values(v).returning();
    return row!;
  }

  async update(id: string, patch: { name?: string; description?: string }): Promise<ProjectRow | undefined> {
    const [row] = await this.db.update(projects).set(patch).where(eq(projects.id, id)).returning();
    return row;
  }

  /** What the project still holds, by kind (VMs, images, templates, snapshots). */
  async holdings(id: string): Promise<Record<string, number>> {
    const count = async (t: typeof vms | typeof images | typeof templates | typeof snapshots) =>
      (await this.db.select({ n: sql<number>`count(*)::int` }).from(t).where(eq(t.projectId, id)))[0]?.n ?? 0;
    const [v, i, t, s] = await Promise.all([count(vms), count(images), count(templates), count(snapshots)]);
    return { vms: v, images: i, templates: t, snapshots: s };
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.delete(projects).where(eq(projects.id, id)).returning({ id: projects.id })).length === 1;
  }

  members(id: string) {
    return this.db
      .select({
        userId: projectMembers.userId,
        username: users.username,
        role: projectMembers.role,
        createdAt: projectMembers.createdAt,
      })
      .from(projectMembers)
      .innerJoin(users, eq(users.id, projectMembers.userId))
      .where(eq(projectMembers.projectId, id))
      .orderBy(asc(users.username));
  }

  async userExists(id: string): Promise<boolean> {
    return (await this.db.select({ id: users.id }).from(users).where(eq(users.id, id))).length === 1;
  }

  async setMember(projectId: string, userId: string, role: ProjectRole): Promise<void> {
    await this.db
      .insert(projectMembers)
      .values({ projectId, userId, role })
      .onConflictDoUpdate({ target: [projectMembers.projectId, projectMembers.userId], set: { role } });
  }

  async removeMember(projectId: string, userId: string): Promise<boolean> {
    const rows = await this.db
      .delete(projectMembers)
      .where(and(eq(projectMembers.projectId, projectId), eq(projectMembers.userId, userId)))
      .returning({ userId: projectMembers.userId });
    return rows.length === 1;
  }
}
