import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp, loadConfig } from '@nqvm/manager';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = path.resolve(import.meta.dirname, '../../bin/nqvm.ts');

describe('nqvm admin reset-password (on the manager host, manager stopped)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nqvm-admin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const login = async (password: string) => {
    const config = loadConfig({ NQVM_DATA_DIR: path.join(dir, 'manager'), NQVM_LOG_LEVEL: 'silent' });
    const built = await buildApp(config);
    try {
      const res = await built.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: 'admin', password },
      });
      return res.statusCode;
    } finally {
      await built.app.close();
    }
  };

  it("gives admin a new password, saves it root-only in nqvm up's credentials file, and the old one stops working", async () => {
    const config = loadConfig({ NQVM_DATA_DIR: path.join(dir, 'manager'), NQVM_ADMIN_PASSWORD: 'first-password-1' });
    await (await buildApp(config)).app.close();

    const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'admin', 'reset-password', '--data-dir', dir], {
      env: { PATH: process.env.PATH, HOME: dir },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const password = /new password for admin: (\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(password).toMatch(/^[A-Za-z0-9_-]{16}$/);
    const file = path.join(dir, 'admin-credentials');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toContain(`password=${password}\n`);

    expect(await login(password)).toBe(200);
    expect(await login('first-password-1')).toBe(401);
  });

  it('names the problem when the user does not exist', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', CLI, 'admin', 'reset-password', '--data-dir', dir, '--username', 'nobody'],
      { env: { PATH: process.env.PATH, HOME: dir }, encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('no user named "nobody"');
  });
});
