import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { buildApp, loadConfig, newPglite, openPglite } from '@nqvm/manager';
import { chromium } from 'playwright-core';

// Usage: npx tsx bench/web-bundle.ts — builds the console, prints the initial JS (gzipped) and the time
// Chromium takes to render the VM list with 1,000 VMs (performance marks set by the list page), next to a
// baseline in the same run and browser: the same list with 10 VMs. The machine is shared and noisy, so each is
// measured ROUNDS times and the median printed with the range.
const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'packages/web/dist');
const VMS = 1000;
const BASELINE = 10;
const ROUNDS = 5;

async function main(): Promise<void> {
  await promisify(execFile)('npm', ['run', 'build', '-w', '@nqvm/web'], { cwd: ROOT });
  const html = readFileSync(join(DIST, 'index.html'), 'utf8');
  const initial = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1] as string);
  const gz = initial.reduce((n, f) => n + gzipSync(readFileSync(join(DIST, f))).length, 0);
  process.stdout.write(
    `initial JS: ${initial.join(', ')} = ${(gz / 1024).toFixed(1)} KiB gzipped (target <= 150, goal 120)\n`,
  );

  const dataDir = mkdtempSync(join(tmpdir(), 'nqvm-bench-web-'));
  const password = 'bench-admin-password';
  const config = loadConfig({ NQVM_DATA_DIR: dataDir, NQVM_ADMIN_PASSWORD: password, NQVM_LOG_LEVEL: 'silent' });
  const database = openPglite(newPglite());
  const { app } = await buildApp(config, { database, logger: false });
  // Rows straight into the table: the list page's cost does not depend on how the VMs came to be.
  await database.withSession((s) =>
    s.exec(`INSERT INTO vms (name, state, vmm, vcpu, mem_mib, kernel_image_id, rootfs_image_id, tags, owner,
      environment, guest_token_hash, guest_token_enc, desired_running)
      SELECT 'bench-' || lpad(i::text, 4, '0'), (ARRAY['running','stopped','paused'])[1 + i % 3], 'qemu', 1 + i % 4,
        256, gen_random_uuid(), gen_random_uuid(), ARRAY['bench', 'group-' || (i % 10)], 'owner-' || (i % 5),
        (ARRAY['dev','prod'])[1 + i % 2], 'x', 'x', false
      FROM generate_series(1, ${VMS}) AS i`),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${base}/login`);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const lastMeasure = async (n: number) => {
      const all = await page.evaluate<number[]>(
        `performance.getEntriesByType('measure').filter((m) => m.name === 'vm-list:render:${n}').map((m) => m.duration)`,
      );
      return all.at(-1) ?? Number.NaN;
    };
    // One round: a first page of `first` VMs, then "Load more" to twice that; both renders measured.
    const round = async (first: number) => {
      const name = (i: number) => `bench-${String(i).padStart(4, '0')}`;
      await page.goto(`${base}/vms?limit=${first}&sort=name`);
      await page.getByText(`${first} shown`).waitFor();
      await page.locator(`tr[data-vm-name="${name(1)}"]`).waitFor();
      const firstPage = await lastMeasure(first);
      await page.getByRole('button', { name: 'Load more' }).click();
      // The list is windowed: wait for its count, then for the last VM's row after scrolling to the end.
      await page.getByText(`${2 * first} shown`).waitFor();
      await page.getByTestId('vm-scroll').hover();
      await page.mouse.wheel(0, 40 * 2 * first);
      await page.locator(`tr[data-vm-name="${name(2 * first)}"]`).waitFor();
      return { firstPage, more: await lastMeasure(2 * first) };
    };
    const results = {
      base: [] as { firstPage: number; more: number }[],
      full: [] as { firstPage: number; more: number }[],
    };
    for (let i = 0; i < ROUNDS; i++) {
      results.base.push(await round(BASELINE / 2));
      results.full.push(await round(VMS / 2));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const fmt = (xs: number[]) =>
      `median ${median(xs).toFixed(1)} ms (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}, ${xs.length} rounds)`;
    const line = (what: string, xs: number[]) => process.stdout.write(`${what}: ${fmt(xs)}\n`);
    line(
      `baseline: first page of ${BASELINE / 2} VMs`,
      results.base.map((r) => r.firstPage),
    );
    line(
      `baseline: list grown to ${BASELINE} VMs`,
      results.base.map((r) => r.more),
    );
    line(
      `first page of ${VMS / 2} VMs`,
      results.full.map((r) => r.firstPage),
    );
    line(
      `VM list render with ${VMS} VMs (grown from ${VMS / 2}; target <= 100)`,
      results.full.map((r) => r.more),
    );
  } finally {
    await browser.close();
    await app.close();
    await database.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
