import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { NetworkInterfaceInfo } from 'node:os';
import type { ResolvedConfig } from './config';
import type { Logger } from './log';
import type { GuestReport } from './types';
import { GUEST_AGENT_VERSION, guestReportPath } from './version';

export const RETRY_BASE_MS = 1000;
export const RETRY_CAP_MS = 5000;
export const REREPORT_INTERVAL_MS = 30_000;
export const REPORT_TIMEOUT_MS = 5000;

/** Delay before the next attempt after `failures` consecutive failures (1 s, 2 s, 4 s, then 5 s). */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, failures - 1));
}

/** First non-internal IPv4 address, in the kernel's interface order; null while the network is not up. */
export function firstIpv4(ifaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string | null {
  for (const addrs of Object.values(ifaces)) {
    for (const a of addrs ?? []) {
      // Node 18.0–18.3 reported family as the number 4.
      const v4 = a.family === 'IPv4' || (a.family as unknown) === 4;
      if (v4 && !a.internal && !a.address.startsWith('127.')) return a.address;
    }
  }
  return null;
}

/** POSTs JSON with a bearer token and resolves with the status code; the response body is discarded. */
export function postJson(url: URL, token: string, body: unknown, signal: AbortSignal): Promise<number> {
  const payload = JSON.stringify(body);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        signal,
        timeout: REPORT_TIMEOUT_MS,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REPORT_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface ReporterDeps {
  post(url: URL, token: string, body: GuestReport, signal: AbortSignal): Promise<number>;
  guestIp(): string | null;
  hostname(): string;
  bootId(): Promise<string>;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  logger: Logger;
}

export interface Reporter {
  /** Settles when the loop has ended (only after stop()). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
  /**
   * Reports again now (the identity or address changed, or the host asks) instead of at the next interval or
   * retry: an attempt under way is cut, since it may have been sent where it cannot arrive.
   */
  kick(): void;
}

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Builds the report body, or null when there is no address to report yet. */
async function buildReport(deps: ReporterDeps): Promise<GuestReport | null> {
  const ip = deps.guestIp();
  if (!ip) return null;
  const bootId = await deps.bootId().catch(() => '');
  return { ip, hostname: deps.hostname(), ready: true, agent_version: GUEST_AGENT_VERSION, boot_id: bootId.trim() };
}

/**
 * Reports to the host agent until it accepts (2xx), retrying with backoff while the network or host is not up,
 * then re-reports every 30 s so a restarted host agent or a changed address is picked up.
 */
export function startReporter(config: ResolvedConfig, deps: ReporterDeps): Reporter {
  const controller = new AbortController();
  const { signal } = controller;
  // Appended rather than resolved so a host_url with a path prefix keeps it.
  // Built per attempt: a clone's vm_id changes when it takes its new identity.
  const urlOf = () => new URL(config.hostUrl.href.replace(/\/+$/, '') + guestReportPath(config.vm_id));
  const log = deps.logger;
  // Origin and path only: a host_url with userinfo must not reach the log.
  const safeUrlOf = () => urlOf().origin + urlOf().pathname;
  let nap = new AbortController();
  let current = new AbortController();
  /** Set by kick(): the attempt under way (or the nap) is cut and the next one starts at once. */
  let kicked = false;
  signal.addEventListener('abort', () => nap.abort(), { once: true });
  const sleep = async (ms: number) => {
    nap = new AbortController();
    if (signal.aborted) return;
    await deps.sleep(ms, nap.signal);
  };

  // Never throws: any failure, even reading the interfaces, becomes a retry rather than a dead loop.
  const attempt = async (): Promise<{ ok: boolean; ip?: string; reason?: string }> => {
    let report: GuestReport | null;
    try {
      report = await buildReport(deps);
    } catch (err) {
      return { ok: false, reason: err instanceof Error ? err.message : String(err) };
    }
    if (!report) return { ok: false, reason: 'no non-loopback IPv4 address yet' };
    // Its own signal: a kick cuts an attempt that may hang (sent before the host let this guest through).
    const cut = new AbortController();
    current = cut;
    const onStop = () => cut.abort();
    signal.addEventListener('abort', onStop, { once: true });
    try {
      const status = await deps.post(urlOf(), config.token, report, cut.signal);
      if (status >= 200 && status < 300) return { ok: true, ip: report.ip };
      return { ok: false, ip: report.ip, reason: `host answered ${status}` };
    } catch (err) {
      return { ok: false, ip: report.ip, reason: err instanceof Error ? err.message : String(err) };
    } finally {
      signal.removeEventListener('abort', onStop);
    }
  };

  const loop = async (): Promise<void> => {
    let failures = 0;
    let reportedIp: string | undefined;
    while (!signal.aborted) {
      kicked = false;
      const result = await attempt();
      if (signal.aborted) break;
      if (kicked) {
        failures = 0;
        continue;
      }
      if (result.ok) {
        if (failures > 0 || result.ip !== reportedIp) {
          log.info('reported', { url: safeUrlOf(), vm_id: config.vm_id, ip: result.ip, after_failures: failures });
        }
        reportedIp = result.ip;
        failures = 0;
        await sleep(REREPORT_INTERVAL_MS);
      } else {
        failures++;
        const delay = retryDelayMs(failures);
        log.warn('report_failed', { url: safeUrlOf(), reason: result.reason, attempt: failures, retry_in_ms: delay });
        await sleep(delay);
      }
    }
  };

  const done = loop();
  return {
    done,
    stop: async () => {
      controller.abort();
      await done;
    },
    kick: () => {
      kicked = true;
      current.abort();
      nap.abort();
    },
  };
}
