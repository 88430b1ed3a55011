import { randomBytes } from 'node:crypto';
import { type ApiToken, isUserPermission, type UserPermission } from '@nqvm/api';
import { BadRequest, DomainError, Forbidden, NotFound, TooManyRequests, Unauthorized } from '../../domain/errors.ts';
import { type Principal, permissionsOf } from '../../http/principal.ts';
import { reaches } from '../../http/scope.ts';
import { LoginThrottle } from '../../security/login-throttle.ts';
import { PasswordHasher } from '../../security/passwords.ts';
import { hashToken, newToken, tokenKind } from '../../security/tokens.ts';
import type { AuthRepository, TokenRow } from './auth.repository.ts';

/** A token's last use is written at most this often (one UPDATE a minute per busy token, not one a request). */
const TOUCH_EVERY_MS = 60_000;

export interface AuthServiceOptions {
  sessionTtlHours: number;
  /** No token outlives this; a token asked for without an expiry gets it (NQVM_TOKEN_MAX_TTL). */
  tokenMaxTtlDays?: number;
  now?: () => Date;
  passwords?: PasswordHasher;
}

/** A token's stored scope; names no longer known grant nothing. */
function scopeOf(t: TokenRow): UserPermission[] | null {
  return t.permissions
    ? (t.permissions.filter((p) => isUserPermission(p as UserPermission)) as UserPermission[])
    : null;
}

function toApiToken(t: TokenRow): ApiToken {
  return {
    id: t.id,
    name: t.name,
    prefix: t.prefix,
    created_at: t.createdAt.toISOString(),
    expires_at: t.expiresAt?.toISOString() ?? null,
    last_used_at: t.lastUsedAt?.toISOString() ?? null,
    permissions: scopeOf(t),
    project_id: t.projectId,
  };
}

export class AuthService {
  private readonly now: () => Date;
  private readonly passwords: PasswordHasher;
  // 10 evaluated logins per 5 minutes per client address; an account with 10 failures backs off failing sources.
  private readonly throttle = new LoginThrottle({ perSource: 10, perUser: 10, windowMs: 5 * 60_000 });

  constructor(
    private readonly repo: AuthRepository,
    private readonly opts: AuthServiceOptions,
  ) {
    this.now = opts.now ?? (() => new Date());
    this.passwords = opts.passwords ?? new PasswordHasher();
  }

  /** First start: create `admin`. Returns the generated password when none was configured (print it once). */
  async ensureAdmin(password: string | undefined): Promise<{ created: boolean; generatedPassword?: string }> {
    if ((await this.repo.countUsers()) > 0) return { created: false };
    const generated = password ? undefined : randomBytes(12).toString('base64url');
    const created = await this.repo.insertUserIfAbsent({
      username: 'admin',
      passwordHash: await this.passwords.hash(password ?? generated!),
      role: 'admin',
    });
    return created ? { created, generatedPassword: generated } : { created: false };
  }

  async login(username: string, password: string, clientIp: string) {
    const admission = this.throttle.admit(clientIp, username);
    if (!admission.ok) throw new TooManyRequests('too many failed logins; try again later', admission.retryAfterS);
    let ok = false;
    let user: Awaited<ReturnType<AuthRepository['userByName']>>;
    try {
      user = await this.repo.userByName(username);
      ok = await this.passwords.verify(password, user?.passwordHash ?? (await this.passwords.dummyHash()));
    } finally {
      admission.done(ok);
    }
    if (!user || !ok) throw new Unauthorized('invalid username or password');
    if (user.disabled) throw new Unauthorized('this user is disabled');
    if (this.passwords.needsRehash(user.passwordHash))
      await this.repo.setPasswordHash(user.id, await this.passwords.hash(password));
    const token = newToken('session');
    const expiresAt = new Date(this.now().getTime() + this.opts.sessionTtlHours * 3600_000);
    await this.repo.insertSession({ userId: user.id, tokenHash: hashToken(token), expiresAt });
    await this.repo.recordLogin(user.id, this.now());
    await this.repo.deleteExpiredSessions(this.now());
    return { token, expires_at: expiresAt.toISOString(), user: { id: user.id, username: user.username } };
  }

  async logout(p: Principal): Promise<void> {
    if (p.kind === 'user' && p.via === 'session') await this.repo.deleteSession(p.credentialId);
  }

