import type { User } from '@nqvm/api';
import { Conflict, NotFound } from '../../domain/errors.ts';
import type { PasswordHasher } from '../../security/passwords.ts';
import type { EventsService } from '../events/events.service.ts';
import { LastAdmin, type UserChange, type UserRow, type UsersRepository } from './users.repository.ts';

export function toApiUser(u: UserRow): User {
  return {
    id: u.id,
    username: u.username,
    role: u.role,
    disabled: u.disabled,
    created_at: u.createdAt.toISOString(),
    last_login_at: u.lastLoginAt?.toISOString() ?? null,
  };
}

const lastAdmin = () =>
  new Conflict('last_admin', 'the last active admin cannot be disabled, demoted or deleted: make another admin first');

/**
 * Users, managed by an admin. Who a credential belongs to is read at every authentication (no cache), so a
 * disabled, demoted or deleted user's sessions and tokens change with the row on every manager at once.
 */
export class UsersService {
  constructor(
    private readonly repo: UsersRepository,
    private readonly passwords: PasswordHasher,
    private readonly events: EventsService,
  ) {}

  async list(limit: number, cursor?: string): Promise<{ items: User[]; next_cursor: string | null }> {
    const rows = await this.repo.list(limit + 1, cursor);
    const items = rows.slice(0, limit).map(toApiUser);
    return { items, next_cursor: rows.length > limit ? items[items.length - 1]!.username : null };
  }

  async get(id: string): Promise<User> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('user', id);
    return toApiUser(row);
  }

  async create(body: { username: string; password: string; role?: 'admin' | 'user' }, actor: string): Promise<User> {
    const row = await this.repo.insert({
      username: body.username,
      passwordHash: await this.passwords.hash(body.password),
      role: body.role ?? 'user',
    });
    if (!row) throw new Conflict('user_exists', `a user named "${body.username}" exists`, 'body.username');
    await this.events.record({
      actor,
      resourceType: 'user',
      resourceId: row.id,
      action: 'create',
      detail: { username: row.username, role: row.role },
    });
    return toApiUser(row);
  }

  async update(id: string, change: UserChange, actor: string): Promise<User> {
    const row = await this.guard(() => this.repo.update(id, change));
    if (!row) throw new NotFound('user', id);
    const action = change.disabled === true ? 'disable' : change.disabled === false ? 'enable' : 'update';
    await this.events.record({
      actor,
      resourceType: 'user',
      resourceId: id,
      action,
      detail: { username: row.username, ...change },
    });
    return toApiUser(row);
  }

  async delete(id: string, actor: string): Promise<void> {
    if (!(await this.guard(() => this.repo.delete(id)))) throw new NotFound('user', id);
    await this.events.record({ actor, resourceType: 'user', resourceId: id, action: 'delete' });
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw err instanceof LastAdmin ? lastAdmin() : err;
    }
  }
}
