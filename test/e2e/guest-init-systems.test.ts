import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_HINT, SYSTEMD_ROOTFS_VERSION, systemdRootfsPath } from '../../scripts/build-systemd-rootfs.ts';
import { type Stack, startStack, until } from './support/stack.ts';
import { Terminal } from './support/terminal.ts';

interface Vm {
  id: string;
  state: string;
  guest_ip: string | null;
  guest_ready_at: string | null;
  booted_at: string | null;
}

interface Sample {
  guest: { health: string; last_seen: string | null; metrics: { process_count: number } | null };
}

/** The console's last lines without colours and systemd's progress spinner, for failure messages. */
function readable(consoleText: string): string {
  return (
    consoleText
      .split(/\r?\n|\r/)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping terminal escape sequences is the point
      .map((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trimEnd())
      .filter((l) => l.trim() !== '' && !/\bJob .* running \(/.test(l))
      .slice(-40)
      .join('\n')
  );
}

/**
 * The guest agent injected into a rootfs whose init is systemd (Debian bookworm, debootstrap minbase), booted
 * for real under QEMU through the manager API: the agent reports ready, and the created user logs in.
 */
describe('guest agent on a systemd rootfs (Debian bookworm, real QEMU guest)', () => {
  let s: Stack;
  let vm: Vm;
  let secondIp = '';
  const SECOND_MAC = '02:aa:00:00:00:17';
  const image = systemdRootfsPath();
  const auth = () => ({ authorization: `Bearer ${s.token}` });

  beforeAll(async () => {
    if (!existsSync(image))
      throw new Error(`the systemd rootfs ${SYSTEMD_ROOTFS_VERSION} is not built (${image} is missing); ${BUILD_HINT}`);
    s = await startStack({
      cidr: '10.217.0.0/24',
      bridge: 'nqbr-sysd',
      agentPort: 19094,
      env: { MANAGER_IMAGE_ROOT: path.dirname(image), MANAGER_ALLOW_IMAGE_PATHS: 'true' },
    });
    const img = await s.api<{ id: string }>('POST', '/v1/images', {
      name: 'debian-bookworm-systemd',
      kind: 'rootfs',
      source: { type: 'path', path: image },
    });
    expect(img.status, JSON.stringify(img.body)).toBe(201);
    const created = await s.api<Vm>('POST', '/v1/vms', {
      name: 'sysd-guest',
      vcpu: 1,
      mem_mib: 512,
      kernel_image_id: s.images.kernel,
      initrd_image_id: s.images.initrd,
      rootfs_image_id: img.body.id,
      username: 'carol',
      password: 'systemd-rocks-7',
      start: false,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    vm = created.body;
    // A second NIC: systemd-networkd knows only eth0, so the guest agent gives this one its address.
    const nic = await s.api<{ item: { ip: string } }>('POST', `/v1/vms/${vm.id}/nics`, { mac: SECOND_MAC });
    expect(nic.status, JSON.stringify(nic.body)).toBe(201);
    secondIp = nic.body.item.ip.split('/')[0] ?? '';
    expect((await s.api('POST', `/v1/vms/${vm.id}/start`)).status).toBe(202);
    vm = await until(
      'the systemd guest to report ready',
      async () => {
        const r = (await s.api<Vm>('GET', `/v1/vms/${vm.id}`)).body;
        return r.guest_ready_at ? r : undefined;
      },
      600_000,
    ).catch(async (err) => {
      throw new Error(`${err}\nconsole tail:\n${readable(await s.consoleText(vm.id))}`);
    });
  }, 900_000);
  afterAll(async () => s?.close());

  it('boots systemd from the image and reports ready with the manager-allocated address', async () => {
    expect(await s.consoleText(vm.id)).toMatch(/systemd/);
    expect(vm.guest_ip).toMatch(/^10\.217\.0\.\d+$/);
    expect(Date.parse(vm.guest_ready_at!)).toBeGreaterThan(Date.parse(vm.booted_at!));
    process.stderr.write(
      `[sysd-e2e] time to guest ready: ${(Date.parse(vm.guest_ready_at!) - Date.parse(vm.booted_at!)) / 1000} s\n`,
    );
  });

  it("gives the second NIC its address: it answers ping from the host bridge with the second NIC's MAC", async () => {
    const ping = await until(
      'the second address to answer',
      async () => {
        const r = spawnSync('busybox', ['ping', '-c', '2', '-W', '3', '-I', 'nqbr-sysd', secondIp], {
          encoding: 'utf8',
        });
        return r.status === 0 ? r : undefined;
      },
      60_000,
    );
    expect(ping.stdout).toMatch(/2 packets received/);
    const neigh = spawnSync('ip', ['neigh', 'show', secondIp, 'dev', 'nqbr-sysd'], { encoding: 'utf8' });
    expect(neigh.stdout).toContain(SECOND_MAC);
  });

  it('sees the guest agent healthy in a metrics sample', async () => {
    const sample = await until(
      'a healthy sample',
      async () => {
        const r = await s.api<Sample>('POST', `/v1/vms/${vm.id}/flush-metrics`);
        return r.status === 200 && r.body.guest.health === 'healthy' ? r.body : undefined;
      },
      60_000,
    );
    expect(sample.guest.metrics?.process_count).toBeGreaterThan(5);
  });

  it('lets the created user log in on the serial console, where systemd runs the agent as a unit', async () => {
    const t = await Terminal.open(`${s.base.replace(/^http/, 'ws')}/v1/vms/${vm.id}/shell/ws`, auth());
    try {
      await t.waitFor(/login:/, 120_000);
      await t.login('carol', 'systemd-rocks-7');
      // bash wraps each command in bracketed-paste escapes, which would split the markers run() looks for.
      const mark = t.text.length;
      t.type("bind 'set enable-bracketed-paste off'\n");
      await t.waitFor(/\$ $/m, 30_000, mark);
      expect(await t.run('id')).toMatch(/uid=1000\(carol\)/);
      expect(await t.run('cat /proc/1/comm')).toMatch(/^systemd$/m);
      // systemctl needs root without D-Bus; the agent's cgroup shows systemd runs it as the injected unit.
      expect(await t.run('grep -l nqvm-guest-agent.service /proc/[0-9]*/cgroup')).toMatch(/^\/proc\/\d+\/cgroup$/m);
    } finally {
      t.close();
    }
  });
});
