/**
 * Boot benchmark (issue 3): the same kernel + initramfs + rootfs booted by a plain qemu-system-x86_64 command
 * line and through `POST /v1/vms`, each until the guest prints its userspace marker; then 10 concurrent creates.
 *
 *   unshare -n sh -c 'ip link set lo up && npx tsx bench/boot.ts'
 *
 * Runs in a private network namespace (bridges and TAPs never touch the host's network). Prints figures only.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildDemoImages, loadAgentConfig, READY_MARKER, startAgent, systemRunner } from '@nqvm/agent';
import { buildApp, loadConfig, newPglite, openPglite } from '@nqvm/manager';
import pino from 'pino';
import { inPrivateNetns } from '../test/e2e/support/stack.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const now = () => performance.now();

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

if (!inPrivateNetns()) {
  console.error(
    "run inside a private network namespace: unshare -n sh -c 'ip link set lo up && npx tsx bench/boot.ts'",
  );
  process.exit(2);
}

const demo = await buildDemoImages({
  outDir: path.join(ROOT, '.cache', 'demo-images'),
  cacheDir: path.join(ROOT, '.cache', 'demo-cache'),
  runner: systemRunner,
});
const tscKhz = (() => {
  const m = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return m ? Math.round(Number(m[1]) * 1000) : undefined;
})();

/** Bare QEMU, the way guest-recipe.md boots it (no NIC, no tools drive), until the marker shows on stdio. */
async function bareBoot(): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nqvm-bench-'));
  const disk = path.join(dir, 'rootfs.ext4');
  copyFileSync(demo.rootfs, disk);
  const append = ['console=ttyS0', 'reboot=k', 'panic=-1', 'root=/dev/vda', 'rw'];
  if (tscKhz) append.push(`tsc_early_khz=${tscKhz}`, 'tsc=reliable');
  const t0 = now();
  const q = spawn('qemu-system-x86_64', [
    ...['-M', 'microvm,acpi=on', '-accel', 'tcg', '-cpu', 'max', '-m', '256', '-smp', '1'],
    ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
    ...['-kernel', demo.kernel, '-initrd', demo.initrd, '-append', append.join(' ')],
    ...['-drive', `id=d0,file=${disk},format=raw,if=none`, '-device', 'virtio-blk-device,drive=d0'],
    ...['-serial', 'stdio'],
  ]);
  let out = '';
  const ms = await new Promise<number>((resolve, reject) => {
    q.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes(READY_MARKER)) resolve(now() - t0);
    });
    q.on('exit', () => reject(new Error(`qemu exited before the marker:\n${out.slice(-2000)}`)));
  });
  q.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

const managerData = mkdtempSync(path.join(tmpdir(), 'nqvm-bench-mgr-'));
const agentData = mkdtempSync(path.join(tmpdir(), 'nqb-'));
const agentLog = path.join(managerData, 'agent.log');
const manager = await buildApp(
  loadConfig({
    NQVM_DATA_DIR: managerData,
    NQVM_ADMIN_PASSWORD: 'bench-admin-password',
    NQVM_LOG_LEVEL: 'silent',
    NQVM_NETWORK_CIDR: '10.220.0.0/24',
    NQVM_CPU_OVERCOMMIT: '16',
    FC_BRIDGE: 'nqbr-bench',
  }),
  { database: await openPglite(newPglite()), logger: false },
);
await manager.app.listen({ host: '127.0.0.1', port: 0 });
const addr = manager.app.server.address();
const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
const agent = await startAgent(
  loadAgentConfig({
    MANAGER_BASE: base,
    NQVM_JOIN_TOKEN: (await manager.services.joinTokens.create({}, 'bench')).token,
    AGENT_BIND: '127.0.0.1:19391',
    AGENT_DATA_DIR: agentData,
    AGENT_HEARTBEAT_S: '1',
    PATH: process.env.PATH,
  }),
  { logger: pino({ level: 'info' }, pino.destination({ dest: agentLog, sync: true })) },
);
const login = await fetch(`${base}/v1/auth/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username: 'admin', password: 'bench-admin-password' }),
});
const token = ((await login.json()) as { token: string }).token;
const call = async (method: string, url: string, body?: unknown) => {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return (await res.json()) as Record<string, unknown>;
};
const image: Record<string, string> = {};
for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
  const res = await fetch(`${base}/v1/images/upload?name=bench-${kind}&kind=${kind}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: readFileSync(demo[kind]),
  });
  image[kind] = ((await res.json()) as { id: string }).id;
}

