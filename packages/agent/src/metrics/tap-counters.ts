import { readFileSync } from 'node:fs';

/** Interface names as Linux allows them; anything else is refused before any lookup. */
const IFNAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}$/;

export class BadInterfaceName extends Error {
  constructor(name: string) {
    super(`invalid interface name ${JSON.stringify(name)}`);
    this.name = 'BadInterfaceName';
  }
}

/** Byte counters of one interface from `/proc/net/dev` text; undefined when it is not listed. */
export function parseNetDev(text: string, iface: string): { rxBytes: number; txBytes: number } | undefined {
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.slice(0, colon).trim() !== iface) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    const rxBytes = f[0];
    const txBytes = f[8];
    if (!Number.isSafeInteger(rxBytes) || !Number.isSafeInteger(txBytes)) return undefined;
    return { rxBytes: rxBytes as number, txBytes: txBytes as number };
  }
  return undefined;
}

/**
 * A TAP's byte counters from /proc/net/dev (this process's network namespace, unlike /sys/class/net): one
 * file read instead of spawning `ip` once per TAP per second, which dominated the agent's metrics CPU.
 */
export async function procTapCounters(
  tap: string,
  read: () => Promise<string> = async () => readFileSync('/proc/net/dev', 'utf8'),
): Promise<{ rxBytes: number; txBytes: number }> {
  if (!IFNAME.test(tap)) throw new BadInterfaceName(tap);
  const c = parseNetDev(await read(), tap);
  if (!c) throw new Error(`${tap} is not in /proc/net/dev`);
  return c;
}
