import { DomainError } from '../../../domain/errors.ts';
import type { GuardedResponse, UrlGuard } from '../../../security/url-guard.ts';
import type { OciReference } from './oci.reference.ts';

const FIELD = 'body.source.reference';

export class RegistryAuthFailed extends DomainError {
  constructor(message: string, field: string) {
    super(400, 'registry_auth_failed', message, field);
  }
}

export class RegistryUnavailable extends DomainError {
  constructor(message: string) {
    super(502, 'registry_unavailable', message, FIELD);
  }
}

export interface Credentials {
  username: string;
  password: string;
}

/** `Bearer realm="…",service="…",scope="…"` → scheme and parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\S+)\s*(.*)$/.exec(header);
  const params: Record<string, string> = {};
  for (const p of (m?.[2] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[p[1]!.toLowerCase()] = p[2]!;
  return { scheme: (m?.[1] ?? '').toLowerCase(), params };
}

/** Reads a small response body whole; a body over `limit` bytes is refused. */
export async function readSmall(res: GuardedResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.body.destroy();
      throw new RegistryUnavailable(`the registry sent more than ${limit} bytes where a small document was expected`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Speaks the OCI distribution API to one repository: anonymous first, then whatever the registry's challenge asks
 * (Basic with the credentials, or a Bearer token from its realm, got with them when given). Every request, the
 * token realm's too, goes through the URL guard.
 */
export class RegistryClient {
  private authorization: string | undefined;

  constructor(
    private readonly guard: UrlGuard,
    private readonly ref: OciReference,
    private readonly creds: Credentials | undefined,
    private readonly signal: AbortSignal,
  ) {}

  /** GET `/v2/<repository>/<path>`; answers the registry's auth challenge once. Non-2xx answers are returned. */
  async get(path: string, accept?: string): Promise<GuardedResponse> {
    const url = new URL(`/v2/${this.ref.repository}/${path}`, this.ref.registry);
    let res = await this.send(url, accept);
    if (res.status !== 401) return res;
    const challenge = res.headers['www-authenticate'];
    res.body.resume();
    if (this.authorization !== undefined || typeof challenge !== 'string')
      throw this.authFailed('the registry refused the credentials');
    await this.authenticate(challenge);
    res = await this.send(url, accept);
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      throw this.authFailed('the registry refused the credentials');
    }
    return res;
  }

  private authFailed(message: string): RegistryAuthFailed {
    return new RegistryAuthFailed(
      this.creds ? `${message} for ${this.ref.canonical}` : `${this.ref.canonical} needs registry credentials`,
      this.creds ? 'body.source.password' : 'body.source.username',
    );
  }

  private async send(url: URL, accept: string | undefined): Promise<GuardedResponse> {
    const headers: Record<string, string> = {};
    if (accept) headers.accept = accept;
    if (this.authorization) headers.authorization = this.authorization;
    try {
      return await this.guard.fetch(url, { field: FIELD, signal: this.signal, headers });
    } catch (err) {
      if (err instanceof DomainError || this.signal.aborted) throw err;
      throw new RegistryUnavailable(`cannot reach ${url.host}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private basic(): string | undefined {
    if (!this.creds) return undefined;
    return `Basic ${Buffer.from(`${this.creds.username}:${this.creds.password}`).toString('base64')}`;
  }

  private async authenticate(header: string): Promise<void> {
    const { scheme, params } = parseChallenge(header);
    if (scheme === 'basic') {
      const basic = this.basic();
      if (!basic) throw this.authFailed('no credentials');
      this.authorization = basic;
      return;
    }
    if (scheme !== 'bearer' || !params.realm)
      throw new RegistryUnavailable(`the registry asks for an authentication scheme nqvm does not speak: ${scheme}`);
    const realm = this.guard.parse(params.realm, FIELD);
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', params.scope ?? `repository:${this.ref.repository}:pull`);
    const basic = this.basic();
    let res: GuardedResponse;
    try {
      res = await this.guard.fetch(realm, {
        field: FIELD,
        signal: this.signal,
        ...(basic ? { headers: { authorization: basic } } : {}),
      });
    } catch (err) {
      if (err instanceof DomainError || this.signal.aborted) throw err;
      throw new RegistryUnavailable(`cannot reach the token service ${realm.host}`);
    }
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      throw this.authFailed('the token service refused the credentials');
    }
    if (res.status !== 200) {
      res.body.resume();
      throw new RegistryUnavailable(`the token service answered ${res.status}`);
    }
    let token: unknown;
    try {
      const body = JSON.parse((await readSmall(res, 1 << 20)).toString('utf8')) as Record<string, unknown>;
      token = body.token ?? body.access_token;
    } catch (err) {
      if (err instanceof DomainError) throw err;
      token = undefined;
    }
    if (typeof token !== 'string' || !/^[\x21-\x7e]{1,16384}$/.test(token))
      throw new RegistryUnavailable('the token service sent no usable token');
    this.authorization = `Bearer ${token}`;
  }
}
