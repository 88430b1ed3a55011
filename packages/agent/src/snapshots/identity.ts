import { randomBytes } from 'node:crypto';
import { type CommandRunner, runChecked } from '../host/exec.ts';
import { assertBridgeName, assertTapName, parseCidr } from '../net/names.ts';
import { AgentError } from '../vms/errors.ts';

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
  isolation?: TapIsolation;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, deadline: number, fn: () => Promise<boolean>): Promise<void> {
  let last = '';
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (e) {
      if (e instanceof AgentError) throw e;
      last = (e as Error).message;
    }
    await sleep(100);
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
  const deadline = Date.now() + (d.timeoutMs ?? 120_000);
  const body = JSON.stringify({ ...next, old_ip: oldIp, entropy: randomBytes(64).toString('base64') });
  await until('the restored guest agent to accept its new identity', deadline, async () => {
    const res = await f(`http://${oldIp}:${GUEST_AGENT_PORT}/identity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${nic.oldToken}`, 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(3000),
    });
    // Only the status matters: a guest's reply body is never read.
    await res.body?.cancel();
    if (res.status === 401 || res.status === 403 || res.status === 404)
      throw new AgentError(502, 'guest_identity_refused', `the restored guest agent answered ${res.status}`);
    return res.ok;
  });
  await runChecked(d.runner, 'ip', ['route', 'del', `${oldIp}/32`, 'dev', tap]).catch(() => undefined);
  await runChecked(d.runner, 'ip', ['route', 'replace', `${newIp}/32`, 'dev', tap, 'src', gw]);
  await until('the guest agent on its new address', deadline, async () => {
    const res = await f(`http://${newIp}:${GUEST_AGENT_PORT}/health`, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.ok;
  });
  await runChecked(d.runner, 'ip', ['route', 'del', `${newIp}/32`, 'dev', tap]).catch(() => undefined);
  await runChecked(d.runner, 'ip', ['link', 'set', 'dev', tap, 'master', bridge]);
  await d.isolation?.release(tap);
}
