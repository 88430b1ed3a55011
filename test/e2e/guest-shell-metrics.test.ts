import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
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
  type: 'sample';
  at: string;
  host: { cpu_pct: number | null; rss_bytes: number | null; net_rx_bytes: number | null };
  guest: { health: string; last_seen: string | null; metrics: { cpu_pct: number } | null };
}

/** Issue 4 from a user's seat: credentials, the browser shell over WebSockets, live and stored metrics. */
describe('inside the VM: guest agent, credentials, shell and metrics (real QEMU guests)', () => {
  let s: Stack;
  let vm: Vm;
  let other: Vm;
  const wsBase = () => s.base.replace(/^http/, 'ws');
  const auth = () => ({ authorization: `Bearer ${s.token}` });

  beforeAll(async () => {
    s = await startStack(TEST_NETWORKS.guestShellMetrics);
    const create = (name: string, username = 'alice') =>
      s.api<Vm>('POST', '/v1/vms', {
        name,
        vcpu: 1,
        mem_mib: 256,
        kernel_image_id: s.images.kernel,
        initrd_image_id: s.images.initrd,
        rootfs_image_id: s.images.rootfs,
        username,
        password: 'wonderland-42',
      });
    // The second VM's user is root: the test freezes that guest's agent, which only root may signal.
    const [a, b] = await Promise.all([create('guest-a'), create('guest-b', 'root')]);
    expect(a.status, JSON.stringify(a.body)).toBe(202);
    [vm, other] = [a.body, b.body];
    await Promise.all(
      [vm, other].map((v) =>
        until(
          `${v.id} guest ready`,
          async () => {
            const r = (await s.api<Vm>('GET', `/v1/vms/${v.id}`)).body;
            return r.guest_ready_at ? r : undefined;
          },
          180_000,
        ),
      ),
    );
  });
  afterAll(async () => s?.close());

  it('records booted_at and guest_ready_at, so time to ready is visible', async () => {
    const r = (await s.api<Vm>('GET', `/v1/vms/${vm.id}`)).body;
    expect(r.guest_ip).toMatch(/^10\.215\.0\.\d+$/);
    expect(Date.parse(r.guest_ready_at!)).toBeGreaterThan(Date.parse(r.booted_at!));
  });

  it('returns the credentials to a signed-in user and never stores the password in plaintext', async () => {
    const creds = await s.api('GET', `/v1/vms/${vm.id}/shell`);
    expect(creds.body).toEqual({ username: 'alice', password: 'wonderland-42' });
    const rows = await s.manager.services.database.withSession((x) =>
      x.query<Record<string, unknown>>('SELECT * FROM vms'),
    );
    expect(JSON.stringify(rows)).not.toContain('wonderland-42');
  });

  it('refuses the shell and metrics WebSockets without credentials', async () => {
    for (const p of ['shell/ws', 'metrics/ws'])
      await expect(Terminal.open(`${wsBase()}/v1/vms/${vm.id}/${p}`, {})).rejects.toThrow(/401/);
  });

  it('logs in over the shell WebSocket with the created user, runs id, and refuses a wrong password', async () => {
    const t = await Terminal.open(`${wsBase()}/v1/vms/${vm.id}/shell/ws`, auth());
    try {
      await t.waitFor(/login:/, 30_000);
      let mark = t.text.length;
      t.type('\nalice\n');
      await t.waitFor(/Password:/, 30_000, mark);
      mark = t.text.length;
      t.type('not-the-password\n');
      await t.waitFor(/Login incorrect/, 30_000, mark);
      await t.login('alice', 'wonderland-42');
      const id = await t.run('id');
      expect(id).toMatch(/uid=1000\(alice\)/);
      // A second viewer sees the same console: scrollback first, then live output.
      const second = await Terminal.open(`${wsBase()}/v1/vms/${vm.id}/shell/ws`, auth());
      await second.waitFor(/uid=1000\(alice\)/, 10_000);
      const mark2 = second.text.length;
      await t.run('echo from-the-first-viewer');
      await second.waitFor(/from-the-first-viewer/, 10_000, mark2);
      second.close();
    } finally {
      t.close();
    }
  });

  it('gives the guest console the size the browser terminal asks for, so stty size shows it', async () => {
    const t = await Terminal.open(`${wsBase()}/v1/vms/${vm.id}/shell/ws`, auth());
    let viewer: WebSocket | undefined;
    try {
      await t.login('alice', 'wonderland-42');
      // A second viewer sends the resize as a text frame (binary frames are keystrokes); the console is shared.
      const ws = new WebSocket(`${wsBase()}/v1/vms/${vm.id}/shell/ws`, { headers: auth() });
      viewer = ws;
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.send(JSON.stringify({ type: 'resize', cols: 132, rows: 40 }));
      let last = '';
      await until(
        'stty size to print 40 132',
        async () => {
          last = (await t.run('stty size')).trim();
          return last === '40 132';
        },
        15_000,
      ).catch((err) => {
        throw new Error(`${err}; last stty size: ${JSON.stringify(last)}`);
      });
    } finally {
      viewer?.close();
      t.close();
    }
  });

  it('keeps the guest agent’s log off the serial console: it goes to the kernel log, which dmesg shows', async () => {
    // The agent logged 'reported' before guest_ready_at was set; busybox init gave it the console as stderr.
    expect(await s.consoleText(other.id)).not.toContain('"msg":"reported"');
    const t = await Terminal.open(`${wsBase()}/v1/vms/${other.id}/shell/ws`, auth());
    try {
      await t.login('root', 'wonderland-42');
      expect(await t.run('dmesg | grep nqvm-guest-agent')).toMatch(/nqvm-guest-agent: \{.*"msg":"reported"/);
    } finally {
      t.close();
    }
  });

  it('streams live metrics at about 1 Hz; guest CPU rises under a busy loop and falls after', async () => {
    const frames: Sample[] = [];
    const ws = new WebSocket(`${wsBase()}/v1/vms/${vm.id}/metrics/ws`, { headers: auth() });
    ws.on('message', (d, bin) => {
      if (!bin) {
        const m = JSON.parse(d.toString()) as Sample;
        if (m.type === 'sample') frames.push(m);
      }
    });
    const t = await Terminal.open(`${wsBase()}/v1/vms/${vm.id}/shell/ws`, auth());
    try {
      await until('5 frames', async () => frames.length >= 5, 30_000);
      const gaps = frames.slice(1, 5).map((f, i) => Date.parse(f.at) - Date.parse(frames[i]!.at));
      for (const g of gaps) expect(g).toBeGreaterThan(500);
      expect(frames.at(-1)!.host.rss_bytes).toBeGreaterThan(10 * 1024 * 1024);
      const idle = frames.at(-1)!.guest.metrics?.cpu_pct ?? 0;
      await t.login('alice', 'wonderland-42');
      await t.run('(while :; do :; done) & echo $! > /tmp/busy');
      const busy = await until(
        'guest CPU to rise',
        async () => {
          const c = frames.at(-1)?.guest.metrics?.cpu_pct;
          return c !== undefined && c > Math.max(60, idle + 30) ? c : undefined;
        },
        60_000,
      );
      await t.run('kill $(cat /tmp/busy)');
      const after = await until(
        'guest CPU to fall',
        async () => {
          const c = frames.at(-1)?.guest.metrics?.cpu_pct;
          return c !== undefined && c < busy - 30 ? c : undefined;
        },
        60_000,
      );
      process.stderr.write(`[guest-e2e] guest cpu idle ${idle}% → busy ${busy}% → after ${after}%\n`);
    } finally {
      t.close();
      ws.close();
    }
  });

  it('says the guest agent is unreachable within 5 s when it stops answering, while host metrics go on', async () => {
    // On the second VM, whose user is root: only root may signal the guest agent.
    const t = await Terminal.open(`${wsBase()}/v1/vms/${other.id}/shell/ws`, auth());
    const frames: Sample[] = [];
    const ws = new WebSocket(`${wsBase()}/v1/vms/${other.id}/metrics/ws`, { headers: auth() });
    ws.on('message', (d, bin) => {
      if (!bin) frames.push(JSON.parse(d.toString()) as Sample);
    });
    try {
      await t.login('root', 'wonderland-42');
      await until('a healthy frame', async () => frames.at(-1)?.guest.health === 'healthy', 30_000);
      // Freeze the guest agent (init would respawn a killed one): it stops answering but stays installed.
      const procs = await t.run('ps -o pid,stat,args | grep [g]uest-agent');
      const pid = /^\s*(\d+)/m.exec(procs)?.[1];
      expect(pid, procs).toBeTruthy();
      await t.run(`kill -STOP ${pid}`);
      const stoppedAt = Date.now();
      await until('guest health unreachable', async () => frames.at(-1)?.guest.health === 'unreachable', 15_000).catch(
        async (err) => {
          throw new Error(
            `${err}; guest processes:\n${procs}\nnow:\n${await t.run('ps -o pid,stat,args | grep [g]uest')}`,
          );
        },
      );
      const took = Date.now() - stoppedAt;
      expect(took).toBeLessThan(5_000 + 1_500);
      const n = frames.length;
      await until('host frames to keep coming', async () => frames.length >= n + 2, 10_000);
      expect(frames.at(-1)!.host.cpu_pct).not.toBeNull();
      await t.run(`kill -CONT ${pid}`);
      await until('the guest agent healthy again', async () => frames.at(-1)?.guest.health === 'healthy', 15_000);
    } finally {
      t.close();
      ws.close();
    }
  });

  it('accepts a guest-reported IP only with that VM’s token', async () => {
    const body = JSON.stringify({ ip: '10.215.0.99' });
    const post = (token?: string) =>
      fetch(`${s.base}/v1/vms/${vm.id}/guest-ip`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body,
      });
    expect((await post()).status).toBe(401);
    const otherToken = s.agent.vms.guestToken(other.id)!;
    expect(otherToken).toBeTruthy();
    expect((await post(otherToken)).status).toBe(403);
    expect((await s.api<Vm>('GET', `/v1/vms/${vm.id}`)).body.guest_ip).not.toBe('10.215.0.99');
  });

  it('stores samples: flush-metrics then the history range returns them', async () => {
    const flushed = await s.api<Sample>('POST', `/v1/vms/${vm.id}/flush-metrics`);
    expect(flushed.status).toBe(200);
    const from = new Date(Date.now() - 10 * 60_000).toISOString();
    const hist = await s.api<{ points: { at: string }[] }>(
      'GET',
      `/v1/vms/${vm.id}/metrics?from=${encodeURIComponent(from)}&step=raw`,
    );
    expect(hist.status).toBe(200);
    expect(hist.body.points.length).toBeGreaterThan(0);
  });
});
