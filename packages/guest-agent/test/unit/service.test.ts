import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log';
import { resolveUser, runService, type ServiceSpec, serviceEnv } from '../../src/service';

const PASSWD = 'root:x:0:0::/root:/bin/sh\nweb:x:101:102::/:/bin/sh\n';
const GROUP = 'root:x:0:\nwww:x:33:\n';

/** A spawn whose children exit at once with the next of `codes`. */
function fakeSpawn(codes: number[]) {
  const calls: Array<{ cmd: string; args: string[]; opts: Record<string, unknown> }> = [];
  const spawn = ((cmd: string, args: string[], opts: Record<string, unknown>) => {
    calls.push({ cmd, args, opts });
    const child = Object.assign(new EventEmitter(), { kill: () => true });
    setImmediate(() => child.emit('exit', codes.shift() ?? 0, null));
    return child;
  }) as never;
  return { spawn, calls };
}

function run(spec: Partial<ServiceSpec>, codes: number[]) {
  const { spawn, calls } = fakeSpawn(codes);
  return new Promise<{ code: number | null; runs: typeof calls }>((resolve) => {
    runService(
      {
        argv: ['/app/run', '--serve'],
        env: ['PATH=/bin', 'A=1'],
        working_dir: '/app',
        user: 'web',
        restart: 'never',
        ...spec,
      },
      {
        logger: createLogger(() => {}),
        readText: async (p) => (p === '/etc/passwd' ? PASSWD : GROUP),
        spawn,
        sleep: async () => {},
        finished: (code) => resolve({ code, runs: calls }),
      },
    );
  });
}

describe('the image service run by the guest agent', () => {
  it('runs entrypoint + cmd with the image env, working dir and user', async () => {
    const { runs } = await run({}, [0]);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ cmd: '/app/run', args: ['--serve'], opts: { cwd: '/app', uid: 101, gid: 102 } });
    expect(runs[0]?.opts.env).toMatchObject({ PATH: '/bin', A: '1' });
  });

  it('restarts per the VM policy', async () => {
    expect((await run({ restart: 'never' }, [3])).runs).toHaveLength(1);
    expect((await run({ restart: 'on-failure' }, [3, 1, 0])).runs).toHaveLength(3);
    // Never finished: it runs again after each clean exit too, until stopped.
    const { spawn, calls } = fakeSpawn([0, 0, 0]);
    let finished = false;
    const stop = runService(
      { argv: ['/app/run'], env: [], working_dir: '', user: '', restart: 'always' },
      {
        logger: createLogger(() => {}),
        readText: async () => '',
        spawn,
        sleep: async () => {},
        finished: () => (finished = true),
      },
    );
    while (calls.length < 4) await new Promise((r) => setImmediate(r));
    stop();
    expect(finished).toBe(false);
  });

  it('resolves users and groups by name or number', () => {
    expect(resolveUser('', PASSWD, GROUP)).toEqual({ uid: 0, gid: 0 });
    expect(resolveUser('web:www', PASSWD, GROUP)).toEqual({ uid: 101, gid: 33 });
    expect(resolveUser('1000:1000', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1000 });
    expect(() => resolveUser('nobody', PASSWD, GROUP)).toThrow(/not in \/etc\/passwd/);
    expect(serviceEnv([]).PATH).toContain('/usr/bin');
  });

  it("applies the VM's environment over the image's: a VM key wins, the image's other keys stay", () => {
    const env = serviceEnv(['PATH=/bin', 'GREETING=image', 'KEEP=1'], ['GREETING=vm', 'EXTRA=a=b']);
    expect(env).toMatchObject({ PATH: '/bin', GREETING: 'vm', KEEP: '1', EXTRA: 'a=b', HOME: '/' });
  });
});
