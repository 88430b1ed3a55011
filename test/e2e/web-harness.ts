import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../../packages/manager/test/support/harness.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const ARTIFACTS = join(ROOT, 'test-artifacts');
export { ADMIN_PASSWORD } from '../../packages/manager/test/support/harness.ts';

/** Builds the SPA once per run (the manager serves packages/web/dist). */
export async function buildWeb(): Promise<void> {
  // vitest sets NODE_ENV=test, which Vite would keep: React's development build, 3× larger, double effects.
  const env = { ...process.env, NODE_ENV: 'production' };
  await promisify(execFile)('npm', ['run', 'build', '-w', '@nqvm/web'], { cwd: ROOT, timeout: 180_000, env });
}

/** True when packages/web/dist is newer than every source file of the console and the API contract. */
function webBuildIsCurrent(): boolean {
  const built = join(ROOT, 'packages/web/dist/index.html');
  if (!existsSync(built)) return false;
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  const sources = ['packages/web/src', 'packages/api/src'].map((d) => newest(join(ROOT, d)));
  return (
    statSync(built).mtimeMs >
    Math.max(
      ...sources,
      statSync(join(ROOT, 'packages/web/index.html')).mtimeMs,
      statSync(join(ROOT, 'packages/web/vite.config.ts')).mtimeMs,
    )
  );
}

/** Builds the SPA unless dist/ is newer than its sources. */
export async function ensureWebBuilt(): Promise<void> {
  if (!webBuildIsCurrent()) await buildWeb();
}

export interface WebEnv {
  manager: TestApp;
  baseUrl: string;
  browser: Browser;
  close(): Promise<void>;
}

/** Debian's Chromium headless; launch() gives every browser a fresh temporary profile (user data dir) of its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** A real manager on PGlite listening on 127.0.0.1:<random>, and Debian's Chromium headless. */
export async function startWebEnv(env: Record<string, string> = {}): Promise<WebEnv> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const manager = await startTestApp('pglite', env);
  await manager.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = manager.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('manager did not listen on TCP');
  const browser = await launchChromium();
  return {
    manager,
    baseUrl: `http://127.0.0.1:${addr.port}`,
    browser,
    async close() {
      await browser.close();
      await manager.close();
    },
  };
}

/** A page that records console errors and uncaught exceptions. */
export async function newPage(ctx: BrowserContext): Promise<{ page: Page; errors: string[] }> {
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors };
}

// Runs in the page; a string because this file is type-checked without DOM types.
const UNLABELLED = `[...document.querySelectorAll('input, select, textarea')]
  .filter((el) => !(el.tagName === 'INPUT' && el.type === 'hidden'))
  .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
  .map((el) => el.outerHTML.slice(0, 160))`;

/** Form controls a screen reader could not name: no <label>, aria-label or aria-labelledby. */
export function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(UNLABELLED);
}

export async function login(page: Page, baseUrl: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
}
