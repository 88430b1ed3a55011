import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_PASSWORD,
  ARTIFACTS,
  ensureWebBuilt,
  newPage,
  startWebEnv,
  unlabelledControls,
  type WebEnv,
} from './web-harness.ts';

const ERIN_PASSWORD = 'erins-first-password';

/**
 * The Users and API tokens pages in Chromium against a real manager (PGlite): an admin creates a user, changes
 * roles, disables and enables, and makes a scoped token; the user (not an admin) sees no Users page in the
 * navigation and no button that would fail, manages their own tokens and changes their password.
 */
describe('web console: users and tokens', () => {
  let env: WebEnv;
  let admin: BrowserContext;
  let user: BrowserContext;
  let a: Page;
  let u: Page;
  let errors: string[];
  let userErrors: string[];

  /** Signs in; the 401 of the first /me (no session yet) that Chromium logs is not an error of the console. */
  const signIn = async (page: Page, username: string, password: string, log: string[]) => {
    await page.goto(`${env.baseUrl}/`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    log.length = 0;
  };
  const nav = (page: Page) => page.getByRole('navigation', { name: 'Main' });

  beforeAll(async () => {
    await ensureWebBuilt();
    env = await startWebEnv({ MANAGER_RECONCILER_DISABLED: 'true' });
    admin = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    user = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    ({ page: a, errors } = await newPage(admin));
    ({ page: u, errors: userErrors } = await newPage(user));
    await signIn(a, 'admin', ADMIN_PASSWORD, errors);
  });
  afterAll(async () => {
    await admin?.close();
    await user?.close();
    await env?.close();
  });

  it('an admin creates a user, changes a role, disables and enables, and cannot disable the last admin', async () => {
    await nav(a).getByRole('link', { name: 'Users' }).click();
    await a.getByRole('heading', { name: 'Users', exact: true }).waitFor();
    await a.getByLabel('Username').fill('erin');
    await a.getByLabel('Initial password').fill('short');
    await a.getByRole('button', { name: 'Create user' }).click();
    // The browser's own minlength check keeps the short password from being sent.
    expect(await a.locator('tr[data-username="erin"]').count()).toBe(0);
    await a.getByLabel('Initial password').fill(ERIN_PASSWORD);
    await a.getByRole('button', { name: 'Create user' }).click();
    const erin = a.locator('tr[data-username="erin"]');
    await erin.waitFor();
    expect(await unlabelledControls(a)).toEqual([]);

    await erin.getByLabel('Role of erin').selectOption('admin');
    await expect
      .poll(
        async () =>
          (await env.manager.request({ method: 'GET', url: '/v1/users' }))
            .json()
            .items.find((x: { username: string }) => x.username === 'erin').role,
      )
      .toBe('admin');
    await erin.getByLabel('Role of erin').selectOption('user');
    await erin.getByRole('button', { name: 'Disable' }).click();
    await a.getByRole('dialog').getByRole('button', { name: 'Disable' }).click();
    await erin.getByText('disabled').waitFor();
    await erin.getByRole('button', { name: 'Enable' }).click();
    await erin.getByText('active').waitFor();

    const self = a.locator('tr[data-username="admin"]');
    await self.getByRole('button', { name: 'Disable' }).click();
    await a.getByRole('dialog').getByRole('button', { name: 'Disable' }).click();
    await expect.poll(() => a.getByRole('dialog').getByRole('alert').textContent()).toMatch(/last active admin/);
    await a.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await a.screenshot({ path: join(ARTIFACTS, 'web-users.png'), fullPage: true });
    expect(errors.filter((e) => !/409/.test(e))).toEqual([]);
  });

  it('an admin makes a token scoped to a subset, shown once, listed with its scope, and revokes it', async () => {
    await nav(a).getByRole('link', { name: 'API tokens' }).click();
    await a.getByRole('heading', { name: 'API tokens', exact: true }).waitFor();
    await a.getByLabel('Token name').fill('read-vms');
    await a.getByLabel('Only these:').check();
    await a.getByTestId('token-permissions').getByLabel('vm:read').check();
    await a.getByRole('button', { name: 'Create token' }).click();
    const value = (await a.getByTestId('new-token-value').textContent()) ?? '';
    expect(value).toMatch(/^nqt_/);
    const row = a.locator('tr[data-token-name="read-vms"]');
    await row.getByTestId('token-scope').getByText('vm:read').waitFor();
    const vms = await fetch(`${env.baseUrl}/v1/vms`, { headers: { authorization: `Bearer ${value}` } });
    expect(vms.status).toBe(200);
    const hosts = await fetch(`${env.baseUrl}/v1/hosts`, { headers: { authorization: `Bearer ${value}` } });
    expect(hosts.status).toBe(403);
    await a.reload();
    await expect.poll(() => row.locator('td').nth(5).textContent()).not.toBe('never');
    expect(await a.getByTestId('new-token-value').count()).toBe(0);
    expect(await unlabelledControls(a)).toEqual([]);
    await a.screenshot({ path: join(ARTIFACTS, 'web-tokens.png'), fullPage: true });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await a.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => row.count()).toBe(0);
    const after = await fetch(`${env.baseUrl}/v1/vms`, { headers: { authorization: `Bearer ${value}` } });
    expect(after.status).toBe(401);
  });

  it('a user sees no Users page nor admin-only permissions, and changes their password (other sessions end)', async () => {
    await signIn(u, 'erin', ERIN_PASSWORD, userErrors);
    expect(await nav(u).getByRole('link', { name: 'Users' }).count()).toBe(0);
    await u.goto(`${env.baseUrl}/users`);
    await u.getByText('Only an admin manages users.').waitFor();
    expect(await u.getByRole('button', { name: /Create user|Disable|Delete/ }).count()).toBe(0);

    await nav(u).getByRole('link', { name: 'API tokens' }).click();
    await u.getByLabel('Only these:').check();
    const offered = await u.getByTestId('token-permissions').locator('label').allTextContents();
    expect(offered.map((s) => s.trim())).toContain('vm:write');
    expect(offered.map((s) => s.trim())).not.toContain('user:read');
    expect(offered.map((s) => s.trim())).not.toContain('host:write');

    // A second session of erin's, via the API, ends when she changes her password in the console.
    const other = await fetch(`${env.baseUrl}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'erin', password: ERIN_PASSWORD }),
    });
    const otherToken = ((await other.json()) as { token: string }).token;
    await u.getByRole('button', { name: 'Change password' }).click();
    const dialog = u.getByRole('dialog');
    await dialog.getByLabel('Current password').fill(ERIN_PASSWORD);
    await dialog.getByLabel('New password', { exact: true }).fill('erins-second-password');
    await dialog.getByLabel('New password again').fill('erins-second-password');
    expect(await unlabelledControls(u)).toEqual([]);
    await dialog.getByRole('button', { name: 'Change password' }).click();
    await dialog.getByText('Password changed').waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
    const me = await fetch(`${env.baseUrl}/v1/auth/me`, { headers: { authorization: `Bearer ${otherToken}` } });
    expect(me.status).toBe(401);
    await u.reload();
    await u.getByRole('heading', { name: 'API tokens', exact: true }).waitFor();
    expect(userErrors).toEqual([]);

    // Disabled by the admin: her next request is refused and the console goes to the login page.
    const id = (await env.manager.request({ method: 'GET', url: '/v1/users' }))
      .json()
      .items.find((x: { username: string }) => x.username === 'erin').id as string;
    await env.manager.request({ method: 'PATCH', url: `/v1/users/${id}`, payload: { disabled: true } });
    await nav(u).getByRole('link', { name: 'Settings' }).click();
    await u.reload();
    await u.waitForURL(/\/login/);
  });
});