  /**
   * Changes the caller's own password, given the current one (failures count against the login throttle). Every
   * other session of the user ends; the caller's own session and the user's API tokens stay.
   */
  async changePassword(p: Principal, current: string, next: string, clientIp: string): Promise<void> {
    if (p.kind !== 'user') throw new Unauthorized();
    const admission = this.throttle.admit(clientIp, p.username);
    if (!admission.ok) throw new TooManyRequests('too many failed attempts; try again later', admission.retryAfterS);
    let ok = false;
    let user: Awaited<ReturnType<AuthRepository['userById']>>;
    try {
      user = await this.repo.userById(p.userId);
      ok = !!user && (await this.passwords.verify(current, user.passwordHash));
    } finally {
      admission.done(ok);
    }
    if (!ok) throw new DomainError(403, 'wrong_password', 'the current password is wrong', 'body.current_password');
    if (next === current)
      throw new BadRequest('password_unchanged', 'the new password is the current one', 'body.new_password');
    await this.repo.changePassword(
      p.userId,
      await this.passwords.hash(next),
      p.via === 'session' ? p.credentialId : undefined,
    );
  }

  /**
   * Who a credential belongs to, read from the database on every request (no cache): a revoked token, an ended
   * session or a disabled or deleted user is refused at once, by every manager sharing the database.
   */
  async authenticate(token: string): Promise<Principal | null> {
    const kind = tokenKind(token);
    const now = this.now();
    if (kind === 'session') {
      const row = await this.repo.sessionByHash(hashToken(token), now);
      if (!row) return null;
      return {
        kind: 'user',
        userId: row.user.id,
        username: row.user.username,
        role: row.user.role,
        via: 'session',
        credentialId: row.session.id,
        projects: await this.repo.memberships(row.user.id),
      };
    }
    if (kind === 'api') {
      const row = await this.repo.tokenByHash(hashToken(token), now);
      if (!row) return null;
      if (!row.token.lastUsedAt || now.getTime() - row.token.lastUsedAt.getTime() >= TOUCH_EVERY_MS)
        await this.repo.touchToken(row.token.id, now);
      return {
        kind: 'user',
        userId: row.user.id,
        username: row.user.username,
        role: row.user.role,
        via: 'token',
        credentialId: row.token.id,
        tokenName: row.token.name,
        ...(row.token.expiresAt ? { expiresAt: row.token.expiresAt } : {}),
        ...(row.token.permissions ? { scope: scopeOf(row.token)! } : {}),
        ...(await this.tokenProjects(row.user, row.token.projectId)),
      };
    }
    return null;
  }

  /** A token minted for one project reaches that project alone, with its user's role there (an admin's: owner). */
  private async tokenProjects(user: { id: string; role: 'admin' | 'user' }, projectId: string | null) {
    const member = await this.repo.memberships(user.id);
    if (projectId === null) return { projects: member };
    const role = user.role === 'admin' ? 'owner' : member[projectId];
    return { projectId, projects: role ? { [projectId]: role } : {} };
  }

  /**
   * A new API token for the caller's user. Its scope is the one asked for, which must be a subset of the caller's
   * own permissions (a token never mints more rights than it holds); without one, a scoped token passes its own
   * scope on and a session gives all of the user's. No token outlives the configured cap, nor the token minting it.
   */
  async createToken(
    p: Principal,
    name: string,
    expiresInDays?: number,
    permissions?: UserPermission[],
    projectId?: string,
  ) {
    if (p.kind !== 'user') throw new Unauthorized();
    // A project token mints tokens of its project only; anyone else, tokens of a project it reaches.
    if (projectId !== undefined && !reaches(p, projectId)) throw new NotFound('project', projectId);
    const own = permissionsOf(p);
    const beyond = (permissions ?? []).filter((x) => !own.includes(x));
    if (beyond.length > 0)
      throw new Forbidden(`a token cannot hold what its creator may not do: ${beyond.join(', ')}`, 'body.permissions');
    const maxDays = this.opts.tokenMaxTtlDays ?? 365;
    if (expiresInDays !== undefined && expiresInDays > maxDays)
      throw new BadRequest(
        'token_ttl_too_long',
        `a token expires within ${maxDays} days on this manager (NQVM_TOKEN_MAX_TTL)`,
        'body.expires_in_days',
      );
    let expiresAt = new Date(this.now().getTime() + (expiresInDays ?? maxDays) * 86400_000);
    if (p.expiresAt && p.expiresAt < expiresAt) expiresAt = p.expiresAt;
    const token = newToken('api');
    const row = await this.repo.insertToken({
      userId: p.userId,
      permissions: permissions ?? (p.scope ? own : null),
      projectId: projectId ?? p.projectId ?? null,
      name,
      prefix: token.slice(0, 10),
      tokenHash: hashToken(token),
      expiresAt,
    });
    return { ...toApiToken(row), token };
  }

  async listTokens(userId: string): Promise<ApiToken[]> {
    return (await this.repo.listTokens(userId)).map(toApiToken);
  }

  async deleteToken(userId: string, id: string): Promise<void> {
    if (!(await this.repo.deleteToken(userId, id))) throw new NotFound('token', id);
  }
}
