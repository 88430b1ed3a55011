import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { assembleRelease, npmCiProduction } from '../../scripts/release.ts';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { inPrivateNetns, until } from './support/stack.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NET = TEST_NETWORKS.productionInstall;
const MANAGER = `127.0.0.1:${NET.managerPort}`;
const BASE = `http://${MANAGER}`;
const AGENT = `127.0.0.1:${NET.agentPort}`;
/** A GET over https trusting only `ca` (Node's fetch takes no CA of its own). */
function httpsGet(url: string, ca: string, bearer?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

const JOIN = 'release-join-token-0123456789abcdef';
const PASSWORD = 'release-admin-password';

interface Proc {
  proc: ChildProcess;
  output: () => string;
}

function run(dir: string, bin: string, args: string[], env: Record<string, string>): Proc {
  let out = '';
  const proc = spawn(path.join(dir, 'node_modules', '.bin', bin), args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  proc.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
  });
  proc.stderr?.on('data', (b: Buffer) => {
    out += b.toString();
  });
  return { proc, output: () => out };
}

function cli(dir: string, args: string[], input?: string) {
  return spawnSync(path.join(dir, 'node_modules', '.bin', 'nqvm'), args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, NQVM_CONFIG: path.join(dir, 'cli.json') },
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** Names of the series a Prometheus text exposition offers (histograms: also their _bucket, _sum, _count). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type?.[1]) {
      names.add(type[1]);
      if (type[2] === 'histogram' || type[2] === 'summary')
        for (const s of ['_bucket', '_sum', '_count']) names.add(type[1] + s);
    } else if (line && !line.startsWith('#')) names.add(line.split(/[{ ]/)[0]!);
  }
  return names;
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'le',
  'inf',
  'nan',
]);

/** Metric names a PromQL expression reads: identifiers that are not functions, keywords, labels or durations. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    if (m[1]) continue; // a function call
    if (PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Series Prometheus makes itself for every target: not in any /metrics. */
const SYNTHETIC = new Set(['up']);

