import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import { createLogger } from '../../src/log';
import { firstIpv4, postJson, type ReporterDeps, retryDelayMs, startReporter } from '../../src/report';
import type { GuestReport } from '../../src/types';

const TOKEN = 'secret-token-0123456789';
const config = parseConfig(
  JSON.stringify({ vm_id: 'vm-42', token: TOKEN, host_url: 'http://10.0.0.1:19090/' }),
  '/etc/nqvm/guest-agent.json',
);

interface Harness {
  deps: ReporterDeps;
  sleeps: number[];
  posts: { url: string; token: string; body: GuestReport }[];
  logs: string[];
  /** Runs the reporter until every outcome has been used, then stops it. */
  run(): Promise<void>;
}

/** Fakes for every side effect; `outcomes` is consumed one per post (a status code or a thrown error). */
function harness(outcomes: (number | Error)[], ips: (string | null)[] = ['10.0.0.5']): Harness {
  const sleeps: number[] = [];
  const posts: Harness['posts'] = [];
  const logs: string[] = [];
  let ipCall = 0;
  let stop: () => Promise<void> = async () => {};
  const deps: ReporterDeps = {
    post: async (url, token, body) => {
      posts.push({ url: url.href, token, body });
      const next = outcomes.shift();
      if (next === undefined) throw new Error('no more outcomes');
      if (next instanceof Error) throw next;
      return next;
    },
    guestIp: () => ips[Math.min(ipCall++, ips.length - 1)] ?? null,
    hostname: () => 'debian-guest',
    bootId: async () => '4e5f2c3a-1111-2222-3333-444455556666\n',
    sleep: async (ms) => {
      sleeps.push(ms);
      if (outcomes.length === 0) void stop();
    },
    logger: createLogger((line) => logs.push(line)),
  };
  return {
    deps,
    sleeps,
    posts,
    logs,
    run: async () => {
      const reporter = startReporter(config, deps);
      stop = reporter.stop;
      await reporter.done;
    },
  };
}

describe('retryDelayMs', () => {
  it('backs off 1 s, 2 s, 4 s and then stays at the 5 s cap', () => {
    expect([1, 2, 3, 4, 5, 50].map(retryDelayMs)).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
  });
});

describe('firstIpv4', () => {
  it('skips loopback and IPv6 and returns the first external IPv4', () => {
    const ifaces = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '', mac: '', cidr: null }],
      eth0: [
        { address: 'fe80::1', family: 'IPv6', internal: false, netmask: '', mac: '', cidr: null, scopeid: 2 },
        { address: '10.0.0.5', family: 'IPv4', internal: false, netmask: '', mac: '', cidr: null },
      ],
    } as const;
    expect(firstIpv4(ifaces as unknown as Parameters<typeof firstIpv4>[0])).toBe('10.0.0.5');
  });

  it('is null while only loopback is up', () => {
    expect(
      firstIpv4({ lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '', mac: '', cidr: null }] }),
    ).toBeNull();
  });
});

describe('startReporter', () => {
  it('retries with backoff until the host accepts, then re-reports every 30 s', async () => {
    const h = harness([new Error('connect ECONNREFUSED'), 503, new Error('timeout'), 204, 200], [null, '10.0.0.5']);
    await h.run();
    // First attempt has no address yet: nothing is posted, and it counts as a failure.
    expect(h.sleeps).toEqual([1000, 2000, 4000, 5000, 30_000, 30_000]);
    expect(h.posts).toHaveLength(5);
    expect(h.posts[0]).toEqual({
      url: 'http://10.0.0.1:19090/guest/v1/vms/vm-42/report',
      token: TOKEN,
      body: {
        ip: '10.0.0.5',
        hostname: 'debian-guest',
        ready: true,
        agent_version: '0.1.0',
        boot_id: '4e5f2c3a-1111-2222-3333-444455556666',
      },
    });
  });

  it('goes back to fast retries when a re-report fails', async () => {
    const h = harness([200, new Error('host agent restarting'), 200]);
    await h.run();
    expect(h.sleeps).toEqual([30_000, 1000, 30_000]);
  });

  it('logs one JSON object per line and never the token', async () => {
    const h = harness([401, new Error('socket hang up'), 200]);
    await h.run();
    expect(h.logs.length).toBeGreaterThanOrEqual(3);
    for (const line of h.logs) {
      expect(line.endsWith('\n')).toBe(true);
      expect(() => JSON.parse(line)).not.toThrow();
      expect(line).not.toContain(TOKEN);
    }
    expect(JSON.parse(h.logs[0] ?? '{}')).toMatchObject({
      level: 'warn',
      msg: 'report_failed',
      reason: 'host answered 401',
    });
  });

  it('keeps retrying when reading the interfaces throws', async () => {
    const h = harness([200]);
    let calls = 0;
    h.deps.guestIp = () => {
      if (calls++ === 0) throw new Error('uv_interface_addresses failed');
      return '10.0.0.5';
    };
    await h.run();
    expect(h.sleeps).toEqual([1000, 30_000]);
    expect(h.posts).toHaveLength(1);
  });

  it('kick() cuts an attempt that hangs and reports again at once, without a backoff', async () => {
    const posts: AbortSignal[] = [];
    const sleeps: number[] = [];
    let stop: () => Promise<void> = async () => {};
    const reporter = startReporter(config, {
      post: (_url, _token, _body, signal) => {
        posts.push(signal);
        // The first report hangs (sent where it cannot arrive); the second is accepted.
        if (posts.length === 1)
          return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
        return Promise.resolve(200);
      },
      guestIp: () => '10.0.0.5',
      hostname: () => 'g',
      bootId: async () => 'b',
      sleep: async (ms) => {
        sleeps.push(ms);
        void stop();
      },
      logger: createLogger(() => {}),
    });
    stop = reporter.stop;
    while (posts.length === 0) await new Promise((r) => setImmediate(r));
    reporter.kick();
    await reporter.done;
    expect(posts).toHaveLength(2);
    expect(posts[0]?.aborted).toBe(true);
    // No retry delay between the cut attempt and the next: only the re-report interval after it succeeded.
    expect(sleeps).toEqual([30_000]);
  });

  it('stop() ends the loop during a long sleep', async () => {
    const h = harness([200]);
    h.deps.sleep = (_ms, signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve()));
    const reporter = startReporter(config, h.deps);
    while (h.posts.length === 0) await new Promise((r) => setImmediate(r));
    await reporter.stop();
    await expect(reporter.done).resolves.toBeUndefined();
  });
});

describe('postJson', () => {
  it('sends the bearer token and JSON body and resolves with the status', async () => {
    const seen: { req: IncomingMessage; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        seen.push({ req, body });
        res.writeHead(202).end('accepted');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const status = await postJson(
        new URL(`http://127.0.0.1:${port}/r`),
        TOKEN,
        { a: 1 },
        new AbortController().signal,
      );
      expect(status).toBe(202);
      expect(seen[0]?.req.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(seen[0]?.req.headers['content-type']).toBe('application/json');
      expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ a: 1 });
    } finally {
      server.close();
    }
  });
});
