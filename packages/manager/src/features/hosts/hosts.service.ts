import { timingSafeEqual } from 'node:crypto';
import type {
  HeartbeatRequest,
  Host,
  HostCapabilities,
  HostCapacity,
  HostCertificate,
  RegisterHostRequest,
} from '@nqvm/api';
import { decodeCursor, encodeCursor, type Key } from '../../db/keyset.ts';
import { BadRequest, Conflict, NotFound } from '../../domain/errors.ts';
import type { Principal } from '../../http/principal.ts';
import type { ManagerPki } from '../../security/pki.ts';
import type { SecretBox } from '../../security/secret-box.ts';
import { hashToken, newToken } from '../../security/tokens.ts';
import type { HostRow, HostsRepository } from './hosts.repository.ts';
import type { JoinTokens } from './join-tokens.ts';

export interface Allocation {
  vcpu: number;
  mem_mib: number;
  vms: number;
}

/** What the VM feature tells hosts about: resources placed on each host. */
export interface AllocationSource {
  /** Every host's, or only those of `hostIds`. */
  byHost(hostIds?: string[]): Promise<Map<string, Allocation>>;
}

const HOST_KEYS: Key[] = [
  { column: 'name', kind: 'text' },
  { column: 'id', kind: 'uuid' },
];

export const noAllocations: AllocationSource = { byHost: async () => new Map() };

export interface HostsServiceOptions {
  joinTokens: JoinTokens;
  pki: ManagerPki;
  heartbeatTimeoutS: number;
  now?: () => Date;
}

