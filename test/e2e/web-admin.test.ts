import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type AlertRule, type Image, type JoinToken, ROLE_PERMISSIONS, type Webhook } from '@nqvm/api';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_PASSWORD,
  ARTIFACTS,
  ensureWebBuilt,
  login,
  newPage,
  startWebEnv,
  unlabelledControls,
  type WebEnv,
} from './web-harness.ts';

/**
 * The console's admin pages (alert rules, webhooks with their deliveries, host join tokens), image versions
 * with rollback, and what a viewer is offered: one manager on PGlite, no VMs.
 */
describe('web console admin pages and permissions in Chromium', () => {
  let env: WebEnv;
  let ctx: BrowserContext;
  let page: Page;
  let errors: string[];
  let receiver: Server;
  let receiverUrl: string;
  let received = 0;

  const api = async <T>(method: string, url: string, payload?: unknown): Promise<T> => {
    const res = await env.manager.request({ method: method as 'GET', url, ...(payload ? { payload } : {}) });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return (res.body ? res.json() : undefined) as T;
  };

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received++;
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    await ensureWebBuilt();
    env = await startWebEnv({
      MANAGER_RECONCILER_DISABLED: 'true',
      NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.1/32',
    });
    ctx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    ({ page, errors } = await newPage(ctx));
    await login(page, env.baseUrl, ADMIN_PASSWORD);
    errors.length = 0; // the signed-out first visit's 401 to /v1/auth/me is logged by Chromium itself
  });
  afterAll(async () => {
    await ctx?.close();
    await env?.close();
    await new Promise((r) => receiver?.close(r));
  });

  it('creates, edits and deletes an alert rule', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts' }).waitFor();
    await page.getByRole('button', { name: 'New alert rule' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('cpu-hot');
    await dialog.getByLabel('Fires when').selectOption('metric_above');
    await dialog.getByLabel('Above (%)').fill('85');
    await dialog.getByLabel('For (seconds)').fill('120');
    expect(await unlabelledControls(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Create rule' }).click();
    await page.locator('[data-alert-rule="cpu-hot"]').waitFor();
    let [rule] = (await api<{ items: AlertRule[] }>('GET', '/v1/alert-rules')).items;
    expect(rule).toMatchObject({
      name: 'cpu-hot',
      kind: 'metric_above',
      metric: 'guest_cpu_percent',
      threshold: 85,
      duration_s: 120,
      enabled: true,
      firing: [],
    });
    await page.getByText('Guest CPU % above 85% for 120 s').waitFor();

    await page.getByRole('button', { name: 'Edit' }).click();
    await dialog.getByLabel('Above (%)').fill('95');
    await dialog.getByLabel('Enabled').uncheck();
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Guest CPU % above 95% for 120 s').waitFor();
    [rule] = (await api<{ items: AlertRule[] }>('GET', '/v1/alert-rules')).items;
    expect(rule).toMatchObject({ threshold: 95, enabled: false });
    await page.screenshot({ path: join(ARTIFACTS, 'web-alerts.png'), fullPage: true });

    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No alert rules').waitFor();
    expect((await api<{ items: AlertRule[] }>('GET', '/v1/alert-rules')).items).toEqual([]);
  });

  it('creates a webhook, shows its secret once and its deliveries with status, code and attempts', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('button', { name: 'New webhook' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('URL').fill(receiverUrl);
    await dialog.getByLabel('Events').fill('token.*');
    await dialog.getByRole('button', { name: 'Create webhook' }).click();
    const secret = await page.getByTestId('shown-once-value').textContent();
    expect(secret?.length).toBeGreaterThanOrEqual(16);
    const [hook] = (await api<{ items: Webhook[] }>('GET', '/v1/webhooks')).items;
    expect(hook).toMatchObject({ url: receiverUrl, events: ['token.*'], enabled: true });

    await api('POST', '/v1/tokens', { name: 'fires-a-delivery' });
    await page.getByRole('button', { name: 'Deliveries' }).click();
    const row = page.locator('tr[data-delivery-state="succeeded"]');
    await row.waitFor();
    expect(await row.textContent()).toMatch(/token\.create.*succeeded.*204.*1/);
    expect(received).toBe(1);

    await page.getByRole('button', { name: 'Edit' }).click();
    await dialog.getByLabel('Events').fill('token.*, vm.*');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByText('token.*, vm.*').waitFor();
    expect((await api<Webhook>('GET', `/v1/webhooks/${hook?.id}`)).events).toEqual(['token.*', 'vm.*']);
    await page.screenshot({ path: join(ARTIFACTS, 'web-webhooks.png'), fullPage: true });
    await page.reload();
    expect(await page.content()).not.toContain(secret);

    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No webhooks').waitFor();
  });

  it('creates a host join token shown once, lists it and revokes it', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Join tokens' }).click();
    await page.getByLabel('What it is for').fill('rack 3');
    await page.getByLabel('Expires after').selectOption('86400');
    await page.getByRole('button', { name: 'Create join token' }).click();
    const token = await page.getByTestId('shown-once-value').textContent();
    expect(token?.length).toBeGreaterThan(20);
    const row = page.locator('tr[data-join-token="rack 3"]');
    await row.waitFor();
    expect(await row.textContent()).toContain('valid');
    const [listed] = (await api<{ items: JoinToken[] }>('GET', '/v1/join-tokens')).items;
    expect(listed).toMatchObject({ description: 'rack 3', state: 'valid' });
    expect(Date.parse(listed?.expires_at ?? '') - Date.parse(listed?.created_at ?? '')).toBe(86_400_000);
    await page.reload();
    expect(await page.content()).not.toContain(token);

    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('No join tokens').waitFor();
    expect((await api<{ items: JoinToken[] }>('GET', '/v1/join-tokens')).items).toEqual([]);
  });

  it("lists an image's versions and points latest back at an older one", async () => {
    const blank = { name: 'scratch', kind: 'volume', source: { type: 'blank', size_mib: 8 } };
    const v1 = await api<Image>('POST', '/v1/images', blank);
    const v2 = await api<Image>('POST', '/v1/images', blank);
    expect([v1.version, v2.version, v2.latest]).toEqual([1, 2, true]);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Registry' }).click();
    await page.locator('tr[data-image-name="scratch"]').first().getByRole('button', { name: 'Versions' }).click();
    const list = page.getByRole('list', { name: 'Versions of scratch' });
    await list.locator('[data-image-version="1"]').getByRole('button', { name: 'Make latest' }).click();
    await list.locator('[data-image-version="1"]').getByText('latest').waitFor();
    expect((await api<Image>('GET', `/v1/images/${v1.id}`)).latest).toBe(true);
    expect((await api<Image>('GET', `/v1/images/${v2.id}`)).latest).toBe(false);
    await page.screenshot({ path: join(ARTIFACTS, 'web-image-versions.png') });
    await page.keyboard.press('Escape');
    expect(errors).toEqual([]);
  });

  it('offers a viewer no page or button it may not use', async () => {
    const { token } = await api<{ token: string }>('POST', '/v1/tokens', {
      name: 'viewer',
      permissions: [...ROLE_PERMISSIONS.viewer],
    });
    const viewer = await env.browser.newContext({
      viewport: { width: 1280, height: 800 },
      extraHTTPHeaders: { authorization: `Bearer ${token}` },
    });
    try {
      const { page: p, errors: viewerErrors } = await newPage(viewer);
      await p.goto(`${env.baseUrl}/`);
      await p.getByRole('heading', { name: 'Dashboard' }).waitFor();
      const nav = p.getByRole('navigation', { name: 'Main' });
      const links = await nav.getByRole('link').allTextContents();
      expect(links).toEqual([
        'Dashboard',
        'Virtual machines',
        'Registry',
        'Templates',
        'Events',
        'API tokens',
        'Settings',
      ]);

      await nav.getByRole('link', { name: 'Registry' }).click();
      await p.locator('tr[data-image-name="scratch"]').first().waitFor();
      expect(await p.getByRole('button', { name: /Import|Upload|Blank|Rename|Delete/ }).count()).toBe(0);
      await p.locator('tr[data-image-name="scratch"]').first().getByRole('button', { name: 'Versions' }).click();
      await p.getByRole('list', { name: 'Versions of scratch' }).waitFor();
      expect(await p.getByRole('button', { name: 'Make latest' }).count()).toBe(0);
      await p.keyboard.press('Escape');

      await nav.getByRole('link', { name: 'Templates' }).click();
      await p.getByRole('heading', { name: 'Templates' }).waitFor();
      expect(await p.getByRole('button', { name: /New template|Save VM as template/ }).count()).toBe(0);
      await nav.getByRole('link', { name: 'Virtual machines' }).click();
      await p.getByRole('heading', { name: 'Virtual machines' }).waitFor();
      expect(await p.getByRole('link', { name: 'Create VM' }).count()).toBe(0);
      await p.screenshot({ path: join(ARTIFACTS, 'web-viewer-vms.png') });
      expect(viewerErrors).toEqual([]);
      // A page the viewer reaches by its address shows the API's refusal, not a form to fill.
      await p.goto(`${env.baseUrl}/webhooks`);
      await p.getByRole('alert').waitFor();
      expect(await p.getByRole('button', { name: 'New webhook' }).count()).toBe(0);
    } finally {
      await viewer.close();
    }
  });
});
