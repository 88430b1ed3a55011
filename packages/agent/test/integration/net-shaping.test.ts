import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChecked, systemRunner } from '../../src/host/exec.ts';
import { HostNetwork } from '../../src/net/host-network.ts';

// Two namespaces joined by a veth: "host" holds the shaped end (named like a TAP), "guest" the other.
const id = randomBytes(3).toString('hex');
const hostNs = `nqvm-net-${id}-h`;
const guestNs = `nqvm-net-${id}-g`;
const DEV = 'nqt-shape-0';
const HOST_IP = '10.213.77.1';
const GUEST_IP = '10.213.77.2';
const MiB = 1048576;
const WARMUP_MS = 500;
const WINDOW_MS = 3000;

// sink: count bytes received between first byte + WARMUP and + WARMUP + WINDOW, print bytes/s, exit.
// send: write as fast as the socket accepts until the peer closes or 10 s pass.
const SCRIPT = `
const net = require('node:net');
const [mode, host, port, warmup, windowMs] = process.argv.slice(2);
setTimeout(() => { console.error('deadline'); process.exit(3); }, 10000).unref();
if (mode === 'sink') {
  const server = net.createServer((sock) => {
    let total = 0; let start = null; let startAt = 0n;
    sock.on('data', (b) => {
      total += b.length;
      if (start === null) {
        start = -1;
        setTimeout(() => { start = total; startAt = process.hrtime.bigint(); }, Number(warmup));
        setTimeout(() => {
          const secs = Number(process.hrtime.bigint() - startAt) / 1e9;
          process.stdout.write(JSON.stringify({ bytesPerSec: (total - start) / secs, seconds: secs }) + '\\n');
          process.exit(0);
        }, Number(warmup) + Number(windowMs));
      }
    });
    sock.on('error', () => {});
  });
  server.listen(Number(port), host, () => process.stdout.write('listening\\n'));
} else {
  const chunk = Buffer.alloc(65536, 7);
  const sock = net.connect(Number(port), host);
  const pump = () => { while (sock.write(chunk)) {} };
  sock.on('connect', pump);
  sock.on('drain', pump);
  sock.on('error', () => process.exit(0));
  sock.on('close', () => process.exit(0));
}
`;

let dir = '';
let scriptPath = '';
const children: ChildProcess[] = [];

function nodeIn(ns: string, args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, scriptPath, ...args], { stdio: 'pipe' });
  children.push(child);
  return child;
}

function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.stdout?.on('data', (b: Buffer) => {
      buf += b.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, nl));
      }
    });
    child.on('exit', (code) => {
      if (!buf.includes('\n')) {
        clearTimeout(timer);
        reject(new Error(`exited ${code} before output: ${err}`));
      }
    });
  });
}

/** Streams from `senderNs` to a sink in `sinkNs` and returns the sink's steady-state bytes per second. */
async function measure(sinkNs: string, sinkIp: string, senderNs: string, port: number): Promise<number> {
  const sink = nodeIn(sinkNs, ['sink', sinkIp, String(port), String(WARMUP_MS), String(WINDOW_MS)]);
  const ready = firstLine(sink, 15_000);
  expect(await ready).toBe('listening');
  const result = new Promise<string>((resolve, reject) => {
    let out = '';
    sink.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
    });
    sink.on('exit', (code) =>
      code === 0 ? resolve(out.trim().split('\n').pop() ?? '') : reject(new Error(`sink ${code}`)),
    );
  });
  nodeIn(senderNs, ['send', sinkIp, String(port)]);
  const { bytesPerSec, seconds } = JSON.parse(await result) as { bytesPerSec: number; seconds: number };
  expect(seconds).toBeGreaterThan(WINDOW_MS / 1000 - 0.1);
  return bytesPerSec;
}

const net = new HostNetwork({ runner: systemRunner, netns: hostNs });
const ip = (args: string[]) => runChecked(systemRunner, 'ip', args);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nqvm-net-shaping-'));
  scriptPath = path.join(dir, 'flow.cjs');
  await writeFile(scriptPath, SCRIPT);
  await ip(['netns', 'add', hostNs]);
  await ip(['netns', 'add', guestNs]);
  await ip(['-n', hostNs, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guestNs]);
  await ip(['-n', hostNs, 'addr', 'add', `${HOST_IP}/24`, 'dev', DEV]);
  await ip(['-n', guestNs, 'addr', 'add', `${GUEST_IP}/24`, 'dev', 'eth0']);
  for (const [ns, dev] of [
    [hostNs, DEV],
    [hostNs, 'lo'],
    [guestNs, 'eth0'],
    [guestNs, 'lo'],
  ] as const) {
    await ip(['-n', ns, 'link', 'set', 'dev', dev, 'up']);
  }
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await systemRunner.run('ip', ['netns', 'del', hostNs]);
  await systemRunner.run('ip', ['netns', 'del', guestNs]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const ONE_MIB_PER_S = { bandwidth: { size: MiB, refill_time: 1000 } };

// Each direction is limited alone and the other measured unlimited, which proves rx/tx are not swapped.
describe('NIC limits enforced on real traffic between two namespaces', () => {
  it('caps what the guest receives (TAP egress tbf) at 1 MiB/s ±25% and leaves its sending alone', async () => {
    await net.applyNicLimits(DEV, { rx: ONE_MIB_PER_S });
    const rx = await measure(guestNs, GUEST_IP, hostNs, 5001);
    const tx = await measure(hostNs, HOST_IP, guestNs, 5002);
    console.error(`rx limited: guest rx ${(rx / MiB).toFixed(3)} MiB/s, guest tx ${(tx / MiB).toFixed(1)} MiB/s`);
    expect(rx).toBeGreaterThan(0.75 * MiB);
    expect(rx).toBeLessThan(1.25 * MiB);
    expect(tx).toBeGreaterThan(5 * MiB);
  });

  it('caps what the guest sends (TAP ingress via IFB tbf) at 1 MiB/s ±25% and leaves its receiving alone', async () => {
    await net.applyNicLimits(DEV, { tx: ONE_MIB_PER_S });
    const tx = await measure(hostNs, HOST_IP, guestNs, 5003);
    const rx = await measure(guestNs, GUEST_IP, hostNs, 5004);
    console.error(`tx limited: guest tx ${(tx / MiB).toFixed(3)} MiB/s, guest rx ${(rx / MiB).toFixed(1)} MiB/s`);
    expect(tx).toBeGreaterThan(0.75 * MiB);
    expect(tx).toBeLessThan(1.25 * MiB);
    expect(rx).toBeGreaterThan(5 * MiB);
  });
});
