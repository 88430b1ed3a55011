import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'packages/cli/bin/nqvm.ts');

/** A process whose output the test reads as it comes and whose stdin it types into. */
class Session {
  text = '';
  readonly exited: Promise<number>;
  constructor(readonly proc: ChildProcess) {
    const take = (b: Buffer) => {
      this.text += b.toString('utf8');
    };
    proc.stdout?.on('data', take);
    proc.stderr?.on('data', take);
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code ?? -1)));
  }
  type(s: string) {
    this.proc.stdin?.write(s);
  }
  /** Waits until `re` matches output printed after `from` (an offset into everything printed). */
  async waitFor(re: RegExp, from = 0, ms = 60_000): Promise<number> {
    try {
      return await until(
        `${re} in the output`,
        async () => {
          const m = re.exec(this.text.slice(from));
          return m ? from + m.index + m[0].length : undefined;
        },
        ms,
      );
    } catch (err) {
      const seen = JSON.stringify(this.text.slice(from).slice(-600));
      throw new Error(`${(err as Error).message}; the output after offset ${from} ends with ${seen}`);
    }
  }
}

/** The CLI's interactive commands on a real guest: the serial console through a pseudo-terminal, logs -f, wait. */
describe('nqvm console and logs on a real microVM', () => {
  let s: Stack;
  let vmId: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const sessions: Session[] = [];

  beforeAll(async () => {
    s = await startStack(TEST_NETWORKS.cliConsole);
    home = mkdtempSync(path.join(tmpdir(), 'nqvm-cli-e2e-'));
    env = { ...process.env, XDG_CONFIG_HOME: home, NQVM_URL: s.base, NQVM_TOKEN: s.token };
    const made = await s.api<{ id: string }>('POST', '/v1/vms', {
      name: 'cli-vm',
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: s.images.kernel,
      initrd_image_id: s.images.initrd,
      rootfs_image_id: s.images.rootfs,
      username: 'alice',
      password: 'wonderland-42',
    });
    expect(made.status, JSON.stringify(made.body)).toBe(202);
    vmId = made.body.id;
  });
  afterAll(async () => {
    for (const x of sessions) x.proc.kill('SIGKILL');
    await s?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const cli = (args: string[]) => {
    const x = new Session(spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { env }));
    sessions.push(x);
    return x;
  };

  it('waits by name until the VM runs', async () => {
    const w = cli(['vms', 'wait', 'cli-vm', '--state', 'running', '--timeout', '300', '-q']);
    expect(await w.exited).toBe(0);
    expect(w.text.trim()).toBe(vmId);
  });

  it('follows the console log with logs -f until interrupted', async () => {
    const f = cli(['logs', 'cli-vm', '-f', '--lines', '500']);
    await f.waitFor(/Linux version/, 0, 120_000);
    // Lines are followed as they end; the guest's userspace announces itself on one.
    await f.waitFor(/nqvm: userspace ready/, 0, 180_000);
    f.proc.kill('SIGINT');
    await f.exited;
  });

  it('logs in on the serial console in a pseudo-terminal, and detaches on Ctrl-]', async () => {
    // `script` gives the CLI a real pseudo-terminal. Its command is fixed text: the paths and the VM name
    // travel in the environment, never inside the command string. stty gives the terminal a size first.
    const c = new Session(
      spawn(
        'script',
        [
          '-q',
          '-e',
          '-c',
          'stty rows 33 cols 111 && exec "$NQVM_NODE" --import tsx "$NQVM_BIN" console cli-vm',
          '/dev/null',
        ],
        { env: { ...env, NQVM_NODE: process.execPath, NQVM_BIN: BIN } },
      ),
    );
    sessions.push(c);
    let at = await c.waitFor(/Connected to the console of [0-9a-f-]{36}\. Detach with Ctrl-\]/);
    c.type('\r');
    at = await c.waitFor(/login: ?/, at);
    c.type('alice\r');
    at = await c.waitFor(/Password: ?/, at);
    c.type('wonderland-42\r');
    at = await c.waitFor(/[$#] /, at);
    c.type('echo cli-$((6*7))\r');
    at = await c.waitFor(/cli-42\r*\n/, at);
    at = c.text.length;
    c.type('\x1d');
    await c.waitFor(/\[console detached\]/, at);
    expect(await c.exited).toBe(0);
  });
});
