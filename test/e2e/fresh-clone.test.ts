import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { ROOT, seedDemoImages, spawnCollected } from './support/processes.ts';
import { inPrivateNetns, until } from './support/stack.ts';

const NET = TEST_NETWORKS.freshClone;
const BIND = `127.0.0.1:${NET.managerPort}`;
const BASE = `http://${BIND}`;

/** The README's start command exactly as written, in the clone; settings only through the documented variables. */
function npmStart(clone: string, dataDir: string) {
  return spawnCollected('npm', ['start'], {
    cwd: clone,
    detached: true, // its own process group: npm, bash and node stop together
    env: {
      ...process.env,
      NQVM_DATA_DIR: dataDir,
      MANAGER_BIND: BIND,
      AGENT_BIND: `127.0.0.1:${NET.agentPort}`,
      NQVM_NETWORK_CIDR: NET.cidr,
      FC_BRIDGE: NET.bridge,
      NQVM_ADMIN_PASSWORD: '',
    },
  });
}

/** Issue 15 item 1 from a newcomer's seat: a fresh clone, `npm start`, the console and a login. */
describe('a fresh clone started with the README command (offline, npm packages seeded)', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'nqvm-clone-'));
  const clone = path.join(work, 'nqvm');
  const dataDir = path.join(work, 'data');
  const running: ReturnType<typeof npmStart>[] = [];
  let password = '';

  afterAll(async () => {
    for (const r of running)
      if (r.proc.exitCode === null && r.proc.pid) {
        process.kill(-r.proc.pid, 'SIGTERM');
        await r.exited;
      }
    rmSync(work, { recursive: true, force: true });
  });

  it('shows and saves the admin credentials even when the first start fails building the demo images', async () => {
    expect(inPrivateNetns()).toBe(true);
    const cloned = spawnSync('git', ['clone', '--quiet', ROOT, clone], { encoding: 'utf8' });
    expect(cloned.status, cloned.stderr).toBe(0);
    // What `npm ci` would install, as a machine that ran it before has it (this namespace has no network). Hard
    // links: nothing in a start writes into node_modules' files.
    const seeded = spawnSync('cp', ['-al', path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules')]);
    expect(seeded.status).toBe(0);
    const stamp = path.join(clone, 'node_modules', '.package-lock.json');
    const now = new Date();
    utimesSync(stamp, now, now);
    expect(existsSync(path.join(clone, 'packages/web/dist'))).toBe(false);

    // No Debian packages reachable and none cached: the demo build fails.
    const first = npmStart(clone, dataDir);
    running.push(first);
    const code = await first.exited;
    const out = first.output();
    expect(code).not.toBe(0);
    expect(out).toMatch(/building the demo images failed/);
    expect(out).toMatch(/run the same command again/);
    password = /admin credentials \(shown once\): admin \/ (\S+)/.exec(out)?.[1] ?? '';
    expect(password).not.toBe('');
    const file = path.join(dataDir, 'admin-credentials');
    expect(out).toContain(`saved in ${file} (readable by root only)`);
    expect(out.indexOf('admin credentials (shown once)')).toBeLessThan(out.indexOf('building demo images'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toContain(`password=${password}\n`);
  });

  it('a second start succeeds and serves the real console, where the shown credentials log in', async () => {
    expect(password).not.toBe('');
    // The Debian packages the demo build needs, as a first run with network would have left them (in place of
    // the empty download directory the failed run left).
    rmSync(path.join(dataDir, 'cache', 'debs'), { recursive: true, force: true });
    seedDemoImages(dataDir);

    const again = npmStart(clone, dataDir);
    running.push(again);
    await until(
      'npm start to be up',
      async () => again.output().includes('nqvm is up') || again.proc.exitCode !== null,
      300_000,
    );
    const out = again.output();
    expect(out).toContain(`open ${BASE}`);
    expect(out).toContain(`admin user exists: its credentials are in ${path.join(dataDir, 'admin-credentials')}`);
    expect(out).toContain('demo images registered');

    const html = await (await fetch(`${BASE}/`)).text();
    expect(html).not.toContain('not built');
    expect(html).toContain('<div id="root">');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect((await fetch(`${BASE}${script}`)).status).toBe(200);
    const login = await fetch(`${BASE}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password }),
    });
    expect(login.status).toBe(200);

    if (again.proc.pid) process.kill(-again.proc.pid, 'SIGTERM');
    await again.exited;
  });
});
