import { and, asc, eq, gt, or } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { templateImages, templates } from '../../db/schema.ts';
import { inProjects } from '../../http/scope.ts';

export type TemplateRow = typeof templates.$inferSelect;

export interface TemplateValues {
  name: string;
  description: string;
  spec: Record<string, unknown>;
  imageIds: string[];
  projectId?: string;
  public: boolean;
}

/** Writes a template and the images it references together; duplicate names and vanished images surface as driver errors. */
export class TemplatesRepository {
  constructor(private readonly db: Db) {}

  async insert(v: TemplateValues): Promise<TemplateRow> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(templates)
        .values({ name: v.name, description: v.description, spec: v.spec, projectId: v.projectId, public: v.public })
        .returning();
      if (v.imageIds.length)
        await tx.insert(templateImages).values(v.imageIds.map((imageId) => ({ templateId: row!.id, imageId })));
      return row!;
    });
  }

  async replace(id: string, v: TemplateValues): Promise<TemplateRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(templates)
        .set({ name: v.name, description: v.description, spec: v.spec, public: v.public, updatedAt: new Date() })
        .where(eq(templates.id, id))
        .returning();
      if (!row) return undefined;
      await tx.delete(templateImages).where(eq(templateImages.templateId, id));
      if (v.imageIds.length)
        await tx.insert(templateImages).values(v.imageIds.map((imageId) => ({ templateId: id, imageId })));
      return row;
    });
  }

  async get(id: string): Promise<TemplateRow | undefined> {
    const [row] = await this.db.select().from(templates).where(eq(templates.id, id));
    return row;
  }

  list(
    limit: number,
    afterName?: string,
    scope: { projects?: string[] | null; projectId?: string } = {},
  ): Promise<TemplateRow[]> {
    return this.db
      .select()
      .from(templates)
      .where(
        and(
          afterName !== undefined ? gt(templates.name, afterName) : undefined,
          scope.projectId ? eq(templates.projectId, scope.projectId) : undefined,
          scope.projects ? or(inProjects(templates.projectId, scope.projects), eq(templates.public, true)) : undefined,
        ),
      )
      .orderBy(asc(templates.name))
      .limit(limit);
  }

  async delete(id: string): Promise<TemplateRow | undefined> {
    const [row] = await this.db.delete(templates).where(eq(templates.id, id)).returning();
    return row;
  }

  async namesUsingImage(imageId: string): Promise<string[]> {
    const rows = await this.db
      .select({ name: templates.name })
      .from(templateImages)
      .innerJoin(templates, eq(templates.id, templateImages.templateId))
      .where(eq(templateImages.imageId, imageId))
      .orderBy(asc(templates.name));
    return rows.map((r) => r.name);
  }
}
