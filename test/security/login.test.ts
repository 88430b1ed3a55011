import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../packages/manager/src/security/login-throttle.ts';
import { PasswordHasher, SCRYPT_LOG2N } from '../../packages/manager/src/security/passwords.ts';
import { ADMIN_PASSWORD, startTestApp, type TestApp } from '../../packages/manager/test/support/harness.ts';
import { expectProblem } from './support.ts';

describe('login throttling at the production scrypt cost', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('pglite', {}, undefined, { passwordLog2N: SCRYPT_LOG2N });
  });
  afterAll(async () => t?.close());

  const login = (password: string, source: string) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      remoteAddress: source,
      payload: { username: 'admin', password },
    });

  it('evaluates at most 10 of 200 parallel wrong logins, and the right password from another source logs in', async () => {
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => login(`wrong-${i}`, '203.0.113.7')));
    const evaluated = answers.filter((r) => r.statusCode === 401).length;
    const refused = answers.filter((r) => r.statusCode === 429);
    process.stdout.write(`login: 200 parallel wrong logins, ${evaluated} evaluated, ${Date.now() - started} ms\n`);
    expect(evaluated).toBeLessThanOrEqual(10);
    expect(evaluated + refused.length).toBe(200);
    for (const r of refused.slice(0, 3)) {
      expectProblem(r, 'throttled login');
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    }
    // The account is under attack now; its owner elsewhere is still let in.
    const owner = await login(ADMIN_PASSWORD, '198.51.100.20');
    expect(owner.statusCode, owner.body).toBe(200);
    // The attacking source itself stays throttled, even with the right password.
    expect((await login(ADMIN_PASSWORD, '203.0.113.7')).statusCode).toBe(429);
  });
});

describe('password hashes', () => {
  it('rehashes a hash of a lower cost at the next login', async () => {
    const t = await startTestApp('pglite', {}, undefined, { passwordLog2N: 12 });
    try {
      const old = await new PasswordHasher(10).hash(ADMIN_PASSWORD);
      await t.database.withSession((s) =>
        s.query(`UPDATE users SET password_hash = '${old}' WHERE username = 'admin'`),
      );
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: 'admin', password: ADMIN_PASSWORD },
      });
      expect(res.statusCode).toBe(200);
      const [row] = await t.database.withSession((s) =>
        s.query<{ password_hash: string }>(`SELECT password_hash FROM users WHERE username = 'admin'`),
      );
      expect(row?.password_hash).toMatch(/^scrypt\$4096\$8\$1\$/);
    } finally {
      await t.close();
    }
  });

  it('stores new passwords at N = 2^17 and refuses a stored hash that asks for more', async () => {
    const hasher = new PasswordHasher();
    const hash = await hasher.hash('correct horse');
    expect(hash).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect(await hasher.verify('correct horse', hash)).toBe(true);
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(await hasher.verify('correct horse', hash.replace('$131072$', '$1048576$'))).toBe(false);
  });
});

describe('login throttle', () => {
  it('backs off only the sources that failed against an account under attack, with growing delays', () => {
    let now = 0;
    const th = new LoginThrottle({ perSource: 10, perUser: 3, windowMs: 300_000, now: () => now });
    for (const src of ['a', 'b', 'c']) {
      const adm = th.admit(src, 'admin');
      if (!adm.ok) throw new Error('refused too early');
      adm.done(false);
    }
    // Three failures: the account is under attack; source c (the third) backs off, a fresh source does not.
    expect(th.admit('c', 'admin')).toMatchObject({ ok: false });
    const fresh = th.admit('d', 'admin');
    expect(fresh.ok).toBe(true);
    if (fresh.ok) fresh.done(true);
    const first = th.admit('c', 'admin');
    now += 2_000;
    const again = th.admit('c', 'admin');
    expect(again.ok).toBe(true);
    if (again.ok) again.done(false);
    const later = th.admit('c', 'admin');
    expect(later.ok).toBe(false);
    if (!first.ok && !later.ok) expect(later.retryAfterS).toBeGreaterThan(first.retryAfterS);
  });

  it('counts an attempt before it is evaluated: in-flight attempts use up the source', () => {
    const th = new LoginThrottle({ perSource: 2, perUser: 100, windowMs: 60_000 });
    expect(th.admit('s', 'u').ok).toBe(true);
    expect(th.admit('s', 'u').ok).toBe(true);
    expect(th.admit('s', 'u').ok).toBe(false);
  });
});
