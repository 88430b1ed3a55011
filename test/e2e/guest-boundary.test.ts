import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import path from 'node:path';
import { linkLocalOf } from '@nqvm/agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayOf, TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';
import { Terminal } from './support/terminal.ts';

interface Vm {
  id: string;
  guest_ip: string | null;
  guest_ready_at: string | null;
  nics: { mac: string; ip: string }[];
}

const NET = TEST_NETWORKS.guestBoundary;
const GATEWAY = gatewayOf(NET);
const BRIDGE = NET.bridge;
const GUEST_PORT = 19091;
const LOG_CAP = 256 * 1024;
const PASSWORD = 'boundary-pw-12';

/** Issue 12 from inside real guests: what one VM may not do to another, or to the host. */
describe('the guest boundary, tried from inside real guests', () => {
  let s: Stack;
  let a: Vm;
  let b: Vm;
  let ta: Terminal;
  let tb: Terminal;
  const terminals: Terminal[] = [];

  const create = async (name: string) => {
    const c = await s.api<Vm>('POST', '/v1/vms', {
      name,
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: s.images.kernel,
      initrd_image_id: s.images.initrd,
      rootfs_image_id: s.images.rootfs,
      username: 'root',
      password: PASSWORD,
    });
    expect(c.status, JSON.stringify(c.body)).toBe(202);
    return c.body.id;
  };
  const ready = (id: string) =>
    until(
      `${id} guest ready`,
      async () => {
        const r = (await s.api<Vm>('GET', `/v1/vms/${id}`)).body;
        return r.guest_ready_at ? r : undefined;
      },
      240_000,
    );
  const shell = async (vm: Vm) => {
    const wsBase = s.base.replace(/^http/, 'ws');
    const t = await Terminal.open(`${wsBase}/v1/vms/${vm.id}/shell/ws`, { authorization: `Bearer ${s.token}` });
    await t.login('root', PASSWORD);
    terminals.push(t);
    return t;
  };
  /** The exit status of `cmd` in the guest. */
  const status = async (t: Terminal, cmd: string, timeoutMs = 30_000) =>
    Number(/rc=(\d+)/.exec(await t.run(`${cmd} >/dev/null 2>&1; echo rc=$?`, timeoutMs))?.[1] ?? -1);
  const ipOf = (vm: Vm) => vm.nics[0]!.ip.split('/')[0]!;

  beforeAll(async () => {
    s = await startStack({
      ...NET,
      agentEnv: { AGENT_LOG_MAX_BYTES: String(LOG_CAP) },
    });
    const ids = await Promise.all([create('gb-a'), create('gb-b')]);
    [a, b] = (await Promise.all(ids.map(ready))) as [Vm, Vm];
    [ta, tb] = await Promise.all([shell(a), shell(b)]);
  });
  afterAll(async () => {
    for (const t of terminals) t.close();
    await s?.close();
  });

  it("taking another VM's IPv4 address: its packets and ARP are dropped, its own still pass", async () => {
    expect(await status(tb, `ping -c1 -W3 ${GATEWAY}`)).toBe(0);
    await tb.run(`ip addr add ${ipOf(a)}/32 dev eth0`);
    try {
      expect(await status(tb, `ping -c1 -W3 -I ${ipOf(a)} ${GATEWAY}`)).not.toBe(0);
      expect(await status(tb, `arping -c1 -w3 -I eth0 -s ${ipOf(a)} ${GATEWAY}`)).not.toBe(0);
    } finally {
      await tb.run(`ip addr del ${ipOf(a)}/32 dev eth0`);
    }
    expect(await status(ta, `ping -c1 -W3 ${GATEWAY}`)).toBe(0);
  });

  it("taking another VM's MAC: every frame is dropped until it has its own again", async () => {
    const own = b.nics[0]!.mac;
    const setMac = (mac: string) =>
      `(ip link set dev eth0 address ${mac} || (ip link set eth0 down; ip link set eth0 address ${mac}; ip link set eth0 up)); ip route replace default via ${GATEWAY} dev eth0; ip neigh flush dev eth0`;
    await tb.run(setMac(a.nics[0]!.mac));
    try {
      expect(await tb.run('cat /sys/class/net/eth0/address')).toContain(a.nics[0]!.mac);
      expect(await status(tb, `ping -c1 -W3 ${GATEWAY}`)).not.toBe(0);
      expect(await status(tb, `arping -c1 -w3 -I eth0 ${GATEWAY}`)).not.toBe(0);
    } finally {
      await tb.run(setMac(own));
    }
    expect(await status(tb, `ping -c1 -W3 ${GATEWAY}`)).toBe(0);
    expect(await status(ta, `ping -c1 -W3 ${GATEWAY}`)).toBe(0);
  });

  it("IPv6: its own link-local address passes, another VM's is dropped", async () => {
    const bridgeLl = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(
      execFileSync('ip', ['-6', 'addr', 'show', 'dev', BRIDGE, 'scope', 'link'], { encoding: 'utf8' }),
    )?.[1];
    expect(bridgeLl).toBeDefined();
    const own = linkLocalOf(b.nics[0]!.mac);
    const theirs = linkLocalOf(a.nics[0]!.mac);
    const linkLocal = () => tb.run('ip -6 addr show dev eth0 scope link');
    // Exactly one link-local address on eth0 (taking A's MAC above may have left one made from it), no DAD wait.
    const only = (addr: string) =>
      tb.run(
        "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad; for x in $(ip -6 addr show dev eth0 scope link | sed -n 's/.*inet6 \\(fe80[^ ]*\\).*/\\1/p'); do ip -6 addr del $x dev eth0; done; " +
          `ip -6 addr add ${addr}/64 dev eth0; ip -6 neigh flush dev eth0`,
      );
    const ping6 = () => status(tb, `ping6 -c1 -W3 -I eth0 ${bridgeLl}`);
    await only(own);
    expect(await linkLocal()).toContain(own);
    expect(await ping6()).toBe(0);
    await only(theirs);
    try {
      const now = await linkLocal();
      expect(now).toContain(theirs);
      expect(now).not.toContain(own);
      expect(await ping6()).not.toBe(0);
    } finally {
      await only(own);
    }
    expect(await ping6()).toBe(0);
  });

  it('reaches MMDS and the guest endpoint on the host, and no other host port (a port the host itself reaches)', async () => {
    let connections = 0;
    const server: Server = createServer((c) => {
      connections++;
      c.end();
    });
    await new Promise<void>((r) => server.listen(18997, '0.0.0.0', r));
    try {
      // MMDS listens once some VM has metadata.
      expect((await s.api('PUT', `/v1/vms/${a.id}/mmds`, { hello: 'a' })).status).toBe(200);
      const get = (host: string, port: number) =>
        ta.run(`printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${host} ${port}`);
      expect(await get(GATEWAY, GUEST_PORT)).toMatch(/^HTTP\/1\.1 404/m);
      expect(await get('169.254.169.254', 80)).toMatch(/^HTTP\/1\.1 \d{3}/m);
      const refused = await ta.run(`printf 'x' | nc -w 5 ${GATEWAY} 18997; echo rc=$?`);
      expect(refused).toMatch(/rc=[1-9]/);
      expect(connections).toBe(0);
      // The same port is open to the host itself: only the guests are kept out.
      await new Promise<void>((resolve, reject) => {
        const sock = connect(18997, GATEWAY, () => {
          sock.destroy();
          resolve();
        });
        sock.on('error', reject);
      });
      await until('the host’s own connection', async () => connections === 1, 5000);
    } finally {
      server.close();
    }
  });

  it('flooded guest reports are throttled and write no events; a report naming another address is refused', async () => {
    const events = async () =>
      (await s.api<{ items: unknown[] }>('GET', `/v1/events?resource_id=${a.id}&limit=200`)).body.items.length;
    const before = await events();
    const token = `$(sed -n 's/.*"token": *"\\([^"]*\\)".*/\\1/p' /etc/nqvm/guest-agent.json)`;
    const report = (ip: string, n: number) =>
      `T=${token}; B='{"ip":"${ip}","ready":true}'; for i in $(seq ${n}); do printf "POST /guest/v1/vms/${a.id}/report HTTP/1.0\\r\\nAuthorization: Bearer $T\\r\\nContent-Type: application/json\\r\\nContent-Length: \${#B}\\r\\n\\r\\n$B" | nc -w 5 ${GATEWAY} ${GUEST_PORT} | head -1; done | sort | uniq -c`;
    const flood = await ta.run(report(ipOf(a), 40), 120_000);
    const count = (code: number) => Number(new RegExp(`(\\d+) HTTP/1.1 ${code}`).exec(flood)?.[1] ?? 0);
    // A few connections may end before their status line (the guest's nc under TCG): none may be anything but these.
    expect(count(200), flood).toBeLessThanOrEqual(5);
    expect(count(429), flood).toBeGreaterThanOrEqual(30);
    expect(flood).not.toMatch(/HTTP\/1\.1 (?!200|429)\d{3}/);
    expect((await events()) - before).toBeLessThanOrEqual(1);
    // After the window refills, a report naming B's address is refused, not relayed.
    await new Promise((r) => setTimeout(r, 5500));
    expect(await ta.run(report(ipOf(b), 1), 30_000)).toMatch(/1 HTTP\/1\.1 403/);
  });

  it('an endless /metrics body: the agent stays bounded in memory and marks the guest unhealthy', async () => {
    const flush = async () =>
      (await s.api<{ guest: { health: string } }>('POST', `/v1/vms/${a.id}/flush-metrics`)).body.guest.health;
    expect(await flush()).toBe('healthy');
    // The guest agent is replaced by a server answering 200 and then zeros forever.
    await ta.run(
      [
        "sed -i '/run-agent/d' /etc/inittab; kill -HUP 1; sleep 1; killall node; sleep 1",
        'printf \'#!/bin/sh\\nprintf "HTTP/1.1 200 OK\\\\r\\\\nContent-Type: application/json\\\\r\\\\n\\\\r\\\\n"\\nexec cat /dev/zero\\n\' > /tmp/endless.sh',
        'chmod +x /tmp/endless.sh',
        '(nc -ll -p 9000 -e /tmp/endless.sh >/dev/null 2>&1 &)',
      ].join('; '),
    );
    await until('the guest to answer endlessly', async () => (await flush()) === 'unhealthy', 30_000);
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const healths: string[] = [];
    for (let i = 0; i < 10; i++) {
      healths.push(await flush());
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    expect(
      healths.every((h) => h === 'unhealthy'),
      healths.join(),
    ).toBe(true);
    // The agent runs in this process: a body read without a cap would have grown it by the guest's stream.
    expect(peak - rss0).toBeLessThan(64 * 1024 * 1024);
    process.stdout.write(
      `endless /metrics: agent RSS ${(rss0 / 2 ** 20).toFixed(0)} MiB → peak ${(peak / 2 ** 20).toFixed(0)} MiB\n`,
    );
  });

  it('the serial console written in a loop: the console log and its rotation stay under the cap', async () => {
    const log = path.join(s.agentData, 'vms', a.id, 'console.log');
    const total = () => [log, `${log}.1`].reduce((n, p) => n + (existsSync(p) ? statSync(p).size : 0), 0);
    let worst = 0;
    const watch = setInterval(() => {
      worst = Math.max(worst, total());
    }, 20);
    try {
      await ta.run(
        "yes 'nqvm console flood 0123456789 abcdefghijklmnopqrstuvwxyz' | head -c 1048576 > /dev/ttyS0",
        300_000,
      );
    } finally {
      clearInterval(watch);
    }
    worst = Math.max(worst, total());
    expect(existsSync(`${log}.1`)).toBe(true);
    expect(worst).toBeLessThanOrEqual(LOG_CAP);
    process.stdout.write(`console flood of 1 MiB: largest console.log + .1 seen ${worst} bytes (cap ${LOG_CAP})\n`);
  });

  it("another VM's MMDS data is refused, also after its address is reused, and it leaves the host with its VM", async () => {
    const data = { latest: { 'meta-data': { 'instance-id': 'i-bbbb-boundary' } } };
    expect((await s.api('PUT', `/v1/vms/${b.id}/mmds`, data)).status).toBe(200);
    const get = (t: Terminal) =>
      t.run(`printf 'GET /latest/meta-data/instance-id HTTP/1.0\\r\\n\\r\\n' | nc -w 5 169.254.169.254 80`);
    expect(await get(tb)).toContain('i-bbbb-boundary');
    // A has metadata of its own (set above) without that key: its answer is from its own data.
    const fromA = await get(ta);
    expect(fromA).toMatch(/^HTTP\/1\.1 404/m);
    expect(fromA).not.toContain('i-bbbb-boundary');

    const bIp = ipOf(b);
    tb.close();
    expect((await s.api('DELETE', `/v1/vms/${b.id}`)).status).toBe(202);
    await until('B deleted', async () => (await s.api('GET', `/v1/vms/${b.id}`)).status === 404, 120_000);
    expect(existsSync(path.join(s.agentData, 'mmds', `${b.id}.json`))).toBe(false);

    const c = await ready(await create('gb-c'));
    expect(ipOf(c)).toBe(bIp);
    const tc = await shell(c);
    const reused = await get(tc);
    expect(reused).toMatch(/^HTTP\/1\.1 403/m);
    expect(reused).not.toContain('i-bbbb-boundary');
  });
});
