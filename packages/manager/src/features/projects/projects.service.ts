import type { Project, ProjectMember, ProjectRole } from '@nqvm/api';
import { decodeCursor, encodeCursor, type Key } from '../../db/keyset.ts';
import { Conflict, NotFound } from '../../domain/errors.ts';
import type { Principal } from '../../http/principal.ts';
import { visibleProjects } from '../../http/scope.ts';
import type { EventsService } from '../events/events.service.ts';
import { isUniqueViolation } from '../vms/vms.repository.ts';
import type { ProjectRow, ProjectsRepository } from './projects.repository.ts';

const NAME_KEY: Key[] = [{ column: 'name', kind: 'text' }];

function toProject(r: ProjectRow, p: Principal): Project {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    role: p.kind === 'user' ? (p.projects[r.id] ?? null) : null,
    created_at: r.createdAt.toISOString(),
  };
}

function nameTaken(err: unknown, name: string): never {
  if (isUniqueViolation(err)) throw new Conflict('project_name_taken', `project ${name} exists`, 'body.name');
  throw err;
}

/** Projects and their members; who may reach which project is checked by the auth hook (http/scope.ts). */
export class ProjectsService {
  constructor(
    private readonly repo: ProjectsRepository,
    private readonly events: EventsService,
  ) {}

  async exists(id: string): Promise<boolean> {
    return (await this.repo.get(id)) !== undefined;
  }

  async list(p: Principal, limit: number, cursor?: string) {
    const after = cursor === undefined ? undefined : decodeCursor(cursor, NAME_KEY)[0];
    const rows = await this.repo.list(limit + 1, after, visibleProjects(p));
    const items = rows.slice(0, limit).map((r) => toProject(r, p));
    return { items, next_cursor: rows.length > limit ? encodeCursor([items.at(-1)!.name]) : null };
  }

  async get(p: Principal, id: string): Promise<Project> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('project', id);
    return toProject(row, p);
  }

  async create(p: Principal, actor: string, v: { name: string; description?: string }): Promise<Project> {
    const row = await this.repo
      .insert({ name: v.name, description: v.description ?? '' })
      .catch((e) => nameTaken(e, v.name));
    await this.events.record({
      actor,
      resourceType: 'project',
      resourceId: row.id,
      action: 'create',
      detail: { name: v.name },
    });
    return toProject(row, p);
  }

  async update(p: Principal, actor: string, id: string, patch: { name?: string; description?: string }) {
    const row = await this.repo.update(id, patch).catch((e) => nameTaken(e, patch.name ?? ''));
    if (!row) throw new NotFound('project', id);
    await this.events.record({
      actor,
      resourceType: 'project',
      resourceId: id,
      action: 'update',
      detail: { ...patch },
    });
    return toProject(row, p);
  }

  async delete(actor: string, id: string): Promise<void> {
    if (!(await this.repo.get(id))) throw new NotFound('project', id);
    const held = Object.entries(await this.repo.holdings(id)).filter(([, n]) => n > 0);
    if (held.length > 0)
      throw new Conflict(
        'project_not_empty',
        `project ${id} still holds ${held.map(([k, n]) => `${n} ${k}`).join(', ')}`,
        undefined,
        Object.fromEntries(held),
      );
    // A resource created meanwhile makes the delete fail on its foreign key: still a 409, never a 500.
    const gone = await this.repo.delete(id).catch((err: unknown) => {
      const code = (err as { cause?: { code?: string }; code?: string }).cause?.code ?? (err as { code?: string }).code;
      if (code === '23503') throw new Conflict('project_not_empty', `project ${id} holds resources`);
      throw err;
    });
    if (!gone) throw new NotFound('project', id);
    await this.events.record({ actor, resourceType: 'project', resourceId: id, action: 'delete' });
  }

  async members(id: string): Promise<{ items: ProjectMember[] }> {
    const rows = await this.repo.members(id);
    return {
      items: rows.map((r) => ({
        user_id: r.userId,
        username: r.username,
        role: r.role,
        created_at: r.createdAt.toISOString(),
      })),
    };
  }

  async setMember(actor: string, id: string, userId: string, role: ProjectRole): Promise<ProjectMember> {
    if (!(await this.repo.get(id))) throw new NotFound('project', id);
    if (!(await this.repo.userExists(userId))) throw new NotFound('user', userId);
    await this.repo.setMember(id, userId, role);
    await this.events.record({
      actor,
      resourceType: 'project',
      resourceId: id,
      action: 'set_member',
      detail: { user_id: userId, role },
    });
    const member = (await this.repo.members(id)).find((m) => m.userId === userId)!;
    return {
      user_id: userId,
      username: member.username,
      role: member.role,
      created_at: member.createdAt.toISOString(),
    };
  }

  async removeMember(actor: string, id: string, userId: string): Promise<void> {
    if (!(await this.repo.removeMember(id, userId))) throw new NotFound('member', userId);
    await this.events.record({
      actor,
      resourceType: 'project',
      resourceId: id,
      action: 'remove_member',
      detail: { user_id: userId },
    });
  }
}
