import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_HINT, debianRootfsPath, debianRootfsVersion, INITS } from '../../scripts/build-systemd-rootfs.ts';
import { TEST_NETWORKS } from '../support/test-networks.ts';
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

/** Starts a VM from a Debian rootfs with a user, after `beforeStart` (e.g. adding a NIC); resolves once ready. */
async function bootGuest(
  s: Stack,
  o: { name: string; imageName: string; image: string; username: string; password: string },
  beforeStart: (vm: Vm) => Promise<void> = async () => {},
): Promise<Vm> {
  const img = await s.api<{ id: string }>('POST', '/v1/images', {
    name: o.imageName,
    kind: 'rootfs',
    source: { type: 'path', path: o.image },
  });
  expect(img.status, JSON.stringify(img.body)).toBe(201);
  const created = await s.api<Vm>('POST', '/v1/vms', {
    name: o.name,
    vcpu: 1,
    mem_mib: 512,
    kernel_image_id: s.images.kernel,
    initrd_image_id: s.images.initrd,
    rootfs_image_id: img.body.id,
    username: o.username,
    password: o.password,
    start: false,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  const id = created.body.id;
  await beforeStart(created.body);
  expect((await s.api('POST', `/v1/vms/${id}/start`)).status).toBe(202);
  return until(
    `the ${o.name} guest to report ready`,
    async () => {
      const r = (await s.api<Vm>('GET', `/v1/vms/${id}`)).body;
      return r.guest_ready_at ? r : undefined;
    },
    600_000,
  ).catch(async (err) => {
    throw new Error(`${err}\nconsole tail:\n${readable(await s.consoleText(id))}`);
  });
}

let s: Stack;
let vm: Vm;
let secondIp = '';
const SECOND_MAC = '02:aa:00:00:00:17';
const image = debianRootfsPath('systemd');
const auth = () => ({ authorization: `Bearer ${s.token}` });

/** Guests whose PID 1 is sysvinit's init, with Debian's rc or with OpenRC as the rc, and how each runs the agent. */
const SYSV_GUESTS = [
  {
    init: 'sysvinit',
    label: 'sysvinit',
    name: 'sysv-guest',
    username: 'dave',
    password: 'sysvinit-lives-9',
    banner: /INIT: version/,
    runsAgent: "sysvinit's rc runs the agent's init.d script",
    checkAgent: async (t: Terminal) => {
      // The script's pid file names the supervise loop's session; the agent runs inside it.
      const session = await t.run('ps ww -o args= -s "$(cat /run/nqvm-guest-agent.pid)"');
      expect(session).toMatch(/supervise\.sh/);
      expect(session).toMatch(/guest-agent\.js/);
    },
  },
  {
    init: 'openrc',
    label: 'sysvinit + OpenRC',
    name: 'openrc-guest',
    username: 'erin',
    password: 'openrc-runs-5',
    banner: /OpenRC/,
    runsAgent: "OpenRC's supervise-daemon runs the agent's openrc-run script",
    checkAgent: async (t: Terminal) => {
      expect(await t.run('ls -1 /run/openrc/started')).toMatch(/^nqvm-guest-agent$/m);
      const parent = await t.run('ps ww -o args= -p $(ps -o ppid= -p $(pgrep -f guest-agent.js | head -n 1))');
      expect(parent).toMatch(/supervise-daemon nqvm-guest-agent/);
    },
  },
] as const;
const sysvVms: Partial<Record<(typeof SYSV_GUESTS)[number]['init'], Vm>> = {};

// One stack, all guests booted at once: the file's wall time is about one TCG boot, not one per init.
beforeAll(async () => {
  for (const init of INITS)
    if (!existsSync(debianRootfsPath(init)))
      throw new Error(
        `the ${init} rootfs ${debianRootfsVersion(init)} is not built (${debianRootfsPath(init)} is missing); ${BUILD_HINT}`,
      );
  s = await startStack({
    ...TEST_NETWORKS.guestInitSystems,
    env: { MANAGER_IMAGE_ROOT: path.dirname(path.dirname(image)), MANAGER_ALLOW_IMAGE_PATHS: 'true' },
  });
  [vm] = await Promise.all([
    bootGuest(
      s,
      {
        name: 'sysd-guest',
        imageName: 'debian-bookworm-systemd',
        image,
        username: 'carol',
        password: 'systemd-rocks-7',
      },
      async (created) => {
        // A second NIC: systemd-networkd knows only eth0, so the guest agent gives this one its address.
        const nic = await s.api<{ item: { ip: string } }>('POST', `/v1/vms/${created.id}/nics`, { mac: SECOND_MAC });
        expect(nic.status, JSON.stringify(nic.body)).toBe(201);
        secondIp = nic.body.item.ip.split('/')[0] ?? '';
      },
    ),
    ...SYSV_GUESTS.map(async (g) => {
      sysvVms[g.init] = await bootGuest(s, {
        name: g.name,
        imageName: `debian-bookworm-${g.init}`,
        image: debianRootfsPath(g.init),
        username: g.username,
        password: g.password,
      });
    }),
  ]);
}, 900_000);
afterAll(async () => s?.close());

/** Takes samples until one shows the guest agent healthy. */
async function healthySample(id: string): Promise<Sample> {
  return until(
    'a healthy sample',
    async () => {
      const r = await s.api<Sample>('POST', `/v1/vms/${id}/flush-metrics`);
      return r.status === 200 && r.body.guest.health === 'healthy' ? r.body : undefined;
    },
    60_000,
  );
}

/** Logs the user in on the VM's serial console; returns the terminal at a bash prompt (the caller closes it). */
async function loginShell(id: string, username: string, password: string): Promise<Terminal> {
  const t = await Terminal.open(`${s.base.replace(/^http/, 'ws')}/v1/vms/${id}/shell/ws`, auth());
  try {
    await t.waitFor(/login:/, 120_000);
    await t.login(username, password);
    // bash wraps each command in bracketed-paste escapes, which would split the markers run() looks for.
    const mark = t.text.length;
    t.type("bind 'set enable-bracketed-paste off'\n");
    await t.waitFor(/\$ $/m, 30_000, mark);
    return t;
  } catch (e) {
    t.close();
    throw e;
  }
}

/**
 * The guest agent injected into a rootfs whose init is systemd (Debian bookworm, debootstrap minbase), booted
 * for real under QEMU through the manager API: the agent reports ready, and the created user logs in.
 */
describe('guest agent on a systemd rootfs (Debian bookworm, real QEMU guest)', () => {
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
    const sample = await healthySample(vm.id);
    expect(sample.guest.metrics?.process_count).toBeGreaterThan(5);
  });

  it('lets the created user log in on the serial console, where systemd runs the agent as a unit', async () => {
    const t = await loginShell(vm.id, 'carol', 'systemd-rocks-7');
    try {
      expect(await t.run('id')).toMatch(/uid=1000\(carol\)/);
      expect(await t.run('cat /proc/1/comm')).toMatch(/^systemd$/m);
      // systemctl needs root without D-Bus; the agent's cgroup shows systemd runs it as the injected unit.
      expect(await t.run('grep -l nqvm-guest-agent.service /proc/[0-9]*/cgroup')).toMatch(/^\/proc\/\d+\/cgroup$/m);
    } finally {
      t.close();
    }
  });
});

