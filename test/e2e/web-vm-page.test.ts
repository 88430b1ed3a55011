import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
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
  vcpu: number;
  booted_at: string | null;
  guest_ready_at: string | null;
  pid: number | null;
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
    s = await startStack(TEST_NETWORKS.webVmPage);
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

  it('follows a dark OS with page, charts and terminal dark, toggles back, and fits 390 px without side-scrolling', async () => {
    const dark = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    const { page: p, errors: darkErrors } = await newPage(dark);
    await login(p, s.base, ADMIN_PASSWORD);
    darkErrors.length = 0;
    // Runs in the page (a Function: this file has no DOM types): the colour painted behind an element, as RGB.
    const BACKGROUND = new Function(
      'el',
      `let e = el;
      while (e && /^(rgba\\(0, 0, 0, 0\\)|transparent)$/.test(getComputedStyle(e).backgroundColor)) e = e.parentElement;
      const c = document.createElement('canvas').getContext('2d');
      c.fillStyle = e ? getComputedStyle(e).backgroundColor : '#fff';
      c.fillRect(0, 0, 1, 1);
      return [...c.getImageData(0, 0, 1, 1).data.slice(0, 3)];`,
    ) as (el: unknown) => number[];
    const luminance = async (selector: string) => {
      const [r, g, b] = (await p.locator(selector).first().evaluate(BACKGROUND)) as number[];
      return (0.2126 * (r ?? 0) + 0.7152 * (g ?? 0) + 0.0722 * (b ?? 0)) / 255;
    };
    await p.goto(`${s.base}/vms/${vm.id}/metrics`);
    await p.locator('[data-chart="cpu"] [role="img"]').waitFor();
    await expect
      .poll(() => p.locator('[data-chart="cpu"] [role="img"]').getAttribute('data-points'), { timeout: 30_000 })
      .not.toBe('0');
    expect(await luminance('body')).toBeLessThan(0.2);
    expect(await luminance('[data-chart="cpu"]')).toBeLessThan(0.2);
    await p.screenshot({ path: join(ARTIFACTS, 'web-page-dark-metrics.png'), fullPage: true });
    await p.goto(`${s.base}/vms/${vm.id}/terminal`);
    await p.getByText('Serial console (open)').waitFor({ timeout: 30_000 });
    expect(await luminance('.xterm-viewport')).toBeLessThan(0.2);
    await p.screenshot({ path: join(ARTIFACTS, 'web-page-dark-terminal.png'), fullPage: true });
    await p.getByLabel('Theme').selectOption('light');
    await expect.poll(() => luminance('body')).toBeGreaterThan(0.8);
    await p.getByLabel('Theme').selectOption('system');
    await expect.poll(() => luminance('body')).toBeLessThan(0.2);
    expect(darkErrors).toEqual([]);
    await dark.close();

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const { page: m, errors: phoneErrors } = await newPage(phone);
    await login(m, s.base, ADMIN_PASSWORD);
    phoneErrors.length = 0;
    const sideScroll = () =>
      m.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    for (const [path, ready] of [
      ['/vms', () => m.getByTestId('vm-cards').getByText(vm.name).waitFor()],
      [`/vms/${vm.id}`, () => m.getByRole('heading', { name: vm.name }).waitFor()],
      [`/vms/${vm.id}/terminal`, () => m.getByText('Serial console (open)').waitFor({ timeout: 30_000 })],
      ['/vms/new', () => m.getByRole('form', { name: 'Create VM' }).waitFor()],
    ] as const) {
      await m.goto(`${s.base}${path}`);
      await ready();
      expect(await sideScroll(), path).toBeLessThanOrEqual(0);
      await m.screenshot({
        path: join(ARTIFACTS, `web-page-390${path.replace(/\//g, '-').replace(/-[0-9a-f-]{36}/, '-vm')}.png`),
        fullPage: true,
      });
    }
    expect(await m.getByRole('button', { name: 'Menu' }).isVisible()).toBe(true);
    expect(phoneErrors).toEqual([]);
    await phone.close();
  });

  it('runs every everyday action once from the VM page or a list row; the API shows each effect', async () => {
    const state = async (id = vm.id) => (await getVm(id)).state;
    const menu = async (where: 'page' | 'row', item: string) => {
      if (where === 'row') {
        await page.goto(`${s.base}/vms`);
        await page.getByRole('button', { name: `Actions for ${currentName}`, exact: true }).click();
      } else {
        await page.goto(`${s.base}/vms/${vm.id}`);
        await page.getByRole('button', { name: 'More actions' }).click();
      }
      await page.getByRole('menuitem', { name: item, exact: true }).click();
    };
    const confirm = (label: string) =>
      page.getByRole('dialog').getByRole('button', { name: label, exact: true }).click();
    let currentName = vm.name;

    await page.goto(`${s.base}/vms/${vm.id}`);
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await confirm('Pause');
    await expect.poll(state, { timeout: 30_000 }).toBe('paused');
    await menu('row', 'Resume');
    await confirm('Resume');
    await expect.poll(state, { timeout: 30_000 }).toBe('running');

    await menu('row', 'Snapshot…');
    await page.getByLabel('Snapshot name').fill('page-a-snap');
    await confirm('Take snapshot');
    const snaps = async () =>
      (await s.api<{ items: { name: string }[] }>('GET', `/v1/vms/${vm.id}/snapshots`)).body.items;
    await expect.poll(async () => (await snaps()).map((x) => x.name), { timeout: 60_000 }).toContain('page-a-snap');

    await menu('page', 'Save as template…');
    await page.getByLabel('Template name').fill('page-a-tpl');
    await confirm('Save template');
    const templates = async () => (await s.api<{ items: { name: string }[] }>('GET', '/v1/templates')).body.items;
    await expect.poll(async () => (await templates()).map((x) => x.name)).toContain('page-a-tpl');

    await menu('row', 'Rename and edit details…');
    const edit = page.getByRole('form', { name: 'Edit VM details' });
    await edit.getByLabel('VM name').fill('page b');
    await edit.getByText(/use letters, digits/).waitFor();
    expect(await edit.getByRole('button', { name: 'Save' }).isDisabled()).toBe(true);
    await edit.getByLabel('VM name').fill('page-b');
    await edit.getByLabel('Tags').fill('web, team:ui');
    await edit.getByLabel('Owner').fill('carol');
    await edit.getByLabel('Environment').fill('staging');
    await edit.getByLabel('Description').fill('renamed in the console');
    await edit.getByRole('button', { name: 'Save' }).click();
    await expect
      .poll(async () => {
        const v = (await s.api<Record<string, unknown>>('GET', `/v1/vms/${vm.id}`)).body;
        return [v.name, v.tags, v.owner, v.environment, v.description];
      })
      .toEqual(['page-b', ['web', 'team:ui'], 'carol', 'staging', 'renamed in the console']);
    currentName = 'page-b';

    await page.goto(`${s.base}/vms/${vm.id}`);
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await confirm('Stop');
    await expect.poll(state, { timeout: 120_000 }).toBe('stopped');
    const guestAgent = page.locator('dt', { hasText: /^Guest agent$/ }).locator('xpath=following-sibling::dd[1]');
    await expect.poll(() => guestAgent.textContent(), { timeout: 30_000 }).toBe('not running');
    await page.getByRole('button', { name: /^Tasks/ }).click();
    await page.getByRole('list', { name: 'Recent tasks' }).getByText('Stop page-b').waitFor();
    await expect
      .poll(() => page.getByRole('list', { name: 'Recent tasks' }).locator('li').first().textContent(), {
        timeout: 60_000,
      })
      .toMatch(/succeeded/);
    await page.keyboard.press('Escape');
    await page.reload();
    await expect.poll(() => page.getByTestId('vm-state-badge').textContent()).toBe('stopped');
    await tab('terminal').click();
    await page.getByText('Serial console (VM not running)').waitFor();
    await page.getByText('The VM is stopped: there is no console to attach to.').waitFor();
    expect(await page.getByRole('button', { name: 'Reconnect' }).isDisabled()).toBe(true);
    await shot('stopped-terminal');

    await menu('page', 'Clone…');
    await page.getByLabel('Clone name').fill('page-b-clone');
    await confirm('Clone');
    await page.getByRole('heading', { name: 'page-b-clone' }).waitFor({ timeout: 30_000 });
    const cloneId = /\/vms\/([0-9a-f-]{36})/.exec(page.url())?.[1] ?? '';
    expect((await getVm(cloneId)).name).toBe('page-b-clone');

    await menu('row', 'Start');
    await confirm('Start');
    await expect.poll(state, { timeout: BOOT_MS }).toBe('running');

    await page.goto(`${s.base}/vms/${vm.id}`);
    await page.getByRole('button', { name: 'Ctrl-Alt-Del', exact: true }).click();
    await confirm('Ctrl-Alt-Del');
    const events = async () =>
      (await s.api<{ items: { action: string }[] }>('GET', `/v1/events?resource_id=${vm.id}`)).body.items.map(
        (e) => e.action,
      );
    await expect.poll(events).toContain('ctrl-alt-del');

    currentName = 'page-b-clone';
    await expect.poll(() => state(cloneId), { timeout: 120_000 }).toMatch(/^(stopped|running)$/);
    await menu('row', 'Delete…');
    await confirm('Delete');
    await expect.poll(async () => (await s.api('GET', `/v1/vms/${cloneId}`)).status, { timeout: 120_000 }).toBe(404);
    await shot('actions-list');
    // The task panel sees a delete end as a 404 of the VM; Chromium logs that answer, the app shows no error.
    expect(errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
  });

  it('holds a boot-time change of a running VM in one notice and applies it with Apply and restart; Reboot stops and starts it', async () => {
    // After Ctrl-Alt-Del the demo guest may be powering off: let it settle, then have it running.
    await expect.poll(async () => (await getVm(vm.id)).state, { timeout: 120_000 }).toMatch(/^(stopped|running)$/);
    if ((await getVm(vm.id)).state === 'stopped') await s.api('POST', `/v1/vms/${vm.id}/start`);
    await expect.poll(async () => (await getVm(vm.id)).state, { timeout: BOOT_MS }).toBe('running');
    errors.length = 0;

    await page.goto(`${s.base}/vms/${vm.id}/config`);
    await page.getByLabel('vCPUs').fill('2');
    await page.getByRole('button', { name: 'Save machine config' }).click();
    const notice = page.locator('[data-needs-restart]');
    await notice.getByText('Held until a restart: Machine config').waitFor();
    // One notice for the whole tab, not one per card.
    expect(await notice.count()).toBe(1);
    expect((await getVm(vm.id)).vcpu).toBe(1);
    await shot('held-for-restart');
    const bootedBefore = (await getVm(vm.id)).booted_at;
    await notice.getByRole('button', { name: 'Apply and restart' }).click();
    await expect
      .poll(
        async () => {
          const v = await getVm(vm.id);
          return [v.vcpu, v.state, v.booted_at !== bootedBefore];
        },
        { timeout: 2 * BOOT_MS },
      )
      .toEqual([2, 'running', true]);
    // Nothing is held any more; the running VM's notice only explains which settings need a stop.
    await expect.poll(() => notice.getByText(/Held until a restart/).count()).toBe(0);
    expect(await notice.getByRole('button', { name: 'Apply and restart' }).count()).toBe(0);

    const bootedApplied = (await getVm(vm.id)).booted_at;
    await page.goto(`${s.base}/vms/${vm.id}`);
    await page.getByRole('button', { name: 'Reboot', exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Reboot', exact: true }).click();
    await expect
      .poll(
        async () => {
          const v = await getVm(vm.id);
          return v.state === 'running' && v.booted_at !== bootedApplied;
        },
        { timeout: 2 * BOOT_MS },
      )
      .toBe(true);
    const actions = (
      await s.api<{ items: { action: string }[] }>('GET', `/v1/events?resource_id=${vm.id}&limit=100`)
    ).body.items.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['stop', 'start']));
    expect(errors.filter((e) => !/status of 409/.test(e))).toEqual([]);
  });

  it('forces a running VM off: the VMM is killed at once, the VM ends stopped and its event says forced', async () => {
    const running = await getVm(vm.id);
    expect(running.state).toBe('running');
    expect(running.pid).toBeGreaterThan(1);
    await page.goto(`${s.base}/vms/${vm.id}`);
    await page.getByRole('button', { name: 'Force off', exact: true }).click();
    await page
      .getByRole('dialog')
      .getByText(/like pulling the plug/)
      .waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Force off', exact: true }).click();
    await expect.poll(async () => (await getVm(vm.id)).state, { timeout: 60_000 }).toBe('stopped');
    // The agent runs in this process's namespace: the VMM it ran is gone, not waiting for an ACPI power-down.
    expect(() => process.kill(running.pid as number, 0)).toThrow();
    const events = (
      await s.api<{ items: { action: string; detail: Record<string, unknown> }[] }>(
        'GET',
        `/v1/events?resource_id=${vm.id}&limit=20`,
      )
    ).body.items;
    expect(events.find((e) => e.action === 'stopped')?.detail).toMatchObject({ forced: true });
    // As after Stop above, the page is reloaded: its badge stayed at stopping without (noted in the issue).
    await page.reload();
    await expect.poll(() => page.getByTestId('vm-state-badge').textContent(), { timeout: 30_000 }).toBe('stopped');
    await shot('forced-off');
  });
});
