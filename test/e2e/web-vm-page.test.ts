import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, until } from './support/stack.ts';
import { Terminal } from './support/terminal.ts';
import { ARTIFACTS, ensureWebBuilt, launchChromium, login, newPage } from './web-harness.ts';

const ADMIN_PASSWORD = 'stack-admin-password';
const GUEST = { username: 'root', password: 'web-page-pw-17' };
const BOOT_MS = 240_000;
const TABS = [
  'overview',
  'config',
  'storage',
  'network',
  'terminal',
  'metrics',
  'snapshots',
  'metadata',
  'logs',
  'events',
];

interface Vm {
  id: string;
  name: string;
  state: string;
  guest_ready_at: string | null;
}

/** Issue 17 from a user's seat, on one real VM: every tab, the logs, the metadata editor as the guest reads it. */
describe('the VM page in Chromium with a real VM', () => {
  let s: Stack;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let errors: string[];
  let vm: Vm;
  let term: Terminal;

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `web-page-${name}.png`), fullPage: true });
  const tab = (name: string) => page.getByRole('tab', { name, exact: true });
  const getVm = async (id: string) => (await s.api<Vm>('GET', `/v1/vms/${id}`)).body;

  beforeAll(async () => {
    await ensureWebBuilt();
    s = await startStack({ cidr: '10.223.0.0/24', bridge: 'nqbr-wpage', agentPort: 19171 });
    const created = await s.api<Vm>('POST', '/v1/vms', {
      name: 'page-a',
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: s.images.kernel,
      initrd_image_id: s.images.initrd,
      rootfs_image_id: s.images.rootfs,
      ...GUEST,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    ({ page, errors } = await newPage(ctx));
    await login(page, s.base, ADMIN_PASSWORD);
    errors.length = 0;
    vm = await until(
      'guest ready',
      async () => ((await getVm(created.body.id)).guest_ready_at ? getVm(created.body.id) : undefined),
      BOOT_MS,
    );
    term = await Terminal.open(`${s.base.replace(/^http/, 'ws')}/v1/vms/${vm.id}/shell/ws`, {
      authorization: `Bearer ${s.token}`,
    });
    await term.login(GUEST.username, GUEST.password);
  });
  afterAll(async () => {
    term?.close();
    await ctx?.close();
    await browser?.close();
    await s?.close();
  });

  it('opens every tab of a running VM without an error or a "not available" state', async () => {
    await page.goto(`${s.base}/vms/${vm.id}`);
    await page.getByRole('heading', { name: 'page-a' }).waitFor();
    for (const name of TABS) {
      await tab(name).click();
      await expect.poll(() => page.url()).toMatch(new RegExp(`/vms/${vm.id}(/${name})?$`));
      const panel = page.getByRole('tabpanel');
      await panel.waitFor();
      await expect.poll(() => panel.getByRole('status').filter({ hasText: 'Loading' }).count()).toBe(0);
      expect(await panel.locator('[data-state="not-available"]').count(), name).toBe(0);
      expect(await panel.getByRole('alert').count(), `${name}: ${await panel.textContent()}`).toBe(0);
    }
    await tab('terminal').click();
    await page.getByText('Serial console (open)').waitFor({ timeout: 30_000 });
    expect(errors).toEqual([]);
  });

  it('shows the boot in the Logs tab, follows new console lines, searches and downloads them', async () => {
    await tab('logs').click();
    const log = page.getByRole('log', { name: 'Serial console' });
    await expect.poll(() => log.textContent(), { timeout: 30_000 }).toMatch(/Linux version|Run \/init|login:/);
    await page.getByText('Following new lines').waitFor();
    const marker = `follow-${Date.now().toString(36)}`;
    await term.run(`echo ${marker}-out`);
    await expect.poll(() => log.textContent(), { timeout: 30_000 }).toContain(`${marker}-out`);
    await shot('logs');

    await page.getByLabel('Search log').fill(marker);
    await page.getByText(/^\d+ of \d+ lines match$/).waitFor();
    const lines = ((await log.textContent()) ?? '').split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toContain(marker);
    await page.getByLabel('Search log').fill('');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('page-a-console.log');
    const path = await download.path();
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(path, 'utf8')).toContain(`${marker}-out`);

    await page.getByLabel('Log', { exact: true }).selectOption({ label: 'VMM log' });
    const vmmLog = page.getByRole('log', { name: 'VMM log' });
    await expect.poll(() => vmmLog.textContent(), { timeout: 30_000 }).not.toBe('');
    expect(await page.getByRole('tabpanel').getByRole('alert').count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('edits metadata as keys with a JSON view and a preview; the guest reads what was saved', async () => {
    await tab('metadata').click();
    await page.getByRole('button', { name: 'Add Custom key' }).click();
    await page.getByLabel('Key 1', { exact: true }).fill('greeting');
    await page.getByLabel('Value 1', { exact: true }).fill('hello-from-web');
    await page.getByRole('button', { name: 'Add SSH keys' }).click();
    await page.getByLabel('Key 2', { exact: true }).fill('settings');
    await page.getByLabel('Value 2', { exact: true }).fill('{"color": "blue", "size": 3}');
    expect(JSON.parse(await page.getByLabel('JSON').inputValue())).toEqual({
      greeting: 'hello-from-web',
      settings: { color: 'blue', size: 3 },
    });
    const preview = page.getByRole('region', { name: 'What the guest reads' });
    await preview.getByText('GET /settings/color', { exact: true }).waitFor();
    await shot('metadata');
    await page.getByRole('button', { name: 'Save metadata' }).click();
    await page.getByText(/^Saved/).waitFor();
    expect((await s.api('GET', `/v1/vms/${vm.id}/mmds`)).body).toEqual({
      greeting: 'hello-from-web',
      settings: { color: 'blue', size: 3 },
    });
    const read = (path: string) =>
      term.run(`printf 'GET ${path} HTTP/1.0\\r\\nAccept: text/plain\\r\\n\\r\\n' | nc -w 5 169.254.169.254 80`);
    expect(await read('/greeting')).toMatch(/hello-from-web\s*$/);
    expect(await read('/settings/color')).toMatch(/blue\s*$/);
    expect(errors).toEqual([]);
  });
});
