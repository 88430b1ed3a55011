import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { DomainError } from '../domain/errors.ts';

/** A URL that leads somewhere the manager will not fetch from: a 400 naming the field it came from. */
export class UrlRefused extends DomainError {
  constructor(message: string, field: string) {
    super(400, 'url_not_allowed', message, field);
  }
}

/** A URL that is malformed, not http(s), or carries credentials. */
export class InvalidUrl extends DomainError {
  constructor(message: string, field: string) {
    super(400, 'invalid_url', message, field);
  }
}

export interface Cidr {
  family: 'ipv4' | 'ipv6';
  address: string;
  prefix: number;
}

/** `10.1.0.0/16` or `fd00::/8` (a bare address is a single host), or undefined when it is not one. */
export function parseCidr(raw: string): Cidr | undefined {
  const [address = '', bits, ...rest] = raw.trim().split('/');
  const v = isIP(address);
  if (!v || rest.length) return undefined;
  const max = v === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { family: v === 4 ? 'ipv4' : 'ipv6', address, prefix };
}

// Where a URL fetched on a user's behalf must never land unless the operator allows it: this host, its
// private and link-local neighbours (cloud metadata at 169.254.169.254), shared/CGNAT, multicast, reserved
// and documentation ranges, and IPv6 forms that reach IPv4 (NAT64, 6to4).
const INTERNAL = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '::1/128',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/23',
  '2001:db8::/32',
  '2002::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];

function blockList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const raw of cidrs) {
    const c = parseCidr(raw);
    if (!c) throw new Error(`not a CIDR: ${raw}`);
    list.addSubnet(c.address, c.prefix, c.family);
  }
  return list;
}

/** `::ffff:127.0.0.1` is 127.0.0.1: mapped addresses are judged as the IPv4 address they carry. */
function canonical(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1]!, family: 'ipv4' };
  return { address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

export interface UrlGuardOptions {
  /** Ranges allowed although internal (`NQVM_IMPORT_ALLOW_CIDRS`). */
  allow: string[];
  /** Further ranges to refuse: the guest networks. */
  deny?: string[];
  /** Name resolution (tests pass their own); defaults to the system resolver. */
  lookup?: typeof dnsLookup;
}

export interface GuardedResponse {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  /** The response body; the caller reads it or destroys it. */
  body: IncomingMessage;
  /** The URL that answered, after redirects. */
  url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Fetches URLs on a user's behalf without reaching internal addresses: every name is resolved once, every
 * address checked, and the socket connects to the address that was checked (no second lookup to rebind);
 * every redirect is checked the same way. Used by URL imports; webhooks and OCI pulls reuse it.
 */
export class UrlGuard {
  private readonly internal: BlockList;
  private readonly allowed: BlockList;
  private readonly resolve: typeof dnsLookup;

  constructor(opts: UrlGuardOptions) {
    this.internal = blockList([...INTERNAL, ...(opts.deny ?? [])]);
    this.allowed = blockList(opts.allow);
    this.resolve = opts.lookup ?? dnsLookup;
  }

  /** Whether an address may be connected to. */
  permits(address: string): boolean {
    const a = canonical(address);
    if (this.allowed.check(a.address, a.family)) return true;
    return !this.internal.check(a.address, a.family);
  }

  /** Parses and checks a URL's form: http(s), no credentials. Throws InvalidUrl naming `field`. */
  parse(raw: string | URL, field: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new InvalidUrl('not a valid URL', field);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new InvalidUrl('only http and https URLs can be fetched', field);
    if (url.username || url.password) throw new InvalidUrl('URLs with credentials are not fetched', field);
    return url;
  }

  /** Resolves the URL's host and checks every address it has; returns the ones allowed. */
  async check(url: URL, field: string): Promise<LookupAddress[]> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const addresses = isIP(host)
      ? [{ address: host, family: isIP(host) }]
      : await new Promise<LookupAddress[]>((resolve, reject) =>
          this.resolve(host, { all: true, verbatim: true }, (err, list) =>
            err ? reject(new UrlRefused(`cannot resolve ${host}: ${err.code ?? err.message}`, field)) : resolve(list),
          ),
        );
    const refused = addresses.find((a) => !this.permits(a.address));
    if (refused || addresses.length === 0)
      throw new UrlRefused(
        `${url.host} resolves to ${refused?.address ?? 'nothing'}, an internal address; imports may not reach it` +
          ' (NQVM_IMPORT_ALLOW_CIDRS can allow a range)',
        field,
      );
    return addresses;
  }

  /**
   * GET with redirects followed (at most `maxRedirects`), each hop checked. Resolves on the first
   * non-redirect response; its body is left unread.
   */
  async fetch(
    raw: string | URL,
    opts: { field: string; signal?: AbortSignal; maxRedirects?: number; headers?: Record<string, string> },
  ): Promise<GuardedResponse> {
    let url = this.parse(raw, opts.field);
    const origin = url.origin;
    const max = opts.maxRedirects ?? 5;
    for (let hop = 0; ; hop++) {
      const addresses = await this.check(url, opts.field);
      // Headers (credentials) go only to the origin they were meant for, never to where it redirects elsewhere.
      const headers = url.origin === origin ? opts.headers : undefined;
      const res = await this.get(url, addresses[0]!, opts.signal, headers ? { headers } : undefined);
      const location = res.headers.location;
      if (!REDIRECTS.has(res.statusCode ?? 0) || !location) {
        return {
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          headers: res.headers,
          body: res,
          url,
        };
      }
      res.resume();
      if (hop >= max) throw new UrlRefused(`more than ${max} redirects`, opts.field);
      url = this.parse(new URL(location, url), opts.field);
    }
  }

  /**
   * POSTs a body to a checked address; redirects are not followed (a webhook's answer is its status). Resolves with
   * the status once the response starts; its body is discarded.
   */
  async post(
    raw: string | URL,
    opts: { field: string; body: string; headers: Record<string, string>; signal?: AbortSignal },
  ): Promise<number> {
    const url = this.parse(raw, opts.field);
    const addresses = await this.check(url, opts.field);
    const res = await this.get(url, addresses[0]!, opts.signal, { method: 'POST', ...opts });
    res.resume();
    return res.statusCode ?? 0;
  }

  private get(
    url: URL,
    checked: LookupAddress,
    signal: AbortSignal | undefined,
    send?: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> },
  ): Promise<IncomingMessage> {
    // The socket's own lookup answers with the address already checked: no second resolution can differ.
    const lookup: LookupFunction = (_host, options, cb) => {
      if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: LookupAddress[]) => void)(null, [checked]);
      else cb(null, checked.address, checked.family);
    };
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const headers = { 'user-agent': 'nqvm-manager', ...send?.headers };
      const req = request(url, { method: send?.method ?? 'GET', lookup, signal, headers }, resolve);
      req.on('error', reject);
      req.end(send?.body);
    });
  }
}
