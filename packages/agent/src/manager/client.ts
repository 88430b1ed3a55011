import type {
  AgentVmStatus,
  HeartbeatRequest,
  HostCapabilities,
  HostCapacity,
  HostCertificate,
  RegisterHostRequest,
  VmExitReport,
} from '@nqvm/api';

export class ManagerCallFailed extends Error {
  constructor(
    readonly status: number,
    readonly path: string,
    detail: string,
  ) {
    super(`manager ${path}: ${status ? `HTTP ${status}` : 'unreachable'} ${detail}`.trim());
    this.name = 'ManagerCallFailed';
  }
}

export interface Identity {
  host_id: string;
  secret: string;
}

export type GuestReportRelay = {
  ip: string;
  hostname?: string;
  ready?: boolean;
  agent_version?: string;
  boot_id?: string;
};

/** Every agent → manager call; each one authenticated with the host secret (or, relayed, a guest's token). */
export class ManagerClient {
  identity: Identity | undefined;
  /** The URL this agent serves on now; every heartbeat carries it, so a restart on another address is learnt. */
  advertisedUrl: string | undefined;

  constructor(
    readonly base: string,
    private readonly timeoutMs = 10_000,
  ) {}

  private async call(path: string, init: { method: string; token: string; body?: unknown }): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method: init.method,
        headers: {
          authorization: `Bearer ${init.token}`,
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.identity ? { 'x-nqvm-host-id': this.identity.host_id } : {}),
        },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new ManagerCallFailed(0, path, (e as Error).message);
    }
    if (!res.ok) throw new ManagerCallFailed(res.status, path, (await res.text().catch(() => '')).slice(0, 500));
    return res;
  }

  private requireIdentity(): Identity {
    if (!this.identity) throw new Error('the agent is not registered with the manager yet');
    return this.identity;
  }

  /** Registers; a host that has an identity proves it with its current secret (the manager refuses the name otherwise). */
  async register(req: RegisterHostRequest): Promise<Identity> {
    const proof = req.secret === undefined && this.identity ? { ...req, secret: this.identity.secret } : req;
    const res = await this.call('/v1/hosts/register', { method: 'POST', token: req.join_token, body: proof });
    const body = (await res.json()) as { id: string; secret: string };
    return { host_id: body.id, secret: body.secret };
  }

  /** The manager issues this agent's TLS certificate for its public key. */
  async certificate(publicKey: string): Promise<HostCertificate> {
    const id = this.requireIdentity();
    const res = await this.call(`/v1/hosts/${id.host_id}/certificate`, {
      method: 'POST',
      token: id.secret,
      body: { public_key: publicKey },
    });
    return (await res.json()) as HostCertificate;
  }

  async heartbeat(capacity: HostCapacity, capabilities: HostCapabilities, vms: AgentVmStatus[]): Promise<void> {
    const id = this.requireIdentity();
    const body: HeartbeatRequest = {
      capacity,
      capabilities,
      vms: vms.map((v) => ({ id: v.id, state: v.state, ...(v.pid === null ? {} : { pid: v.pid }) })),
      ...(this.advertisedUrl ? { addr: this.advertisedUrl } : {}),
    };
    await this.call(`/v1/hosts/${id.host_id}/heartbeat`, { method: 'POST', token: id.secret, body });
  }

  async reportExit(report: VmExitReport): Promise<void> {
    const id = this.requireIdentity();
    await this.call(`/v1/hosts/${id.host_id}/vm-exits`, { method: 'POST', token: id.secret, body: report });
  }

  /** Relays a guest's report with the guest's own token: the manager checks it belongs to that VM. */
  async relayGuestReport(vmId: string, guestToken: string, body: GuestReportRelay): Promise<void> {
    await this.call(`/v1/vms/${encodeURIComponent(vmId)}/guest-ip`, { method: 'POST', token: guestToken, body });
  }

  /** Streams an image's bytes (host secret + host id header). */
  async imageContent(imageId: string): Promise<ReadableStream<Uint8Array>> {
    const id = this.requireIdentity();
    const res = await fetch(`${this.base}/v1/images/${encodeURIComponent(imageId)}/content`, {
      headers: { authorization: `Bearer ${id.secret}`, 'x-nqvm-host-id': id.host_id },
    }).catch((e: Error) => {
      throw new ManagerCallFailed(0, `/v1/images/${imageId}/content`, e.message);
    });
    if (!res.ok || !res.body)
      throw new ManagerCallFailed(res.status, `/v1/images/${imageId}/content`, await res.text().catch(() => ''));
    return res.body;
  }
}
