import { describe, expect, it } from 'vitest';
import type { CommandResult, CommandRunner, RunOptions } from '../../src/host/exec.ts';
import { InvalidNetInput, UnsupportedLimit } from '../../src/net/errors.ts';
import { HostNetwork } from '../../src/net/host-network.ts';

class RecordingRunner implements CommandRunner {
  readonly calls: { cmd: string; args: readonly string[]; input?: string }[] = [];
  constructor(private readonly reply: (cmd: string, args: readonly string[]) => CommandResult) {}
  async run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    this.calls.push({ cmd, args, input: typeof opts?.input === 'string' ? opts.input : undefined });
    return this.reply(cmd, args);
  }
}

const missing = (): CommandResult => ({ code: 1, stdout: '', stderr: 'Device "x" does not exist.\n' });
const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });

const PAYLOADS = [
  'x;touch /tmp/MARK',
  '$(touch /tmp/MARK)',
  '`touch /tmp/MARK`',
  'a b',
  'nqt-0123456789abcdef',
  'nqt-ü',
];

describe('HostNetwork argv', () => {
  it('prefixes every ip and tc call with the namespace and nft/sysctl with ip netns exec', async () => {
    const runner = new RecordingRunner((cmd, args) => {
      if (args.includes('link') && args.includes('show')) return missing();
      if (cmd === 'ip' && args.includes('nft') && args.includes('list')) return ok('{"nftables": []}');
      if (args.includes('addr')) return ok('[{"addr_info": []}]');
      return ok();
    });
    const net = new HostNetwork({ runner, netns: 'nqvm-net-unit' });
    await net.ensureBridge({ name: 'nqbr0', address: '10.213.0.1/24' }).catch(() => undefined);
    await net.enableNat({ bridge: 'nqbr0', cidr: '10.213.0.1/24', uplink: 'eth0' });
    for (const c of runner.calls) {
      expect(c.cmd).toBe('ip');
      expect(c.args[0] === '-n' || c.args[0] === 'netns').toBe(true);
      expect(c.args[1]).toBe(c.args[0] === '-n' ? 'nqvm-net-unit' : 'exec');
    }
    expect(runner.calls.some((c) => c.args.join(' ') === '-n nqvm-net-unit link add name nqbr0 type bridge')).toBe(
      true,
    );
    expect(runner.calls.some((c) => c.args.join(' ') === '-n nqvm-net-unit addr add 10.213.0.1/24 dev nqbr0')).toBe(
      true,
    );
    const rule = runner.calls.find((c) => c.args.some((a) => a.includes('masquerade')));
    expect(rule?.args.slice(0, 5)).toEqual(['netns', 'exec', 'nqvm-net-unit', 'nft', '-j']);
    expect(rule?.args[5]).toContain('"addr":"10.213.0.0","len":24');
  });

  it('runs in the agent namespace without any prefix', async () => {
    const runner = new RecordingRunner(() => missing());
    await new HostNetwork({ runner }).bridgeExists('nqbr0');
    expect(runner.calls).toEqual([{ cmd: 'ip', args: ['-j', '-d', '-s', 'link', 'show', 'dev', 'nqbr0'] }]);
  });

  it.each(PAYLOADS)('refuses %j in every name before running anything', async (bad) => {
    const runner = new RecordingRunner(() => ok());
    const net = new HostNetwork({ runner });
    const attempts: (() => Promise<unknown>)[] = [
      () => net.ensureBridge({ name: bad, address: '10.213.0.1/24' }),
      () => net.ensureBridge({ name: 'nqbr0', address: bad }),
      () => net.deleteBridge(bad),
      () => net.bridgeExists(bad),
      () => net.enableNat({ bridge: bad, cidr: '10.213.0.0/24', uplink: 'eth0' }),
      () => net.enableNat({ bridge: 'nqbr0', cidr: '10.213.0.0/24', uplink: bad }),
      () => net.disableNat(bad),
      () => net.createTap({ name: bad, bridge: 'nqbr0' }),
      () => net.createTap({ name: 'nqt-1-0', bridge: bad }),
      () => net.deleteTap(bad),
      () => net.listTaps(bad),
      () => net.tapCounters(bad),
      () => net.applyNicLimits(bad, {}),
      () => net.clearNicLimits(bad),
      () => net.readNicLimits(bad),
    ];
    for (const attempt of attempts) await expect(attempt()).rejects.toBeInstanceOf(InvalidNetInput);
    expect(runner.calls).toEqual([]);
  });

  it.each(['x;touch /tmp/MARK', '$(touch /tmp/MARK)', 'a b', '-n', 'ns/../x', 'n'.repeat(65)])(
    'refuses namespace %j',
    (bad) => {
      expect(() => new HostNetwork({ runner: new RecordingRunner(() => ok()), netns: bad })).toThrow(InvalidNetInput);
    },
  );

  it('refuses an ops limiter before touching the device', async () => {
    const runner = new RecordingRunner(() => ok());
    const net = new HostNetwork({ runner });
    await expect(
      net.applyNicLimits('nqt-1-0', {
        rx: { bandwidth: { size: 1048576, refill_time: 1000 } },
        tx: { ops: { size: 1000, refill_time: 1000 } },
      }),
    ).rejects.toBeInstanceOf(UnsupportedLimit);
    expect(runner.calls).toEqual([]);
  });

  it('deletes a TAP that vanishes mid-way (its VMM exited and took it along) and still removes its IFB', async () => {
    let tapThere = true;
    let ifbThere = true;
    const link = (name: string, kind: string, type?: string) =>
      ok(JSON.stringify([{ ifname: name, linkinfo: { info_kind: kind, info_data: type ? { type } : {} } }]));
    const runner = new RecordingRunner((cmd, args) => {
      const dev = args[args.length - 1] ?? '';
      if (cmd === 'ip' && args.includes('show')) {
        if (dev === 'nqt-1-0') return tapThere ? link(dev, 'tun', 'tap') : missing();
        if (dev === 'nqi-1-0') return ifbThere ? link(dev, 'ifb') : missing();
      }
      if (cmd === 'tc' && args.includes('show')) {
        // QEMU exits between the agent's look at the TAP and its qdisc query.
        tapThere = false;
        return { code: 1, stdout: '', stderr: 'Cannot find device "nqt-1-0"\n' };
      }
      if (cmd === 'ip' && args.join(' ') === 'link del dev nqi-1-0') ifbThere = false;
      return ok();
    });
    await new HostNetwork({ runner }).deleteTap('nqt-1-0');
    expect(ifbThere).toBe(false);
    expect(runner.calls.some((c) => c.args.join(' ') === 'link del dev nqt-1-0')).toBe(false);
  });

  it('still refuses to delete a device of that name that is not a TAP', async () => {
    const runner = new RecordingRunner((cmd, args) =>
      cmd === 'ip' && args.includes('show') && args.at(-1) === 'nqt-1-0'
        ? ok(JSON.stringify([{ ifname: 'nqt-1-0', linkinfo: { info_kind: 'veth' } }]))
        : cmd === 'ip' && args.includes('show')
          ? missing()
          : ok('[]'),
    );
    await expect(new HostNetwork({ runner }).deleteTap('nqt-1-0')).rejects.toThrow(/nqt-1-0/);
  });
});
