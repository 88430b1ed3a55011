import { randomBytes } from 'node:crypto';
import { type CommandRunner, runChecked } from '../host/exec.ts';
import { assertBridgeName, assertMac, assertTapName, parseCidr } from '../net/names.ts';
import { AgentError } from '../vms/errors.ts';
import type { PhaseClock } from '../vms/phase-clock.ts';

/** Where the guest agent listens inside every VM (the rootfs plan writes this port). */
export const GUEST_AGENT_PORT = 9000;

export interface NewIdentity {
  vm_id: string;
  token: string;
  hostname: string;
  /** CIDR, e.g. 10.88.0.7/24 */
  ip: string;
  gateway: string;
  mac: string;
}

/** Keeps a restored instance's TAP from reaching anything on the host but the agent's own calls (net/tap-guard.ts). */
export interface TapIsolation {
  isolate(tap: string): Promise<void>;
  release(tap: string): Promise<void>;
}

export interface ReidentifyDeps {
  runner: CommandRunner;
  /** Times the steps: `identity push` (accepted), `identity apply` (answering on its new address), `rebridge`. */
  clock?: PhaseClock;
  isolation?: TapIsolation;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The guest answers within milliseconds over its own TAP: poll often, the wait is the whole restore's latency. */
const POLL_MS = 20;

/** `fn(attempt)` until it holds; each attempt is a new connection (a SYN the guest dropped is not waited for). */
async function until(what: string, deadline: number, fn: (attempt: number) => Promise<boolean>): Promise<void> {
  let last = '';
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    try {
      if (await fn(attempt)) return;
    } catch (e) {
      if (e instanceof AgentError) throw e;
      last = (e as Error).message;
    }
    await sleep(POLL_MS);
  }
  throw new AgentError(504, 'guest_identity_timeout', `timed out waiting for ${what}${last ? `: ${last}` : ''}`);
}

/**
 * A restored guest still holds its source's address and guest token. Before it runs, its TAP leaves the bridge and
 * the host reaches the old address through that TAP only (a /32 route), so the source keeps its address on the
 * bridge; the isolation lets the guest answer the agent and reach nothing else until it holds its own token.
 */
export async function isolateTap(
  r: CommandRunner,
  tap: string,
  oldIp: string,
  gateway: string,
  isolation?: TapIsolation,
): Promise<void> {
  const t = assertTapName(tap);
  const ip = parseCidr(`${oldIp}/32`).address;
  const gw = parseCidr(`${gateway}/32`).address;
  await isolation?.isolate(t);
  await runChecked(r, 'ip', ['link', 'set', 'dev', t, 'nomaster']);
  await runChecked(r, 'ip', ['link', 'set', 'dev', t, 'up']);
  await runChecked(r, 'ip', ['route', 'replace', `${ip}/32`, 'dev', t, 'src', gw]);
}

/**
 * Pushes the new identity to the restored guest's agent (authenticated with the token it still holds), checks
 * it answers on its new address, then puts the TAP back into the bridge.
 */
