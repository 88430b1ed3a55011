import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_PASSWORD,
  ARTIFACTS,
  buildWeb,
  newPage,
  startWebEnv,
  unlabelledControls,
  type WebEnv,
} from './web-harness.ts';

const PAGES: [string, string, string][] = [
  ['dashboard', '/', 'Dashboard'],
  ['vms', '/vms', 'Virtual machines'],
  ['vm-create', '/vms/new', 'Create a VM'],
  ['registry', '/registry', 'Registry'],
  ['templates', '/templates', 'Templates'],
  ['hosts', '/hosts', 'Hosts'],
  ['events', '/events', 'Events'],
  ['users', '/users', 'Users'],
  ['tokens', '/tokens', 'API tokens'],
  ['settings', '/settings', 'Settings'],
];

/** Serves `size` bytes in small chunks with pauses so an import takes a visible few seconds. */
function slowFileServer(size: number): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    let sent = 0;
    const chunk = Buffer.alloc(256 * 1024, 7);
    const tick = (): void => {
      if (sent >= size) {
        res.end();
        return;
      }
      const n = Math.min(chunk.length, size - sent);
      sent += n;
      res.write(chunk.subarray(0, n));
      setTimeout(tick, 150);
    };
    req.on('close', () => (sent = size));
    tick();
  });
  return new Promise((done) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      done({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/rootfs.img` });
    }),
  );
}

describe('web console in Chromium against a real manager', () => {
  let env: WebEnv;
  let ctx: BrowserContext;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    await buildWeb();
    // No reconciler: the VMs below live on a host whose agent never answers, and stay as they are stored.
    // The URL import below reads from a file server on loopback, which imports may reach only when allowed.
    env = await startWebEnv({
      MANAGER_RECONCILER_DISABLED: 'true',
      NQVM_HOST_HEARTBEAT_TIMEOUT_S: '3600',
      NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.0/8',
    });
    ctx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    ({ page, errors } = await newPage(ctx));
  });
  afterAll(async () => {
    await ctx?.close();
    await env?.close();
  });

  it('sends an anonymous visitor to the login page and signs the admin in', async () => {
    await page.goto(`${env.baseUrl}/hosts`);
    await page.waitForURL(/\/login\?next=%2Fhosts/);
    expect(await unlabelledControls(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'web-login.png'), fullPage: true });
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/invalid|password|credentials/i);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Hosts' }).waitFor();
    errors.length = 0; // the failed login's 401 is logged by Chromium itself
  });

  it('renders every page without console errors, with labelled controls, at 1280×800 and narrow', async () => {
    for (const [name, path, heading] of PAGES) {
      await page.goto(`${env.baseUrl}${path}`);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await expect.poll(() => page.getByText('Loading…').count()).toBe(0);
      expect(await unlabelledControls(page), name).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `web-${name}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${env.baseUrl}/`);
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Registry' }).click();
    await page.getByRole('heading', { name: 'Registry' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'web-registry-narrow.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(errors).toEqual([]);
  });

  it('creates an API token that is shown once and listed afterwards', async () => {
    await page.goto(`${env.baseUrl}/tokens`);
    await page.getByLabel('Token name').fill('e2e-token');
    await page.getByRole('button', { name: 'Create token' }).click();
    const value = await page.getByTestId('new-token-value').textContent();
    expect(value?.length).toBeGreaterThan(20);
    const row = page.locator('tr[data-token-name="e2e-token"]');
    await row.waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'web-settings-token.png'), fullPage: true });
    await page.reload();
    await row.waitFor();
    expect(await page.getByTestId('new-token-value').count()).toBe(0);
    expect(await page.content()).not.toContain(value);
    const me = await fetch(`${env.baseUrl}/v1/auth/me`, { headers: { authorization: `Bearer ${value}` } });
    expect(me.status).toBe(200);
  });

  it('shows the API field error next to the field it names', async () => {
    await page.goto(`${env.baseUrl}/registry`);
    await page.getByRole('button', { name: 'Import from path or URL' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('bad name!');
    await dialog.getByRole('textbox', { name: 'URL' }).fill('http://127.0.0.1:9/x.img');
    expect(await unlabelledControls(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Import' }).click();
    const name = dialog.getByLabel('Name');
    await expect.poll(() => name.getAttribute('aria-invalid')).toBe('true');
    const describedBy = await name.getAttribute('aria-describedby');
    const message = await page.locator(`[id="${describedBy}"]`).textContent();
    expect(message).toMatch(/pattern|must match|invalid/i);
    await page.screenshot({ path: join(ARTIFACTS, 'web-field-error.png') });
    await page.keyboard.press('Escape');
    // Chromium itself logs the expected 400; nothing else may have been logged.
    expect(errors.filter((e) => !/status of 400/.test(e))).toEqual([]);
    errors.length = 0;
  });

  it('imports an image by URL with a visible progress bar until it is ready', async () => {
    const { server, url } = await slowFileServer(6 * 1024 * 1024);
    try {
      await page.goto(`${env.baseUrl}/registry`);
      await page.getByRole('button', { name: 'Import from path or URL' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByLabel('Name').fill('e2e-rootfs');
      await dialog.getByRole('textbox', { name: 'URL' }).fill(url);
      await dialog.getByRole('button', { name: 'Import' }).click();
      const bar = dialog.getByRole('progressbar', { name: 'Import of e2e-rootfs' });
      await bar.waitFor();
      await expect
        .poll(async () => Number(await bar.getAttribute('aria-valuenow')), { timeout: 30_000 })
        .toBeGreaterThan(0);
      const midway = Number(await bar.getAttribute('aria-valuenow'));
      await page.screenshot({ path: join(ARTIFACTS, 'web-import-progress.png') });
      await dialog.getByText('e2e-rootfs is ready').waitFor({ timeout: 60_000 });
      expect(midway).toBeLessThan(100);
      await dialog.getByRole('button', { name: 'Close' }).first().click();
      await page.locator('tr[data-image-name="e2e-rootfs"]').getByText('ready').waitFor();
      expect(errors).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('returns to the page after the session expires and the user signs in again', async () => {
    await page.goto(`${env.baseUrl}/templates`);
    await page.getByRole('heading', { name: 'Templates' }).waitFor();
    await ctx.clearCookies();
    // The user comes back to another page after the session ended: sent to sign in, then to that page. (Within the
    // app the first request to meet the ended session does the same; which request that is depends on what the page
    // refreshes in the background, so this test opens the page.)
    await page.goto(`${env.baseUrl}/hosts`);
    await page.waitForURL(/\/login\?next=%2Fhosts/);
    await page.getByText('Your session ended. Sign in to continue.').waitFor();
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Hosts' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/hosts');
  });

  it('scrolls the windowed list of 1,200 VMs to the last one by keyboard and selects all that match', async () => {
    errors.length = 0; // the session-expiry test's 401 is logged by Chromium itself
    await env.manager.database.withSession((s) =>
      s.exec(`INSERT INTO vms (name, state, vmm, vcpu, mem_mib, kernel_image_id, rootfs_image_id, tags, owner,
        environment, guest_token_hash, guest_token_enc, desired_running)
        SELECT 'late-' || lpad(i::text, 4, '0'), (ARRAY['running','stopped'])[1 + i % 2], 'qemu', 1, 256,
          gen_random_uuid(), gen_random_uuid(), ARRAY['many'], 'owner', 'dev', 'x', 'x', false
        FROM generate_series(1, 1200) AS i`),
    );
    await page.goto(`${env.baseUrl}/vms?search=late-&sort=name&limit=500`);
    await page.getByText('500 shown').waitFor();
    for (const n of [1000, 1200]) {
      await page.getByRole('button', { name: 'Load more' }).click();
      await page.getByText(`${n} shown`).waitFor();
    }
    expect(await page.locator('tr[data-vm-name]').count()).toBeLessThan(100);
    await page.getByRole('link', { name: 'late-0001', exact: true }).focus();
    await page.keyboard.press('End');
    const focused = () => page.evaluate<string | null>('document.activeElement && document.activeElement.textContent');
    await expect.poll(focused).toBe('late-1200');
    expect(await page.getByRole('link', { name: 'late-1200', exact: true }).isVisible()).toBe(true);
    await page.keyboard.press('ArrowUp');
    await expect.poll(focused).toBe('late-1199');
    await page.keyboard.press('Home');
    await expect.poll(focused).toBe('late-0001');
    await page.screenshot({ path: join(ARTIFACTS, 'web-vms-1200-end.png') });

    await page.goto(`${env.baseUrl}/vms?search=late-&sort=name&limit=500`);
    await page.getByText('500 shown').waitFor();
    // Selecting all matching fetches the remaining pages first, so the box turns on after that, not on the click.
    await page.getByLabel('Select all matching VMs').click();
    await page.getByRole('toolbar', { name: 'Bulk actions' }).getByText('1200 selected').waitFor();
    await page.getByRole('toolbar', { name: 'Bulk actions' }).getByRole('button', { name: 'Clear' }).click();
    expect(errors).toEqual([]);
  });

  it('shows an advanced device error from the API at its wizard field, then applies the fix', async () => {
    const upload = async (kind: string, name: string) => {
      const res = await env.manager.request({
        method: 'POST',
        url: `/v1/images/upload?name=${name}&kind=${kind}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from(`${name} bytes`),
      });
      expect(res.statusCode, res.body).toBe(201);
      return (res.json() as { id: string }).id;
    };
    const kernel = await upload('kernel', 'wiz-kernel');
    const rootfs = await upload('rootfs', 'wiz-rootfs');
    // A host that registered and reported capacity; its agent (port 9) never answers, so nothing boots.
    const reg = await env.manager.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await env.manager.joinToken(), name: 'web-host', addr: 'http://127.0.0.1:9' },
    });
    const host = reg.json() as { id: string; secret: string };
    const hb = await env.manager.app.inject({
      method: 'POST',
      url: `/v1/hosts/${host.id}/heartbeat`,
      headers: { authorization: `Bearer ${host.secret}` },
      payload: {
        capacity: { cpus: 4, memory_mib: 4096, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
        vms: [],
      },
    });
    expect(hb.statusCode, hb.body).toBe(200);

    await page.goto(`${env.baseUrl}/vms/new`);
    await page.getByLabel('Name').fill('wiz-devices');
    await page.getByRole('button', { name: '4. Boot source' }).click();
    await page.getByLabel('Kernel').selectOption(kernel);
    await page.getByLabel('Root filesystem').selectOption(rootfs);
    await page.getByRole('button', { name: '5. Network' }).click();
    await page.getByRole('button', { name: 'Receive (RX) rate limit: 10 MB/s' }).click();
    await page.getByRole('button', { name: '6. Advanced' }).click();
    await page.getByLabel('Boot right after creation').uncheck();
    await page.getByLabel('Serve metadata (MMDS) on eth0').check();
    await page.getByLabel('MMDS data (JSON)').fill('{"broken": ');
    await page.getByLabel('Set the VMM log level').check();
    await page.getByLabel('Logger level').selectOption('Debug');
    expect(await unlabelledControls(page)).toEqual([]);
    await page.getByRole('button', { name: '7. Review' }).click();
    await page.getByRole('button', { name: 'Create VM' }).click();
    // Caught before any request: invalid JSON, shown under the MMDS field.
    const mmds = page.getByLabel('MMDS data (JSON)');
    await expect.poll(() => mmds.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator(`[id="${await mmds.getAttribute('aria-describedby')}"]`).textContent()).toMatch(
      /invalid JSON/,
    );
    await page.getByLabel('Serve metadata (MMDS) on eth0').uncheck();
    await page.getByRole('button', { name: '7. Review' }).click();
    await page.getByRole('button', { name: 'Create VM' }).click();
    // Refused by the API after the (stopped) VM exists: shown under the logger level, on the Advanced step.
    const level = page.getByLabel('Logger level');
    await expect.poll(() => level.getAttribute('aria-invalid'), { timeout: 30_000 }).toBe('true');
    const message = await page.locator(`[id="${await level.getAttribute('aria-describedby')}"]`).textContent();
    expect(message).toMatch(/Debug/);
    await page.getByText('wiz-devices was created (stopped)').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'web-wizard-device-error.png'), fullPage: true });
    await level.selectOption('Info');
    await page.getByRole('button', { name: '7. Review' }).click();
    await page.getByRole('button', { name: 'Apply settings' }).click();
    await page.waitForURL(/\/vms\/[0-9a-f-]{36}$/);
    const vms = await env.manager.request({ method: 'GET', url: '/v1/vms?search=wiz-devices' });
    const vm = (vms.json() as { items: { id: string; state: string }[] }).items;
    expect(vm).toHaveLength(1);
    expect(vm[0]?.state).toBe('stopped');
    const nics = await env.manager.request({ method: 'GET', url: `/v1/vms/${vm[0]?.id}/nics` });
    expect(nics.json().items[0].rx_rate_limiter).toEqual({ bandwidth: { size: 10_000_000, refill_time: 1000 } });
    expect(errors.filter((e) => !/status of 422/.test(e))).toEqual([]);
    errors.length = 0;
  });

  it('edits the machine config and a NIC limit of a stopped VM, and warns on a running one', async () => {
    const list = await env.manager.request({ method: 'GET', url: '/v1/vms?search=wiz-devices' });
    const id = (list.json() as { items: { id: string }[] }).items[0]?.id;
    await page.goto(`${env.baseUrl}/vms/${id}/config`);
    await page.getByLabel('vCPUs').fill('2');
    await page.getByLabel('Memory (MiB)').fill('512');
    expect(await unlabelledControls(page)).toEqual([]);
    await page.getByRole('button', { name: 'Save machine config' }).click();
    await page.getByText('Machine config: takes effect at the next boot').waitFor();
    await page.reload();
    await expect.poll(() => page.getByLabel('vCPUs').inputValue()).toBe('2');
    expect(await page.getByLabel('Memory (MiB)').inputValue()).toBe('512');
    const vm = await env.manager.request({ method: 'GET', url: `/v1/vms/${id}` });
    expect(vm.json()).toMatchObject({ vcpu: 2, mem_mib: 512 });

    await page.getByRole('tab', { name: 'network' }).click();
    await page.getByRole('button', { name: 'Edit limits of eth0' }).click();
    await page.getByRole('button', { name: 'TX limit of eth0: 1 GB/s' }).click();
    await page.getByLabel('RX limit of eth0 value').fill('');
    expect(await unlabelledControls(page)).toEqual([]);
    await page.getByRole('button', { name: 'Save limits' }).click();
    await page.locator('tr[data-nic-id="eth0"]').getByText('1 GB/s').waitFor();
    expect(await page.locator('tr[data-nic-id="eth0"]').textContent()).toContain('unlimited');
    await page.screenshot({ path: join(ARTIFACTS, 'web-vm-network-limits.png'), fullPage: true });

    const running = await env.manager.request({ method: 'GET', url: '/v1/vms?search=late-0002' });
    const runningId = (running.json() as { items: { id: string; state: string }[] }).items[0]?.id;
    await page.goto(`${env.baseUrl}/vms/${runningId}/config`);
    await page.locator('[data-needs-restart]').first().waitFor();
    await page.getByLabel('vCPUs').fill('3');
    await page.getByRole('button', { name: 'Save machine config' }).click();
    await page.getByRole('alert').filter({ hasText: 'Needs restart' }).filter({ hasText: 'stopped' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'web-vm-config-requires-stop.png'), fullPage: true });
    expect(errors.filter((e) => !/status of 409/.test(e))).toEqual([]);
    errors.length = 0;
  });

  it('sets the logger level and entropy rate in the Config tab, shows them after a reload, as GET /config does', async () => {
    const list = await env.manager.request({ method: 'GET', url: '/v1/vms?search=wiz-devices' });
    const id = (list.json() as { items: { id: string }[] }).items[0]?.id;
    await page.goto(`${env.baseUrl}/vms/${id}/config`);
    await page.getByLabel('Logger level').selectOption('Warning');
    await page.getByRole('button', { name: 'Save logger' }).click();
    await page.getByText('Logger: takes effect at the next boot').waitFor();
    await page.getByRole('button', { name: 'Entropy rate limit: 10 MB/s' }).click();
    expect(await unlabelledControls(page)).toEqual([]);
    await page.getByRole('button', { name: 'Save entropy device' }).click();
    await page.getByText('Entropy device: takes effect at the next boot').waitFor();
    await page.reload();
    await expect.poll(() => page.getByLabel('Logger level').inputValue()).toBe('Warning');
    expect(await page.getByLabel('Entropy rate limit value').inputValue()).toBe('10');
    expect(await page.getByLabel('Entropy rate limit unit').inputValue()).toBe('MB/s');
    expect(await page.locator('[data-current="Entropy device"]').textContent()).toContain('10 MB/s');
    await page.screenshot({ path: join(ARTIFACTS, 'web-vm-config-devices.png'), fullPage: true });
    const cfg = await env.manager.request({ method: 'GET', url: `/v1/vms/${id}/config` });
    expect(cfg.statusCode, cfg.body).toBe(200);
    expect(cfg.json()).toMatchObject({
      machine: { vcpu: 2, mem_mib: 512 },
      logger: { level: 'Warning' },
      entropy: { rate_limiter: { bandwidth: { size: 10_000_000, refill_time: 1000 } } },
      balloon: null,
    });
    expect(errors).toEqual([]);
  });

  it('removes the entropy device in the Config tab after a confirm; it stays gone after a reload, as GET /config shows', async () => {
    const list = await env.manager.request({ method: 'GET', url: '/v1/vms?search=wiz-devices' });
    const id = (list.json() as { items: { id: string }[] }).items[0]?.id;
    const put = await env.manager.request({ method: 'PUT', url: `/v1/vms/${id}/entropy`, payload: {} });
    expect(put.statusCode, put.body).toBe(200);
    await page.goto(`${env.baseUrl}/vms/${id}/config`);
    const current = page.locator('[data-current="Entropy device"]');
    await expect.poll(() => current.textContent()).toContain('virtio-rng');
    await page.getByRole('button', { name: 'Remove entropy device' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await page.getByText('Entropy device removed: takes effect at the next boot').waitFor();
    await page.reload();
    await expect.poll(() => current.textContent()).toContain('none');
    expect(await page.getByRole('button', { name: 'Remove entropy device' }).count()).toBe(0);
    const cfg = await env.manager.request({ method: 'GET', url: `/v1/vms/${id}/config` });
    expect(cfg.statusCode, cfg.body).toBe(200);
    expect(cfg.json()).toMatchObject({ entropy: null, logger: { level: 'Warning' } });
    expect(errors).toEqual([]);
  });

  it('adds a drive to a stopped VM, limits it with a preset, and removes it', async () => {
    const list = await env.manager.request({ method: 'GET', url: '/v1/vms?search=wiz-devices' });
    const id = (list.json() as { items: { id: string }[] }).items[0]?.id;
    await page.goto(`${env.baseUrl}/vms/${id}/storage`);
    await page.getByLabel('Drive id').fill('scratch');
    await page.getByLabel('Size (MiB)').fill('64');
    expect(await unlabelledControls(page)).toEqual([]);
    await page.getByRole('button', { name: 'Add drive' }).click();
    const row = page.locator('tr[data-drive-id="scratch"]');
    await row.getByText('unlimited').waitFor();
    await row.getByRole('button', { name: 'Edit limit of scratch' }).click();
    await page.getByRole('button', { name: 'Bandwidth limit of scratch: 100 MB/s' }).click();
    await page.getByRole('button', { name: 'Save limit' }).click();
    await row.getByText('100 MB/s').waitFor();
    const drive = await env.manager.request({ method: 'GET', url: `/v1/vms/${id}/drives/scratch` });
    expect(drive.json().rate_limiter).toEqual({ bandwidth: { size: 100_000_000, refill_time: 1000 } });
    await page.screenshot({ path: join(ARTIFACTS, 'web-vm-storage.png'), fullPage: true });
    await row.getByRole('button', { name: 'Remove scratch' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await expect.poll(() => row.count()).toBe(0);
    expect(errors).toEqual([]);
  });

  // VM flows (wizard → running → terminal, metrics, snapshots, templates) join here once the agent path
  // boots real VMs in the e2e environment; they reuse `env`, `page` and the helpers above.
});
