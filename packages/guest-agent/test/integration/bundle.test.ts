import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BundleResult, bundleGuestAgent, type GuestMetrics, type GuestReport } from '../../src/index';
import { firstIpv4 } from '../../src/report';

const TOKEN = `it-token-${Math.random().toString(36).slice(2)}`;
const VM_ID = 'vm-integration-1';

let dir: string;
let bundle: BundleResult;
const children: ChildProcess[] = [];
const servers: Server[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function getJson<T>(url: string): Promise<T | undefined> {
  const res = await fetch(url);
  return res.ok ? ((await res.json()) as T) : undefined;
}

async function timeBareNode(): Promise<number> {
  const t = performance.now();
  const c = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => c.once('exit', r));
  return performance.now() - t;
}

interface Received {
  req: IncomingMessage;
  body: string;
}

/** Stands in for the host agent's guest endpoint. */
async function startHostStub(port: number, received: Received[]): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      received.push({ req, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  servers.push(server);
  return server;
}

beforeAll(async () => {
  // In the suite's private network namespace only lo exists; the agent reports its first non-loopback address.
  if (!firstIpv4(networkInterfaces())) {
    execFileSync('ip', ['link', 'add', 'nqga0', 'type', 'veth', 'peer', 'name', 'nqga1']);
    execFileSync('ip', ['addr', 'add', '10.231.0.2/24', 'dev', 'nqga0']);
    execFileSync('ip', ['link', 'set', 'nqga0', 'up']);
    execFileSync('ip', ['link', 'set', 'nqga1', 'up']);
  }
  dir = await mkdtemp(join(tmpdir(), 'nqvm-guest-agent-'));
  bundle = await bundleGuestAgent(join(dir, 'guest-agent.js'));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of servers) s.close();
  await rm(dir, { recursive: true, force: true });
});

describe('bundled guest agent run by bare node', () => {
  it('is one small self-contained file with a version banner', () => {
    const text = readFileSync(bundle.outFile, 'utf8');
    expect(text.split('\n')[1]).toBe('// nqvm guest-agent 0.1.0');
    expect(text).not.toMatch(/require\("(?!node:)[^"]+"\)/);
    expect(bundle.bytes).toBeLessThan(64 * 1024);
    console.error(`guest-agent bundle: ${bundle.bytes} bytes`);
  });

  it('serves metrics, retries while the host is down, reports once it is up, and stops on SIGTERM', async () => {
    const hostPort = await freePort();
    const agentPort = await freePort();
    const configPath = join(dir, 'guest-agent.json');
    const config = { vm_id: VM_ID, token: TOKEN, host_url: `http://127.0.0.1:${hostPort}`, port: agentPort };
    await writeFile(configPath, JSON.stringify(config));

    const started = performance.now();
    const child = spawn(process.execPath, [bundle.outFile], {
      env: { PATH: process.env.PATH, NQVM_GUEST_CONFIG: configPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const logLines = () =>
      stderr
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);

    await waitFor('the started log line', () => (logLines().some((l) => l.msg === 'started') ? true : undefined));
    const startupMs = performance.now() - started;
    const base = `http://127.0.0.1:${agentPort}`;
    const health = await waitFor('/health', () => getJson<Record<string, unknown>>(`${base}/health`));
    expect(health).toMatchObject({ status: 'ok', version: '0.1.0' });

    await waitFor('two failed report attempts', () =>
      logLines().filter((l) => l.msg === 'report_failed').length >= 2 ? true : undefined,
    );
    const received: Received[] = [];
    const hostUpAt = performance.now();
    await startHostStub(hostPort, received);
    const report = await waitFor('a report at the host stub', () => received[0]);
    const reportLatencyMs = performance.now() - hostUpAt;

    expect(report.req.method).toBe('POST');
    expect(report.req.url).toBe(`/guest/v1/vms/${VM_ID}/report`);
    expect(report.req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const body = JSON.parse(report.body) as GuestReport;
    expect(body).toEqual({
      ip: firstIpv4(networkInterfaces()),
      hostname: hostname(),
      ready: true,
      agent_version: '0.1.0',
      boot_id: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    });
    expect(body.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

    const metrics = await waitFor('/metrics', () => getJson<GuestMetrics>(`${base}/metrics`));
    expect(metrics.cpu_usage_percent).toBeGreaterThanOrEqual(0);
    expect(metrics.cpu_usage_percent).toBeLessThanOrEqual(100);
    expect(metrics.memory_total_kb).toBeGreaterThan(0);
    expect(metrics.memory_used_kb + metrics.memory_available_kb).toBe(metrics.memory_total_kb);
    expect(metrics.uptime_seconds).toBeGreaterThan(0);
    expect(metrics.process_count).toBeGreaterThan(1);
    expect(metrics.disk.total_bytes).toBeGreaterThan(0);
    expect(metrics.network.interfaces.map((i) => i.name)).not.toContain('lo');
    expect(Date.parse(metrics.sampled_at)).not.toBeNaN();

    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);

    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);

    expect(stderr).not.toContain(TOKEN);
    expect(logLines().map((l) => l.msg)).toEqual(expect.arrayContaining(['started', 'reported', 'stopped']));
    const baselineMs = await timeBareNode();
    console.error(
      `guest-agent listening after ${startupMs.toFixed(0)} ms (bare \`node -e 0\`: ${baselineMs.toFixed(0)} ms); ` +
        `report ${reportLatencyMs.toFixed(0)} ms after the host came up`,
    );
  });
});
