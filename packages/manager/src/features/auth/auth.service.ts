import { randomBytes } from 'node:crypto';
import { type ApiToken, isUserPermission, type UserPermission } from '@nqvm/api';
import { Forbidden, NotFound, TooManyRequests, Unauthorized } from '../../domain/errors.ts';
import { type Principal, permissionsOf } from '../../http/principal.ts';
import { LoginThrottle } from '../../security/login-throttle.ts';
import { PasswordHasher } from '../../security/passwords.ts';
import { hashToken, newToken, tokenKind } from '../../security/tokens.ts';
import type { AuthRepository, TokenRow } from './auth.repository.ts';

const AUTH_CACHE_MS = 1000;

export interface AuthServiceOptions {
  sessionTtlHours: number;
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
  private readonly cache = new Map<string, { principal: Principal; until: number }>();

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
    if (this.passwords.needsRehash(user.passwordHash))
      await this.repo.setPasswordHash(user.id, await this.passwords.hash(password));
    const token = newToken('session');
    const expiresAt = new Date(this.now().getTime() + this.opts.sessionTtlHours * 3600_000);
    await this.repo.insertSession({ userId: user.id, tokenHash: hashToken(token), expiresAt });
    await this.repo.deleteExpiredSessions(this.now());
    return { token, expires_at: expiresAt.toISOString(), user: { id: user.id, username: user.username } };
  }

  async logout(p: Principal): Promise<void> {
    if (p.kind === 'user' && p.via === 'session') {
      await this.repo.deleteSession(p.credentialId);
      this.evict(p.credentialId);
    }
  }

  /**
   * Credentials checked in the last second are answered from memory: a hot API path then costs one
   * database round trip, not two. Logout and revocation on this manager evict at once; another manager
   * sharing the database may accept a revoked credential for at most AUTH_CACHE_MS.
   */
  async authenticate(token: string): Promise<Principal | null> {
    const key = hashToken(token);
    const hit = this.cache.get(key);
    const t = this.now().getTime();
    if (hit && hit.until > t) return hit.principal;
    const principal = await this.lookup(token);
    if (this.cache.size > 10_000) this.cache.clear();
    if (principal) this.cache.set(key, { principal, until: t + AUTH_CACHE_MS });
    else this.cache.delete(key);
    return principal;
  }

  private evict(credentialId: string): void {
    for (const [k, v] of this.cache)
      if (v.principal.kind === 'user' && v.principal.credentialId === credentialId) this.cache.delete(k);
  }

  private async lookup(token: string): Promise<Principal | null> {
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
      };
    }
    if (kind === 'api') {
      const row = await this.repo.tokenByHash(hashToken(token), now);
      if (!row) return null;
      await this.repo.touchToken(row.token.id, now);
      return {
        kind: 'user',
        userId: row.user.id,
        username: row.user.username,
        role: row.user.role,
        via: 'token',
        credentialId: row.token.id,
        tokenName: row.token.name,
        ...(row.token.permissions ? { scope: scopeOf(row.token)! } : {}),
      };
    }
    return null;
  }

  /**
   * A new API token for the caller's user. Its scope is the one asked for, which must be a subset of the caller's
   * own permissions (a token never mints more rights than it holds); without one, a scoped token passes its own
   * scope on and a session gives all of the user's.
   */
  async createToken(p: Principal, name: string, expiresInDays?: number, permissions?: UserPermission[]) {
    if (p.kind !== 'user') throw new Unauthorized();
    const own = permissionsOf(p);
    const beyond = (permissions ?? []).filter((x) => !own.includes(x));
    if (beyond.length > 0)
      throw new Forbidden(`a token cannot hold what its creator may not do: ${beyond.join(', ')}`, 'body.permissions');
    const token = newToken('api');
    const row = await this.repo.insertToken({
      userId: p.userId,
      permissions: permissions ?? (p.scope ? own : null),
      name,
      prefix: token.slice(0, 10),
      tokenHash: hashToken(token),
      expiresAt: expiresInDays ? new Date(this.now().getTime() + expiresInDays * 86400_000) : null,
    });
    return { ...toApiToken(row), token };
  }

  async listTokens(userId: string): Promise<ApiToken[]> {
    return (await this.repo.listTokens(userId)).map(toApiToken);
  }

  async deleteToken(userId: string, id: string): Promise<void> {
    if (!(await this.repo.deleteToken(userId, id))) throw new NotFound('token', id);
    this.evict(id);
  }
}
