import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { jsonClient, kill, ROOT, seedDemoImages, startNqvmUp } from './support/processes.ts';
import { inPrivateNetns, until } from './support/stack.ts';

const CLI = path.join(ROOT, 'packages/cli/bin/nqvm.ts');
const NET = TEST_NETWORKS.nqvmUp;
const BASE = `http://127.0.0.1:${NET.managerPort}`;

/** `nqvm up` as a process, generating the admin password (none given). */
const startUp = (dataDir: string) => startNqvmUp(dataDir, NET, { NQVM_ADMIN_PASSWORD: '' });

async function api<T>(
  method: string,
  url: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  return jsonClient(BASE, () => token ?? '')<T>(method, url, body);
}

/** Issue 3 item 9 from a user's seat: the README's start command brings up a working one-host nqvm. */
describe('nqvm up (the README start command): manager + agent + demo images on one host', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'nqvm-up-'));
  // mkdtemp makes it 0700; VMMs run as their own unprivileged users and must reach their VM directories under it.
  chmodSync(dataDir, 0o711);
  const started: ReturnType<typeof startUp>[] = [];
  const first = { password: '', hostId: '' };
  const stopAll = async () => {
    for (const u of started.splice(0)) await kill(u, 'SIGTERM');
  };

  afterAll(async () => {
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says clearly that it needs root when run as another user', () => {
    // The checkout may sit under a directory only root can enter (`mktemp -d` makes them 0700), where the other
    // user could not even load Node's modules. Show it to them at a world-readable path, bind-mounted in a mount
    // namespace of the command's own: nothing changes on the host. The script is fixed; paths come as arguments.
    const view = mkdtempSync(path.join(tmpdir(), 'nqvm-up-view-'));
    chmodSync(view, 0o755);
    try {
      const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath];
      const r = spawnSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          '--',
          'sh',
          '-c',
          'mount --bind "$1" "$2" && cd "$2" && shift 2 && exec "$@"',
          'sh',
          ROOT,
          view,
          ...asNobody,
          '--import',
          'tsx',
          path.join(view, path.relative(ROOT, CLI)),
          'up',
        ],
        { env: { ...process.env, HOME: '/tmp' }, encoding: 'utf8', timeout: 60_000 },
      );
      expect(r.stderr).not.toMatch(/Cannot find|EACCES/);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/nqvm up needs root/);
      expect(r.stderr).toMatch(/bridge and TAP/);
    } finally {
      rmdirSync(view); // never recursive: were the bind mount ever visible here, it would reach the checkout
    }
  });

  it('starts, prints the URL and the admin password once, and a VM created with them boots', async () => {
    expect(inPrivateNetns()).toBe(true);
    // Offline here: give `nqvm up` the demo build and the Debian packages it was made from, as a first run would leave.
    seedDemoImages(dataDir);

    const up = startUp(dataDir);
    started.push(up);
    await until(
      'nqvm up to be ready',
      async () => up.output().includes('nqvm is up') || up.proc.exitCode !== null,
      120_000,
    );
    expect(up.output()).toContain(`open ${BASE}`);
    expect(up.output()).toContain('demo images registered: demo-kernel, demo-initrd, demo-rootfs');
    // node20 is the demo rootfs as it is: always registered (python3 once scripts/build-runtime-images.ts ran).
    expect(up.output()).toMatch(/function runtime images registered: runtime-node20\b/);
    const password = /admin credentials \(shown once\): admin \/ (\S+)/.exec(up.output())?.[1];
    expect(password).toBeTruthy();

    const login = await api<{ token: string }>('POST', '/v1/auth/login', undefined, { username: 'admin', password });
    expect(login.status).toBe(200);
    const token = login.body.token;
    const hosts = await until(
      'the local agent to be healthy',
      async () => {
        const h = await api<{ items: { id: string; health: string }[] }>('GET', '/v1/hosts', token);
        return h.body.items.length === 1 && h.body.items[0]?.health === 'healthy' && h.body.items;
      },
      30_000,
    );
    expect(hosts).toHaveLength(1);
    first.password = password ?? '';
    first.hostId = hosts[0]?.id ?? '';
    const images = await api<{ items: { id: string; name: string; state: string }[] }>('GET', '/v1/images', token);
    const id = (name: string) => images.body.items.find((i) => i.name === name && i.state === 'ready')?.id;

    const vm = await api<{ id: string; state: string }>('POST', '/v1/vms', token, {
      name: 'first-vm',
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: id('demo-kernel'),
      initrd_image_id: id('demo-initrd'),
      rootfs_image_id: id('demo-rootfs'),
    });
    expect(vm.status).toBe(202);
    const ran = await api<{ state: string }>('GET', `/v1/vms/${vm.body.id}/wait?state=running&timeout=120`, token);
    expect(ran.body.state).toBe('running');
    expect((await api('DELETE', `/v1/vms/${vm.body.id}`, token)).status).toBeLessThan(300);
    await until(
      'the VM to be gone',
      async () => (await api('GET', `/v1/vms/${vm.body.id}`, token)).status === 404,
      60_000,
    );

    up.proc.kill('SIGTERM');
    expect(await up.exited).toBe(0);
  });

  it('starts again on the same data: no rebuild, no new password, the same host', async () => {
    await stopAll();
    const again = startUp(dataDir);
    started.push(again);
    await until(
      'nqvm up to be ready',
      async () => again.output().includes('nqvm is up') || again.proc.exitCode !== null,
      120_000,
    );
    expect(again.output()).not.toContain('building demo images');
    expect(again.output()).not.toContain('shown once');
    expect(again.output()).toContain('admin user exists');
    const login = await api<{ token: string }>('POST', '/v1/auth/login', undefined, {
      username: 'admin',
      password: first.password,
    });
    expect(login.status).toBe(200);
    const hosts = await api<{ items: { id: string }[] }>('GET', '/v1/hosts', login.body.token);
    expect(hosts.body.items.map((h) => h.id)).toEqual([first.hostId]);
    again.proc.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
