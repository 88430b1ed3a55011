import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { AgentMmds } from '@nqvm/api';
import type { Logger } from 'pino';
import { type CommandRunner, runChecked } from '../host/exec.ts';
import { assertBridgeName, parseCidr } from '../net/names.ts';
import { assertVmId } from '../vms/layout.ts';
import { imdsText, lookup } from './imds.ts';

export const MMDS_PORT = 80;
const MAX_TTL_S = 21600;
const MAX_TOKENS_PER_VM = 1000;

export interface MmdsDeps {
  dataDir: string;
  runner: CommandRunner;
  log: Logger;
  /** The VM on this host that owns `ip` on one of its NICs now (its TAP is pinned to it), if exactly one does. */
  ownerOf(ip: string): string | undefined;
  /** Called once per address it listens on, so the host's input policy lets guests reach it. */
  listening?(address: string, port: number): Promise<void>;
  port?: number;
  now?: () => number;
}

/**
 * The metadata service QEMU lacks: one listener per configured 169.254.x.y address (added to the VM's bridge),
 * answering each guest from its own data only. The source address names the VM that holds it on this host now (the
 * TAP guard in net/tap-guard.ts pins each TAP to its VM's addresses); that VM's data is served, never data left by
 * an earlier VM that had the same address.
 */
export class MmdsService {
  private readonly byVm = new Map<string, AgentMmds>();
  private readonly tokens = new Map<string, { vmId: string; expires: number }>();
  private readonly servers = new Map<string, Promise<Server>>();

  constructor(private readonly d: MmdsDeps) {}

  private dir(): string {
    return join(this.d.dataDir, 'mmds');
  }

  private now(): number {
    return (this.d.now ?? Date.now)();
  }

  /** Reloads what the manager pushed before an agent restart and listens again. */
  async restore(): Promise<void> {
    for (const name of await readdir(this.dir()).catch(() => [] as string[])) {
      const id = name.replace(/\.json$/, '');
      try {
        const m = JSON.parse(await readFile(join(this.dir(), name), 'utf8')) as AgentMmds;
        await this.put(assertVmId(id), m, false);
      } catch (err) {
        this.d.log.warn({ err, vm_id: id }, 'could not reload MMDS data');
      }
    }
  }

  async put(vmId: string, m: AgentMmds, persist = true): Promise<void> {
    assertVmId(vmId);
    for (const b of m.bridges) await this.listenOn(m.config.ipv4_address, b);
    if (persist) {
      await mkdir(this.dir(), { recursive: true, mode: 0o700 });
      await writeFile(join(this.dir(), `${vmId}.json`), JSON.stringify(m), { mode: 0o600 });
    }
    this.byVm.set(vmId, m);
  }

  async remove(vmId: string): Promise<void> {
    this.byVm.delete(assertVmId(vmId));
    for (const [t, v] of this.tokens) if (v.vmId === vmId) this.tokens.delete(t);
    await rm(join(this.dir(), `${vmId}.json`), { force: true });
  }

  private listenOn(address: string, bridge: string): Promise<Server> {
    const addr = parseCidr(`${address}/32`).address;
    const br = assertBridgeName(bridge);
    const key = `${addr}@${br}`;
    let s = this.servers.get(key);
    if (!s) {
      s = (async () => {
        const res = await this.d.runner.run('ip', ['addr', 'add', `${addr}/32`, 'dev', br]);
        if (res.code !== 0 && !/exists/i.test(res.stderr)) await runChecked(this.d.runner, 'ip', ['addr', 'show', br]);
        const existing = [...this.servers.entries()].find(([k]) => k.startsWith(`${addr}@`) && k !== key);
        if (existing) return existing[1];
        const server = createServer((req, res) => this.handle(req, res, addr));
        server.requestTimeout = 5000;
        server.headersTimeout = 5000;
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(this.d.port ?? MMDS_PORT, addr, () => resolve());
        });
        await this.d.listening?.(addr, this.d.port ?? MMDS_PORT);
        return server;
      })();
      this.servers.set(key, s);
      s.catch(() => this.servers.delete(key));
    }
    return s;
  }

  /** Which VM a request comes from: the VM holding the source address now, if its data is configured for it here. */
  private vmFor(remote: string, local: string): [string, AgentMmds] | undefined {
    const ip = remote.replace(/^::ffff:/, '');
    const id = this.d.ownerOf(ip);
    const m = id === undefined ? undefined : this.byVm.get(id);
    if (!id || !m?.guest_ips.includes(ip) || m.config.ipv4_address !== local) return undefined;
    return [id, m];
  }

  /** Whether this agent holds metadata for `vmId` (tests and the inventory ask). */
  has(vmId: string): boolean {
    return this.byVm.has(vmId);
  }

  private handle(req: IncomingMessage, res: ServerResponse, local: string): unknown {
    const send = (status: number, body: string, type = 'text/plain') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const found = this.vmFor(req.socket.remoteAddress ?? '', local);
    if (!found) return send(403, 'Forbidden: not a VM with metadata on this host');
    const [vmId, m] = found;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return send(405, 'Method not allowed');
      if (req.headers['x-forwarded-for']) return send(400, 'Invalid header: X-Forwarded-For');
      const ttl = Number(req.headers['x-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_S)
        return send(400, `X-metadata-token-ttl-seconds must be an integer in [1, ${MAX_TTL_S}]`);
      this.sweep(vmId);
      const token = randomBytes(32).toString('base64url');
      this.tokens.set(token, { vmId, expires: this.now() + ttl * 1000 });
      return send(200, token);
    }
    if (req.method !== 'GET') return send(405, 'Method not allowed');
    const header = req.headers['x-metadata-token'];
    const token = typeof header === 'string' ? header : undefined;
    if (token !== undefined || m.config.version === 'V2') {
      const t = token ? this.tokens.get(token) : undefined;
      if (!t || t.vmId !== vmId || t.expires <= this.now())
        return send(401, m.config.version === 'V2' && !token ? 'No MMDS token provided' : 'MMDS token not valid');
    }
    const node = lookup(m.data, path);
    if (node === undefined) return send(404, 'Not found');
    if ((req.headers.accept ?? '').includes('application/json'))
      return send(200, JSON.stringify(node), 'application/json');
    const text = imdsText(node);
    if (text === null) return send(400, 'Cannot retrieve value: it has no IMDS form (use Accept: application/json)');
    return send(200, text);
  }

  private sweep(vmId: string): void {
    const now = this.now();
    let count = 0;
    for (const [t, v] of this.tokens) {
      if (v.expires <= now) this.tokens.delete(t);
      else if (v.vmId === vmId && ++count >= MAX_TOKENS_PER_VM) this.tokens.delete(t);
    }
  }

  async close(): Promise<void> {
    const all = [...new Set(this.servers.values())];
    this.servers.clear();
    await Promise.all(
      all.map((p) => p.then((s) => new Promise<void>((r) => s.close(() => r()))).catch(() => undefined)),
    );
  }
}
