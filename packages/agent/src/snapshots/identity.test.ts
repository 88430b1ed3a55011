import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../host/exec.ts';
import { reidentify } from './identity.ts';

const NIC = { tap: 'nqt-abc0', bridge: 'nqbr-x', oldIp: '10.9.0.2', gateway: '10.9.0.1', oldToken: 'old-token' };
const NEXT = {
  vm_id: 'vm-2',
  token: 'new-token',
  hostname: 'inst',
  ip: '10.9.0.3/24',
  gateway: '10.9.0.1',
  mac: '02:00:00:00:00:03',
};

/** Records the host commands; every one succeeds. */
function runner(): CommandRunner & { cmds: string[] } {
  const cmds: string[] = [];
  return {
    cmds,
    run: async (cmd, args) => {
      cmds.push([cmd, ...args].join(' '));
      return { code: 0, stdout: '', stderr: '' };
    },
  };
}

/**
 * A restored guest as the host sees it over the TAP: it holds the old address and token until it takes the
 * identity; `lose202` makes it take the first push but the host never sees the answer (a timeout under load).
 */
function guest(opts: { lose202?: boolean; refuse?: number } = {}) {
  let taken = false;
  const calls: string[] = [];
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    calls.push(`${init?.method ?? 'GET'} ${url}`);
    if (url.startsWith(`http://${NIC.oldIp}:9000/identity`)) {
      if (taken) return new Response(null, { status: 401 });
      if (opts.refuse) return new Response(null, { status: opts.refuse });
      taken = true;
      if (opts.lose202) throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
      return new Response('{"ok":true}', { status: 202 });
    }
    if (url === `http://10.9.0.3:9000/health`) {
      if (!taken) throw new TypeError('fetch failed');
      return new Response('{"status":"ok"}', { status: 200 });
    }
    throw new TypeError(`unexpected ${url}`);
  }) as typeof fetch;
  return { f, calls };
}

describe('reidentify', () => {
  it('pushes the identity, sees the guest on its new address, then puts the TAP back into its bridge', async () => {
    const r = runner();
    const g = guest();
    await reidentify({ runner: r, fetch: g.f, timeoutMs: 5000 }, NIC, NEXT);
    expect(g.calls[0]).toBe('POST http://10.9.0.2:9000/identity');
    expect(r.cmds).toContain('ip neigh replace 10.9.0.3 lladdr 02:00:00:00:00:03 dev nqt-abc0 nud permanent');
    expect(r.cmds.at(-1)).toBe('ip link set dev nqt-abc0 master nqbr-x');
    // No static neighbour for the old address: the host's ARP request teaches the guest the TAP's MAC.
    expect(r.cmds.some((c) => c.startsWith('ip neigh replace 10.9.0.2'))).toBe(false);
  });

  it("an instance given its source's address again uses the new MAC after the push, and no stale bridge entry", async () => {
    const r = runner();
    const g = guest();
    const same = { ...NEXT, ip: '10.9.0.2/24' };
    const f = (async (input: string | URL | Request, init?: RequestInit) =>
      g.f(String(input).replace('http://10.9.0.2:9000/health', 'http://10.9.0.3:9000/health'), init)) as typeof fetch;
    // One log of host commands and requests, in order.
    const both: CommandRunner = {
      run: async (cmd, args) => {
        g.calls.push([cmd, ...args].join(' '));
        return r.run(cmd, args);
      },
    };
    await reidentify({ runner: both, fetch: f, timeoutMs: 5000 }, NIC, same);
    const pinned = r.cmds.indexOf('ip neigh replace 10.9.0.2 lladdr 02:00:00:00:00:03 dev nqt-abc0 nud permanent');
    expect(pinned).toBeGreaterThan(-1);
    // Only after the push: before it, frames to the new MAC would not reach a guest still on the old one.
    const inOrder = g.calls.filter((c) => c.endsWith('/identity') || c.startsWith('ip neigh replace'));
    expect(inOrder).toEqual([
      'POST http://10.9.0.2:9000/identity',
      'ip neigh replace 10.9.0.2 lladdr 02:00:00:00:00:03 dev nqt-abc0 nud permanent',
    ]);
    expect(r.cmds).toContain('ip neigh del 10.9.0.2 dev nqbr-x');
    expect(r.cmds.indexOf('ip neigh del 10.9.0.2 dev nqbr-x')).toBeGreaterThan(pinned);
    expect(r.cmds.at(-1)).toBe('ip link set dev nqt-abc0 master nqbr-x');
  });

  it('a push whose 202 was lost, though the guest took it, ends by the new address (no retry into a 401)', async () => {
    const r = runner();
    const g = guest({ lose202: true });
    await reidentify({ runner: r, fetch: g.f, timeoutMs: 5000 }, NIC, NEXT);
    expect(g.calls.filter((c) => c.endsWith('/identity'))).toHaveLength(1);
    expect(r.cmds.at(-1)).toBe('ip link set dev nqt-abc0 master nqbr-x');
  });

  it('a guest agent that refuses the old token from the start (403) fails the restore at once', async () => {
    const g = guest({ refuse: 403 });
    await expect(reidentify({ runner: runner(), fetch: g.f, timeoutMs: 5000 }, NIC, NEXT)).rejects.toMatchObject({
      code: 'guest_identity_refused',
    });
  });
});