describe('nqvm as installed software: npm ci --omit=dev of the built tree, then the three bins', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nqvm-release-'));
  const procs: Proc[] = [];

  beforeAll(() => {
    expect(inPrivateNetns()).toBe(true);
    assembleRelease(dir);
    // Offline: npm's cache was filled by `npm test` (scripts/release.ts --seed-npm-cache) before isolating.
    npmCiProduction(dir, true);
  });

  afterAll(async () => {
    for (const p of procs)
      if (p.proc.exitCode === null) {
        p.proc.kill('SIGTERM');
        await new Promise((r) => p.proc.once('exit', r));
      }
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs production dependencies only: no TypeScript source, no tsx, no esbuild', () => {
    for (const dev of ['tsx', 'esbuild', 'vitest', 'typescript', 'vite'])
      expect(existsSync(path.join(dir, 'node_modules', dev)), dev).toBe(false);
    expect(existsSync(path.join(dir, 'packages', 'manager', 'src'))).toBe(false);
    for (const bin of ['nqvm', 'nqvm-manager', 'nqvm-agent'])
      expect(existsSync(path.join(dir, 'node_modules', '.bin', bin)), bin).toBe(true);
  });

  it('the manager serves the console and the API, the agent registers, the CLI logs in and lists the host', async () => {
    const manager = run(dir, 'nqvm-manager', [], {
      NQVM_DATA_DIR: path.join(dir, 'data', 'manager'),
      MANAGER_BIND: MANAGER,
      NQVM_ADMIN_PASSWORD: PASSWORD,
      NQVM_LOG_LEVEL: 'warn',
    });
    procs.push(manager);
    await until(
      'the manager to listen',
      async () => manager.output().includes('listening') || manager.proc.exitCode !== null,
      120_000,
    );
    expect(manager.output()).toContain(`nqvm manager listening on ${BASE}`);

    // The admin makes a join token with the CLI; the agent joins with it.
    const login = cli(dir, ['login', '--url', BASE, '--username', 'admin'], `${PASSWORD}\n`);
    expect(login.stderr).toBe('');
    expect(login.status).toBe(0);
    const made = cli(dir, ['join-tokens', 'create', '--ttl-s', '600', '--json']);
    expect(made.stderr).toBe('');
    const joinToken = (JSON.parse(made.stdout) as { token: string }).token;
    expect(joinToken).toMatch(/^nqj_/);

    const agent = run(dir, 'nqvm-agent', [], {
      MANAGER_BASE: BASE,
      NQVM_JOIN_TOKEN: joinToken,
      AGENT_DATA_DIR: path.join(dir, 'data', 'agent'),
      AGENT_BIND: AGENT,
      AGENT_GUEST_PORT: '19612',
      FC_BRIDGE: NET.bridge,
    });
    procs.push(agent);
    await until(
      'the agent to be ready',
      async () => agent.output().includes('nqvm-agent ready') || agent.proc.exitCode !== null,
      120_000,
    );

    const page = await fetch(`${BASE}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<div id="root">');
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeTruthy();
    expect((await fetch(`${BASE}${asset}`)).status).toBe(200);

    const hosts = await until(
      'the host to be healthy',
      async () => {
        const r = cli(dir, ['hosts', 'list', '--json']);
        const items = (JSON.parse(r.stdout || '{"items":[]}') as { items: { health: string; addr: string }[] }).items;
        return items.length === 1 && items[0]?.health === 'healthy' && items;
      },
      30_000,
    );
    expect(hosts[0]?.addr).toBe(`https://${AGENT}`);
  });

  it("every query of the Grafana dashboard and the alert rules names a metric in the manager's or an agent's /metrics", async () => {
    // The manager's /metrics needs a user's token (it names VMs, owners and hosts).
    expect((await fetch(`${BASE}/metrics`)).status).toBe(401);
    const session = (await (
      await fetch(`${BASE}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: PASSWORD }),
      })
    ).json()) as { token: string };
    const managerText = await (
      await fetch(`${BASE}/metrics`, { headers: { authorization: `Bearer ${session.token}` } })
    ).text();
    const identity = JSON.parse(readFileSync(path.join(dir, 'data', 'agent', 'identity.json'), 'utf8')) as {
      secret: string;
    };
    // The agent serves over TLS with the certificate the manager issued; /metrics needs the host secret only.
    const ca = readFileSync(path.join(dir, 'data', 'agent', 'tls', 'ca.pem'), 'utf8');
    expect((await httpsGet(`https://${AGENT}/metrics`, ca)).status).toBe(401);
    const agentRes = await httpsGet(`https://${AGENT}/metrics`, ca, identity.secret);
    expect(agentRes.status).toBe(200);
    const live = new Set([...exposedNames(managerText), ...exposedNames(agentRes.text)]);
    expect(live.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);

    const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy/grafana/nqvm-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const rules = parseYaml(readFileSync(path.join(ROOT, 'deploy/prometheus/nqvm-alerts.yml'), 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const queries = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => [`panel "${p.title}"`, t.expr] as const)),
      ...rules.groups.flatMap((g) => g.rules.map((r) => [`alert ${r.alert}`, r.expr] as const)),
    ];
    expect(queries.length).toBeGreaterThan(20);
    expect(metricNames('histogram_quantile(0.9, sum by (le) (rate(a_bucket{x=~"y.."}[5m]))) / b > bool 0')).toEqual([
      'a_bucket',
      'b',
    ]);
    const missing: string[] = [];
    for (const [where, expr] of queries) {
      const names = metricNames(expr);
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const n of names) if (!live.has(n) && !SYNTHETIC.has(n)) missing.push(`${where}: ${n}`);
    }
    expect(missing).toEqual([]);
  });

  it('the installed CLI writes systemd units that systemd-analyze verifies; the agent never takes its VMs down', () => {
    const etc = path.join(dir, 'root');
    const m = cli(dir, [
      'install',
      'manager',
      '--prefix',
      etc,
      '--set',
      'DATABASE_URL=postgres://nqvm@db.example/nqvm',
    ]);
    expect(m.stderr).toBe('');
    expect(m.stdout).toMatch(/admin credentials: admin \/ \S+/);
    const j = cli(dir, ['host', 'join', BASE, '--token', JOIN, '--prefix', etc, '--bind', '0.0.0.0:19090']);
    expect(j.stderr).toBe('');
    const units = ['manager', 'agent'].map((r) => path.join(etc, 'etc/systemd/system', `nqvm-${r}.service`));
    const verify = spawnSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8' });
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
    const agentUnit = readFileSync(units[1]!, 'utf8');
    expect(agentUnit).toMatch(/^KillMode=process$/m);
    expect(agentUnit).toContain(`ExecStart=${process.execPath} ${path.join(dir, 'packages/agent/bin/nqvm-agent.mjs')}`);
    const env = readFileSync(path.join(etc, 'etc/nqvm/agent.env'), 'utf8');
    expect(env).toContain(`MANAGER_BASE=${BASE}\n`);
    expect(env).toContain(`NQVM_JOIN_TOKEN=${JOIN}\n`);
    expect(readFileSync(path.join(etc, 'etc/nqvm/manager.env'), 'utf8')).toContain('DATABASE_URL=postgres://');
  });
});