/**
 * The same on rootfs images whose init is sysvinit (Debian bookworm minbase + sysvinit-core), once with Debian's rc
 * starting the injected /etc/init.d script (a supervise loop keeps the agent running) and once with OpenRC as the rc.
 */
describe.each(SYSV_GUESTS.map((g) => [g.label, g] as const))(
  'guest agent on a %s rootfs (Debian bookworm, real QEMU guest)',
  (_label, g) => {
    const guest = () => sysvVms[g.init]!;

    it(`boots ${g.init === 'openrc' ? 'OpenRC under sysvinit' : 'sysvinit'} from the image and reports ready with the manager-allocated address`, async () => {
      const v = guest();
      expect(await s.consoleText(v.id)).toMatch(g.banner);
      expect(v.guest_ip).toMatch(/^10\.217\.0\.\d+$/);
      expect(Date.parse(v.guest_ready_at!)).toBeGreaterThan(Date.parse(v.booted_at!));
      process.stderr.write(
        `[${g.init}-e2e] time to guest ready: ${(Date.parse(v.guest_ready_at!) - Date.parse(v.booted_at!)) / 1000} s\n`,
      );
    });

    it('sees the guest agent healthy in a metrics sample', async () => {
      const sample = await healthySample(guest().id);
      expect(sample.guest.metrics?.process_count).toBeGreaterThan(5);
    });

    it(`lets the created user log in on the serial console, where ${g.runsAgent}`, async () => {
      const t = await loginShell(guest().id, g.username, g.password);
      try {
        expect(await t.run('id')).toMatch(new RegExp(`uid=1000\\(${g.username}\\)`));
        expect(await t.run('cat /proc/1/comm')).toMatch(/^init$/m);
        // PID 1 runs sysvinit's own binary, not a link to systemd.
        expect(await t.run('stat -c %F /sbin/init; dpkg -S /sbin/init')).toMatch(
          /^regular file\nsysvinit-core: \/sbin\/init$/m,
        );
        await g.checkAgent(t);
      } finally {
        t.close();
      }
    });
  },
);