export async function reidentify(
  d: ReidentifyDeps,
  nic: { tap: string; bridge: string; oldIp: string; gateway: string; oldToken: string },
  next: NewIdentity,
): Promise<void> {
  const f = d.fetch ?? fetch;
  const tap = assertTapName(nic.tap);
  const bridge = assertBridgeName(nic.bridge);
  const gw = parseCidr(`${nic.gateway}/32`).address;
  const oldIp = parseCidr(`${nic.oldIp}/32`).address;
  const newIp = parseCidr(next.ip).address;
  const newMac = assertMac(next.mac);
  const deadline = Date.now() + (d.timeoutMs ?? 120_000);
  const body = JSON.stringify({ ...next, old_ip: oldIp, entropy: randomBytes(64).toString('base64') });
  const time = <T>(phase: string, fn: () => Promise<T>) => (d.clock ? d.clock.time(phase, fn) : fn());
  // Both addresses reach the guest through its TAP: the old one for the push, the new one to see it taken. No
  // static neighbour for the old address: the host's ARP request is what teaches the guest the TAP's MAC for the
  // gateway (its cache still holds the bridge's, whose frames a TAP off the bridge drops). The new MAC is known:
  // no ARP round (whose retries are a second apart) before the guest answers there; its MAC change emptied its
  // own ARP cache, so it asks for the gateway and the host answers from the TAP.
  await runChecked(d.runner, 'ip', ['route', 'replace', `${newIp}/32`, 'dev', tap, 'src', gw]);
  if (newIp !== oldIp)
    await runChecked(d.runner, 'ip', ['neigh', 'replace', newIp, 'lladdr', newMac, 'dev', tap, 'nud', 'permanent']);
  const answers = async (timeoutMs: number) => {
    const res = await f(`http://${newIp}:${GUEST_AGENT_PORT}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  };
  await time('identity push', () => push(f, nic, oldIp, body, deadline, () => answers(250).catch(() => false)));
  await time('identity apply', async () => {
    if (oldIp !== newIp)
      await runChecked(d.runner, 'ip', ['route', 'del', `${oldIp}/32`, 'dev', tap]).catch(() => undefined);
    // Given its source's address again (the lowest free one once the source is gone), the guest keeps the address
    // but takes a new MAC: the host's neighbour entry learned for the push names the old MAC, whose frames the guest
    // now drops. The push was taken, so the new MAC is the one to use.
    else
      await runChecked(d.runner, 'ip', ['neigh', 'replace', newIp, 'lladdr', newMac, 'dev', tap, 'nud', 'permanent']);
    // A SYN sent before the guest holds the address is dropped and retried only a second later: short
    // attempts first, then the usual timeout for a guest that is slow to answer.
    await until('the guest agent on its new address', deadline, (attempt) => answers(attempt < 15 ? 250 : 2000));
  });
  await time('rebridge', async () => {
    await runChecked(d.runner, 'ip', ['neigh', 'del', newIp, 'dev', tap]).catch(() => undefined);
    await runChecked(d.runner, 'ip', ['route', 'del', `${newIp}/32`, 'dev', tap]).catch(() => undefined);
    // An entry on the bridge for this address may name the MAC of a VM that held it before (the snapshot's source):
    // the host would send there until it went stale. Without one, the host asks and the guest answers.
    await runChecked(d.runner, 'ip', ['neigh', 'del', newIp, 'dev', bridge]).catch(() => undefined);
    await runChecked(d.runner, 'ip', ['link', 'set', 'dev', tap, 'master', bridge]);
    await d.isolation?.release(tap);
  });
}

/**
 * POSTs the new identity to the guest agent at its old address, with the token it still holds, until it takes it.
 * A 202 lost to a timeout under load may still have been taken: a failed call checks the new address (`taken`),
 * and a 401 means the guest no longer holds the old token, so it took an identity (only this host can push one).
 */
async function push(
  f: typeof fetch,
  nic: { oldToken: string },
  oldIp: string,
  body: string,
  deadline: number,
  taken: () => Promise<boolean>,
): Promise<void> {
  await until('the restored guest agent to accept its new identity', deadline, async () => {
    let res: Response;
    try {
      res = await f(`http://${oldIp}:${GUEST_AGENT_PORT}/identity`, {
        method: 'POST',
        headers: { authorization: `Bearer ${nic.oldToken}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(3000),
      });
    } catch (e) {
      if (await taken()) return true;
      throw e;
    }
    // Only the status matters: a guest's reply body is never read.
    await res.body?.cancel();
    if (res.status === 401) return true;
    if (res.status === 403 || res.status === 404)
      throw new AgentError(502, 'guest_identity_refused', `the restored guest agent answered ${res.status}`);
    return res.ok;
  });
}

/**
 * Asks the instance's guest agent (on its new address, with its new token) to report now: its own reports were
 * sent while its TAP was isolated and the instance not yet registered, and would otherwise be retried only after
 * a backoff. Best effort: an older guest agent answers 404 and reports at its next retry.
 */
export async function requestReport(ip: string, token: string, f: typeof fetch = fetch): Promise<boolean> {
  const addr = parseCidr(`${ip}/32`).address;
  try {
    const res = await f(`http://${addr}:${GUEST_AGENT_PORT}/report`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(2000),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
