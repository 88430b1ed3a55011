import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack } from './support/stack.ts';
import { ARTIFACTS, ensureWebBuilt, launchChromium, login, newPage, unlabelledControls } from './web-harness.ts';

const ADMIN_PASSWORD = 'stack-admin-password';
const GUEST = { username: 'alice', password: 'wonderland-42' };
const BOOT_MS = 180_000;

// busybox ash asks for the cursor position (ESC [6n) after its prompt; xterm answers it, so only `$ ` shows.
// A shell prompt ends its line, unless a kernel message (`[   12.345678] …`) was printed right after it.
const PROMPT = /[$#] ?(?:$|\[ *\d+\.\d+\])/m;

/** Issue 6 from a user's seat: everything below happens in Chromium against real QEMU guests. */
describe('web console with real VMs: wizard, terminal, metrics, snapshots, templates', () => {
  let s: Stack;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let errors: string[];
  let vmUrl = '';

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `web-vms-${name}.png`), fullPage: true });

  /** The State row of the VM detail page's Overview tab. */
  const stateCell = (): Locator => page.locator('dt', { hasText: /^State$/ }).locator('xpath=following-sibling::dd[1]');

  /** Polls the Overview's State row; a VM that lands in `error` fails at once with the error the page shows. */
  const waitForState = async (state: RegExp, timeout = BOOT_MS): Promise<void> => {
    const seen = async () => {
      const text = (await stateCell().textContent()) ?? '';
      if (text === 'error' && !state.test(text))
        throw new Error(`VM failed: ${await page.getByText(/^Last error:/).textContent()}`);
      return text;
    };
    await expect.poll(seen, { timeout, interval: 500 }).toMatch(state);
  };

  /** Lines the xterm DOM renderer shows on screen right now. */
  const screenText = async (): Promise<string> =>
    (await page.locator('.xterm-rows > div').allTextContents())
      .map((row) => row.replace(/\u00a0/g, ' ').trimEnd())
      .join('\n')
      .trimEnd();

  /** The screen after the last occurrence of `text` ('' while it is not there). */
  const screenAfter = async (text: string): Promise<string> => {
    const screen = await screenText();
    const at = screen.lastIndexOf(text);
    return at < 0 ? '' : screen.slice(at + text.length);
  };

  const waitForScreen = async (pattern: RegExp, timeout = 60_000): Promise<void> => {
    await expect.poll(screenText, { timeout, interval: 200 }).toMatch(pattern);
  };

  beforeAll(async () => {
    await ensureWebBuilt();
    s = await startStack(TEST_NETWORKS.webVms);
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    ({ page, errors } = await newPage(ctx));
  });
  afterAll(async () => {
    await ctx?.close();
    await browser?.close();
    await s?.close();
  });

  it('signs in, creates a VM through the wizard and sees it reach running', async () => {
    await login(page, s.base, ADMIN_PASSWORD);
    // Chromium itself logs the 401 of the session check an anonymous visitor's first page makes.
    errors.length = 0;

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Virtual machines' }).click();
    await page.getByRole('heading', { name: 'Virtual machines', exact: true }).waitFor();
    await page.goto(`${s.base}/vms/new`);
    const wizard = page.getByRole('form', { name: 'Create VM' });
    const next = () => wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByLabel('Name', { exact: true }).fill('web-a');
    await next();
    await wizard.getByLabel('Username').fill(GUEST.username);
    await wizard.getByLabel('Password').fill(GUEST.password);
    await next();
    // Capacity is checked at the Machine step, naming the short resource (the machine has far fewer than 32 × 4).
    await wizard.getByLabel('vCPUs').fill('32');
    await next();
    const vcpus = wizard.getByLabel('vCPUs');
    await expect.poll(() => vcpus.getAttribute('aria-invalid')).toBe('true');
    const why = await page.locator(`[id="${await vcpus.getAttribute('aria-describedby')}"]`).textContent();
    expect(why).toMatch(/^not enough vCPU: 32 asked, host .+ has \d+ free$/);
    await shot('wizard-machine-shortfall');
    await vcpus.fill('1');
    await next();
    await wizard.getByLabel('Kernel').selectOption(s.images.kernel);
    await wizard.getByLabel('Initrd').selectOption(s.images.initrd);
    await wizard.getByLabel('Root filesystem').selectOption(s.images.rootfs);
    expect(await unlabelledControls(page)).toEqual([]);
    await shot('wizard-boot-source');
    while (!(await wizard.getByRole('button', { name: 'Create VM' }).count())) await next();
    await shot('wizard-review');
    // A human review (image names, sizes) and the same request for the CLI and the API, password left out.
    const review = wizard.getByRole('region', { name: 'Review: Machine' });
    expect(await review.textContent()).toContain('1 vCPU');
    const boot = await wizard.getByRole('region', { name: 'Review: Boot source' }).textContent();
    expect(boot).not.toContain(s.images.kernel);
    const cli = await wizard.getByRole('region', { name: 'Equivalent CLI command' }).locator('pre').textContent();
    expect(cli).toMatch(/^nqvm vms create/);
    expect(cli).toContain('--name web-a');
    expect(cli).toContain('--password "$NQVM_VM_PASSWORD"');
    expect(cli).not.toContain(GUEST.password);
    const http = await wizard.getByRole('region', { name: 'Equivalent API request' }).locator('pre').textContent();
    expect(http).toContain('POST');
    expect(JSON.parse(http?.split("-d '")[1]?.replace(/'$/, '') ?? '{}')).toMatchObject({ name: 'web-a', vcpu: 1 });
    await wizard.getByRole('button', { name: 'Create VM' }).click();

    await page.waitForURL(/\/vms\/[0-9a-f-]{36}$/);
    vmUrl = page.url();
    await page.getByRole('heading', { name: 'web-a' }).waitFor();
    await waitForState(/^running$/);
    await shot('detail-running');
    expect(errors).toEqual([]);
  });

  it('logs into the guest in the Terminal tab and shows the output of a command', async () => {
    await page.getByRole('tab', { name: 'terminal' }).click();
    await page.getByText('Serial console (open)').waitFor({ timeout: 30_000 });
    await page.getByText(GUEST.username, { exact: true }).waitFor();
    const term = page.getByRole('textbox', { name: 'Terminal of web-a' });
    await term.focus();
    // The guest may still be booting: press Enter until getty (or an open shell) answers.
    await expect
      .poll(
        async () => {
          await page.keyboard.press('Enter');
          return screenText();
        },
        { timeout: BOOT_MS, interval: 3_000 },
      )
      .toMatch(/login: *$|[$#] *$/m);
    if (/login: *$/m.test(await screenText())) {
      // Kernel messages on the serial console may follow a prompt on its line: look only after what was typed.
      await page.keyboard.type(GUEST.username);
      await page.keyboard.press('Enter');
      await expect.poll(() => screenAfter(GUEST.username), { timeout: 60_000, interval: 200 }).toMatch(/Password:/);
      await page.keyboard.type(GUEST.password);
      await page.keyboard.press('Enter');
      await expect.poll(() => screenAfter('Password:'), { timeout: 60_000, interval: 200 }).toMatch(PROMPT);
    }
    await page.keyboard.type('echo nqvm-$((6*7))');
    await page.keyboard.press('Enter');
    await waitForScreen(/^nqvm-42\s*$/m, 30_000);
    await shot('terminal');
    expect(errors).toEqual([]);
  });

  it('draws live metrics: the chart on the Metrics tab gains points', async () => {
    await page.getByRole('tab', { name: 'metrics' }).click();
    const chart = page.getByRole('img', { name: /^CPU \(%\), last 60 seconds: \d+ points$/ });
    const points = async () => Number(await chart.getAttribute('data-points'));
    await expect.poll(points, { timeout: 30_000 }).toBeGreaterThan(0);
    const first = await points();
    await expect.poll(points, { timeout: 30_000 }).toBeGreaterThanOrEqual(first + 3);
    expect(await page.getByText(/Live metrics disconnected/).count()).toBe(0);
    await shot('metrics');
    expect(errors).toEqual([]);
  });

  it('creates a Full snapshot in the Snapshots tab and instantiates it into a VM that reaches running', async () => {
    // An instance re-addresses itself through the guest agent it resumes with, so that agent must be up first.
    const vmId = new URL(vmUrl).pathname.split('/').pop() ?? '';
    await expect
      .poll(
        async () => (await s.api<{ guest_ready_at: string | null }>('GET', `/v1/vms/${vmId}`)).body.guest_ready_at,
        {
          timeout: BOOT_MS,
          interval: 500,
        },
      )
      .toBeTruthy();
    // No reload: the page learns of guest_ready_at live. It once missed it under load when the guest reported while
    // the events socket was still connecting; the console now re-reads what is on screen when the socket is ready.
    await page.getByRole('tab', { name: 'overview' }).click();
    const guestAgent = page.locator('dt', { hasText: /^Guest agent$/ }).locator('xpath=following-sibling::dd[1]');
    await expect.poll(() => guestAgent.textContent(), { timeout: 30_000, interval: 500 }).toBe('ready');
    await page.getByRole('tab', { name: 'snapshots' }).click();
    await page.getByLabel('Snapshot name').fill('web-a-snap');
    await page.getByRole('button', { name: 'Full snapshot' }).click();
    const row = page.getByRole('row', { name: /web-a-snap/ });
    await expect.poll(() => row.textContent(), { timeout: 120_000, interval: 500 }).toMatch(/ready/);
    expect(await row.textContent()).toMatch(/Full/);
    await shot('snapshots');
    await row.getByRole('button', { name: 'Instantiate' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('New VM name').fill('web-a-restored');
    expect(await unlabelledControls(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Instantiate' }).click();
    await page.getByRole('heading', { name: 'web-a-restored' }).waitFor({ timeout: 30_000 });
    expect(page.url()).not.toBe(vmUrl);
    await waitForState(/^running$/);
    await shot('snapshot-instance');
    expect(errors).toEqual([]);
  });

  it('saves the VM as a template and creates a VM from it on the Templates page', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Templates' }).click();
    await page.getByRole('heading', { name: 'Templates', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Save VM as template' }).click();
    let dialog = page.getByRole('dialog');
    await dialog.getByLabel('VM', { exact: true }).selectOption({ label: 'web-a' });
    await dialog.getByLabel('Template name').fill('web-a-template');
    expect(await unlabelledControls(page)).toEqual([]);
    await dialog.getByRole('button', { name: 'Save template' }).click();
    const card = page.getByRole('article', { name: 'web-a-template' });
    await card.waitFor();
    await shot('templates');
    await card.getByRole('button', { name: 'Create VM' }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('VM name').fill('web-from-template');
    await dialog.getByRole('button', { name: 'Create', exact: true }).click();
    await page.getByRole('heading', { name: 'web-from-template' }).waitFor({ timeout: 30_000 });
    await waitForState(/^(creating|starting|running)$/, 30_000);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Virtual machines' }).click();
    for (const name of ['web-a', 'web-a-restored', 'web-from-template'])
      await page.getByRole('link', { name, exact: true }).waitFor();
    await shot('list');
    expect(errors).toEqual([]);
  });
});
