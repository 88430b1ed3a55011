import type { CommandResult, CommandRunner, RunOptions } from '../host/exec.ts';
import { CommandFailed } from '../host/exec.ts';
import { assertNetnsName } from './names.ts';

/** JSON from `ip -j` / `tc -j` describing one link. */
export interface IpLink {
  ifname: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  address?: string;
  operstate?: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string } };
  stats64?: {
    rx?: { bytes?: number; packets?: number; dropped?: number; errors?: number };
    tx?: { bytes?: number; packets?: number; dropped?: number; errors?: number };
  };
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

/**
 * Runs iproute2 and friends in one network namespace: `ip -n NS` / `tc -n NS` for iproute2, and
 * `ip netns exec NS cmd` for tools without a namespace flag (nft, sysctl). No namespace = the agent's own.
 */
export class NetCommands {
  readonly netns: string | undefined;

  constructor(
    private readonly runner: CommandRunner,
    netns?: string,
  ) {
    this.netns = netns === undefined ? undefined : assertNetnsName(netns);
  }

  private nsFlag(): string[] {
    return this.netns ? ['-n', this.netns] : [];
  }

  ipTry(args: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    return this.runner.run('ip', [...this.nsFlag(), ...args], opts);
  }

  ip(args: readonly string[], opts?: RunOptions): Promise<string> {
    return this.checked('ip', [...this.nsFlag(), ...args], opts);
  }

  /** Runs `ip`, treating a failure whose stderr matches `tolerated` (e.g. a lost creation race) as success. */
  async ipTolerating(args: readonly string[], tolerated: RegExp): Promise<void> {
    const full = [...this.nsFlag(), ...args];
    const res = await this.runner.run('ip', full);
    if (res.code !== 0 && !tolerated.test(res.stderr)) throw new CommandFailed('ip', full, res);
  }

  tcTry(args: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    return this.runner.run('tc', [...this.nsFlag(), ...args], opts);
  }

  tc(args: readonly string[], opts?: RunOptions): Promise<string> {
    return this.checked('tc', [...this.nsFlag(), ...args], opts);
  }

  /** Any other tool, entered into the namespace with `ip netns exec`. */
  exec(cmd: string, args: readonly string[], opts?: RunOptions): Promise<string> {
    if (this.netns) return this.checked('ip', ['netns', 'exec', this.netns, cmd, ...args], opts);
    return this.checked(cmd, args, opts);
  }

  /** One link with details and statistics, or null when no device has that name. */
  async link(name: string): Promise<IpLink | null> {
    const res = await this.ipTry(['-j', '-d', '-s', 'link', 'show', 'dev', name]);
    if (res.code !== 0) {
      if (/does not exist|Cannot find device/i.test(res.stderr)) return null;
      throw new CommandFailed('ip', [...this.nsFlag(), '-j', '-d', '-s', 'link', 'show', 'dev', name], res);
    }
    const links = parseJsonArray<IpLink>(res.stdout);
    return links[0] ?? null;
  }

  async links(): Promise<IpLink[]> {
    return parseJsonArray<IpLink>(await this.ip(['-j', '-d', 'link', 'show']));
  }

  private async checked(cmd: string, args: readonly string[], opts?: RunOptions): Promise<string> {
    const res = await this.runner.run(cmd, args, opts);
    if (res.code !== 0) throw new CommandFailed(cmd, args, res);
    return res.stdout;
  }
}

export function parseJsonArray<T>(text: string): T[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const parsed: unknown = JSON.parse(trimmed);
  if (!Array.isArray(parsed)) throw new Error(`expected a JSON array, got: ${trimmed.slice(0, 120)}`);
  return parsed as T[];
}