/** An agent URL as stored: http(s), a host and maybe a port, nothing else; no trailing slash. */
export function normalizeAgentUrl(raw: string, field: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new BadRequest('invalid_agent_url', `not a URL: ${JSON.stringify(raw)}`, field);
  }
  const bare = (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
  if (!bare || u.pathname !== '/' || u.search || u.hash || !u.hostname)
    throw new BadRequest('invalid_agent_url', `an agent URL is scheme://host[:port] only, not ${raw}`, field);
  return `${u.protocol}//${u.host}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class HostsService {
  private readonly now: () => Date;
  private allocations: AllocationSource = noAllocations;

  constructor(
    private readonly repo: HostsRepository,
    private readonly secrets: SecretBox,
    private readonly opts: HostsServiceOptions,
  ) {
    this.now = opts.now ?? (() => new Date());
  }

  useAllocations(source: AllocationSource): void {
    this.allocations = source;
  }

  isHealthy(row: HostRow): boolean {
    return !!row.lastSeenAt && this.now().getTime() - row.lastSeenAt.getTime() <= this.opts.heartbeatTimeoutS * 1000;
  }

  toHost(row: HostRow, alloc: Allocation | undefined): Host {
    return {
      id: row.id,
      name: row.name,
      addr: row.addr,
      health: this.isHealthy(row) ? 'healthy' : 'unreachable',
      capacity: (row.capacity as HostCapacity | null) ?? null,
      capabilities: (row.capabilities as HostCapabilities | null) ?? null,
      labels: row.labels,
      allocated: alloc ?? { vcpu: 0, mem_mib: 0, vms: 0 },
      last_seen_at: row.lastSeenAt?.toISOString() ?? null,
      created_at: row.createdAt.toISOString(),
    };
  }

  /**
   * A new name joins with a join token (expiring, single-use); an existing name is the same host only with its
   * current secret as well (a join token alone never takes over a host, its id and its VMs). The token is spent
   * only by a registration that succeeds.
   */
  async register(req: RegisterHostRequest): Promise<{ id: string; secret: string }> {
    const tokenId = await this.opts.joinTokens.take(req.join_token);
    try {
      const res = await this.registerWithToken(req);
      await this.opts.joinTokens.joined(tokenId, res.id);
      return res;
    } catch (err) {
      await this.opts.joinTokens.release(tokenId);
      throw err;
    }
  }

  private async registerWithToken(req: RegisterHostRequest): Promise<{ id: string; secret: string }> {
    const secret = newToken('host');
    const fields = {
      addr: normalizeAgentUrl(req.addr, 'body.addr'),
      secretHash: hashToken(secret),
      secretEnc: this.secrets.seal(secret),
      labels: req.labels ?? {},
      capacity: req.capacity ?? null,
      capabilities: req.capabilities ?? null,
      now: this.now(),
    };
    const created = await this.repo.insert({ name: req.name, ...fields });
    if (created) return { id: created.id, secret };
    const existing = await this.repo.byName(req.name);
    const proven = existing && req.secret !== undefined && safeEqual(hashToken(req.secret), existing.secretHash);
    if (!existing || !proven)
      throw new Conflict(
        'host_exists',
        `a host named ${req.name} is registered; registering it again needs its current secret` +
          ' (or delete the host first)',
        req.secret === undefined ? 'body.name' : 'body.secret',
      );
    const row = await this.repo.reRegister(existing.id, existing.secretHash, fields);
    if (!row) throw new Conflict('host_exists', `host ${req.name} was re-registered concurrently`, 'body.secret');
    return { id: row.id, secret };
  }

  /** The agent's TLS certificate for the public key it sent, naming the host (host secret checked by the route). */
  async certificate(hostId: string, publicKeyPem: string): Promise<HostCertificate> {
    const row = await this.repo.get(hostId);
    if (!row) throw new NotFound('host', hostId);
    let issued: { certificate: string; notAfter: Date };
    try {
      issued = this.opts.pki.issueAgent(hostId, publicKeyPem, row.addr);
    } catch (err) {
      throw new BadRequest(
        'invalid_public_key',
        `not an EC P-256 or Ed25519 public key in SPKI PEM: ${err instanceof Error ? err.message : String(err)}`,
        'body.public_key',
      );
    }
    return {
      certificate: issued.certificate,
      ca_certificate: this.opts.pki.caPem,
      not_after: issued.notAfter.toISOString(),
    };
  }

  async authenticate(hostId: string, secret: string): Promise<Principal | null> {
    if (!UUID.test(hostId)) return null;
    const row = await this.repo.get(hostId);
    if (!row || !safeEqual(hashToken(secret), row.secretHash)) return null;
    return { kind: 'host', hostId };
  }

  /** Records capacity, capabilities and VMs; an agent now serving on another URL moves the host row there. */
  async heartbeat(hostId: string, hb: HeartbeatRequest): Promise<{ addrChanged?: { from: string; to: string } }> {
    const addr = hb.addr === undefined ? undefined : normalizeAgentUrl(hb.addr, 'body.addr');
    const res = await this.repo.heartbeat(hostId, {
      capacity: hb.capacity,
      capabilities: hb.capabilities,
      vms: hb.vms,
      now: this.now(),
      ...(addr ? { addr } : {}),
    });
    if (!res) throw new NotFound('host', hostId);
    return addr && addr !== res.previousAddr ? { addrChanged: { from: res.previousAddr, to: addr } } : {};
  }

  /** By name, a keyset page in two queries (the hosts, then what the page's hosts hold). */
  async list(limit = 50, cursor?: string): Promise<{ items: Host[]; next_cursor: string | null }> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor, HOST_KEYS);
    const rows = await this.repo.page(limit + 1, after);
    const page = rows.slice(0, limit);
    const alloc = await this.allocations.byHost(page.map((r) => r.id));
    const last = page[page.length - 1];
    return {
      items: page.map((r) => this.toHost(r, alloc.get(r.id))),
      next_cursor: rows.length > limit && last ? encodeCursor([last.name, last.id]) : null,
    };
  }

  async get(id: string): Promise<Host> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('host', id);
    return this.toHost(row, (await this.allocations.byHost([id])).get(id));
  }

  /** The row with its secret opened, for calling the host's agent. */
  async connection(id: string): Promise<{ row: HostRow; secret: string }> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('host', id);
    return this.connectionOf(row);
  }

  /** The same, for a row already read. */
  connectionOf(row: HostRow): { row: HostRow; secret: string } {
    return { row, secret: this.secrets.open(row.secretEnc) };
  }

  async rows(): Promise<HostRow[]> {
    return this.repo.list();
  }

  async delete(id: string): Promise<void> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('host', id);
    const alloc = (await this.allocations.byHost([id])).get(id);
    if (alloc && alloc.vms > 0)
      throw new Conflict('host_in_use', `host ${row.name} still has ${alloc.vms} VM(s); move or delete them first`);
    await this.repo.delete(id);
  }
}