/** Process start time of a pid, in performance.now() milliseconds. */
function pidStartedAt(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTicks = Number(fields[19]);
  const uptimeS = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const ageMs = uptimeS * 1000 - (startTicks / 100) * 1000;
  return now() - ageMs;
}

/** The agent's own timing of a boot: its "vm booted" log line (phases overlap: disk ‖ network). */
function agentPhases(vmId: string): Record<string, number> {
  for (const line of readFileSync(agentLog, 'utf8').split('\n')) {
    if (!line.includes(vmId) || !line.includes('vm booted')) continue;
    const rec = JSON.parse(line) as { prepare_ms?: number; phases_ms?: Record<string, number> };
    return { ...rec.phases_ms, prepare: rec.prepare_ms ?? 0 };
  }
  return {};
}

const bootedIds: string[] = [];
async function apiBoot(name: string): Promise<{ total: number; outsideVmm: number; agent: Record<string, number> }> {
  const t0 = now();
  const vm = await call('POST', '/v1/vms', {
    name,
    vcpu: 1,
    mem_mib: 256,
    kernel_image_id: image.kernel,
    initrd_image_id: image.initrd,
    rootfs_image_id: image.rootfs,
  });
  const id = vm.id as string;
  bootedIds.push(id);
  const log = path.join(agentData, 'vms', id, 'console.log');
  for (;;) {
    let text = '';
    try {
      text = readFileSync(log, 'utf8');
    } catch {}
    if (text.includes(READY_MARKER)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const total = now() - t0;
  const running = (await call('GET', `/v1/vms/${id}/wait?state=running&timeout=60`)) as { pid: number };
  return { total, outsideVmm: pidStartedAt(running.pid) - t0, agent: agentPhases(id) };
}

/** The VMM's own argv, read back from /proc (the binary first). */
function argvOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

const ipRun = (args: string[]) =>
  new Promise<void>((resolve, reject) => {
    const p = spawn('ip', args, { stdio: 'ignore' });
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ip ${args.join(' ')} exited ${code}`))));
  });

/**
 * The agent's exact QEMU command line (same devices: NIC on a TAP, tools drive, file-backed RAM, QMP and console
 * socket), run by hand on a fresh copy of the base rootfs after the API-made VM is gone; the marker is read from
 * the console log file the same way. The difference left is what manager + agent do.
 */
async function replayBoot(argv: string[], vmDir: string): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nqr-'));
  // `-S`: the agent starts QEMU with its vCPUs held while it edits the rootfs; by hand the disk is ready already.
  const args = argv
    .slice(1)
    .filter((a) => a !== '-S')
    .map((a) => a.split(vmDir).join(dir))
    // The agent hands a confined QEMU its sockets bound (fds 3 and 4); by hand QEMU binds them itself, as root.
    .map((a) => a.replace(/^socket,id=qmp0,fd=3,/, `socket,id=qmp0,path=${dir}/control.sock,`))
    .map((a) => a.replace(/^socket,id=con0,fd=4,/, `socket,id=con0,path=${dir}/console.sock,`));
  copyFileSync(demo.rootfs, path.join(dir, 'rootfs.ext4'));
  const tap = /ifname=(nqt-[a-z0-9-]+)/.exec(args.join(' '))?.[1];
  if (tap) {
    await ipRun(['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await ipRun(['link', 'set', 'dev', tap, 'master', 'nqbr-bench', 'up']);
  }
  const log = path.join(dir, 'console.log');
  const t0 = now();
  const q = spawn(argv[0] ?? 'qemu-system-x86_64', args, { stdio: 'ignore' });
  let exited = false;
  q.on('exit', () => {
    exited = true;
  });
  for (;;) {
    let text = '';
    try {
      text = readFileSync(log, 'utf8');
    } catch {}
    if (text.includes(READY_MARKER)) break;
    if (exited) throw new Error(`replayed qemu exited before the marker:\n${text.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = now() - t0;
  q.kill('SIGKILL');
  await new Promise((r) => q.once('exit', r).once('error', r));
  if (tap) await ipRun(['link', 'del', 'dev', tap]).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

const plain: number[] = [];
const viaApi: Awaited<ReturnType<typeof apiBoot>>[] = [];
const bare = await bareBoot();
for (let i = 0; i < 6; i++) {
  const booted = await apiBoot(`bench-${i}`);
  viaApi.push(booted);
  const id = bootedIds.pop()!;
  const argv = argvOf(((await call('GET', `/v1/vms/${id}`)) as { pid: number }).pid);
  await call('DELETE', `/v1/vms/${id}`);
  await manager.services.operations.idle();
  await until('the VM to be gone', async () => (await call('GET', `/v1/vms/${id}`)).status === 404);
  plain.push(await replayBoot(argv, path.join(agentData, 'vms', id)));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p = median(plain);
// The first API boot also fetches the images into the agent's cache: the ratio compares warm boots.
const a = median(viaApi.slice(1).map((x) => x.total));
const series = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
console.log(`load average at the end        ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log(
  `bare qemu → marker (1 run)     ${bare.toFixed(0)} ms  (no NIC, no tools drive, anonymous RAM, serial on stdio)`,
);
console.log(
  `same argv by hand → marker     median ${p.toFixed(0)} ms  (${series(plain)})  (the agent's QEMU command line)`,
);
console.log(
  `POST /v1/vms → marker          median ${a.toFixed(0)} ms of the warm boots  (${series(viaApi.map((x) => x.total))})`,
);
console.log(`ratio API / same argv          ${(a / p).toFixed(2)}  (target ≤ 1.15)`);
console.log(`ratio API / bare               ${(a / bare).toFixed(2)}  (includes the devices nqvm adds)`);
console.log(
  `manager+agent before VMM       median ${median(viaApi.slice(1).map((x) => x.outsideVmm)).toFixed(0)} ms of the warm boots  (${series(viaApi.map((x) => x.outsideVmm))}; the first fetches the images; target ≤ 100 ms)`,
);

const fmt = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');
console.log(
  '  agent phases: images, disk, devices before the VMM starts; rootfs while QEMU initialises (its vCPUs held until done); network after launch, during the guest boot',
);
for (const [i, x] of viaApi.entries()) console.log(`  agent phases (ms), boot ${i}:  ${fmt(x.agent)}`);

for (const id of bootedIds) await call('DELETE', `/v1/vms/${id}`);
await manager.services.operations.idle();
const t0 = now();
const many = await Promise.all(
  Array.from({ length: 10 }, (_, i) =>
    call('POST', '/v1/vms', {
      name: `burst-${i}`,
      vcpu: 1,
      mem_mib: 128,
      kernel_image_id: image.kernel,
      initrd_image_id: image.initrd,
      rootfs_image_id: image.rootfs,
    }),
  ),
);
const states = await Promise.all(many.map((v) => call('GET', `/v1/vms/${v.id}/wait?state=running&timeout=300`)));
for (const v of many.filter((_m, i) => states[i]?.state !== 'running').slice(0, 3)) {
  const row = await call('GET', `/v1/vms/${v.id}`);
  console.log(
    `  create ${v.name ?? v.id} ended ${row.state}: ${String(row.last_error ?? JSON.stringify(v)).slice(0, 300)}`,
  );
}
const up = states.filter((v) => v.state === 'running');
const ips = new Set(up.map((v) => (v.nics as { ip: string }[] | undefined)?.[0]?.ip));
const macs = new Set(up.map((v) => (v.nics as { mac: string }[] | undefined)?.[0]?.mac));
const running = up.length;
// TAPs as the kernel sees them, one per running VM, each enslaved to the bench bridge.
const taps = await new Promise<{ ifname: string; master?: string }[]>((resolve) => {
  const ip = spawn('ip', ['-j', 'link', 'show', 'type', 'tun']);
  let out = '';
  ip.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  ip.on('close', () => resolve(JSON.parse(out || '[]')));
});
const benchTaps = taps.filter((t) => t.master === 'nqbr-bench');
console.log(
  `10 concurrent creates         ${running}/10 running in ${(now() - t0).toFixed(0)} ms; distinct IPs ${ips.size}, MACs ${macs.size}, TAPs on the bridge ${benchTaps.length}`,
);

for (const v of [...many, ...states]) await call('DELETE', `/v1/vms/${v.id}`).catch(() => {});
await manager.services.operations.idle();
await agent.close();
await manager.app.close();
rmSync(managerData, { recursive: true, force: true });
rmSync(agentData, { recursive: true, force: true });
process.exit(0);
