import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { directLauncher, directRunner } from './exec.ts';
import { SpawnerRunner } from './spawner.ts';

const runner = new SpawnerRunner(directRunner, directLauncher);
const dir = mkdtempSync(path.join(tmpdir(), 'nqvm-spawner-'));
afterAll(() => {
  runner.close();
  rmSync(dir, { recursive: true, force: true });
});

const ppidOf = (stat: string) => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);

describe('SpawnerRunner: commands run by the helper process', () => {
  it('returns exit code, stdout and stderr, and the command is the helper’s child, not ours', async () => {
    const ok = await runner.run('cat', ['/proc/self/stat']);
    expect(ok.code).toBe(0);
    const ppid = ppidOf(ok.stdout);
    expect(ppid).not.toBe(process.pid);
    expect(ppidOf(spawnSync('cat', [`/proc/${ppid}/stat`], { encoding: 'utf8' }).stdout)).toBe(process.pid);
    const missing = await runner.run('ls', [path.join(dir, 'nothing-here')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('nothing-here');
  });

  it('passes input as text or bytes, cwd and env', async () => {
    expect((await runner.run('cat', [], { input: 'text in' })).stdout).toBe('text in');
    expect((await runner.run('cat', [], { input: Buffer.from('bytes in') })).stdout).toBe('bytes in');
    expect((await runner.run('pwd', [], { cwd: dir })).stdout.trim()).toBe(dir);
    const env = await runner.run('env', [], { env: { PATH: process.env.PATH, NQVM_SPAWNER_TEST: 'yes' } });
    expect(env.stdout).toContain('NQVM_SPAWNER_TEST=yes');
  });

  it('rejects a missing binary with ENOENT, as spawn does', async () => {
    await expect(runner.run('nqvm-no-such-binary', [])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('kills a command at its timeout', async () => {
    const r = await runner.run('sleep', ['30'], { timeoutMs: 200 });
    expect(r.code).toBe(128);
  });

  it('keeps answers apart under concurrency', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => runner.run('echo', [`n${i}`])));
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`));
  });

  it('passes arguments as argv, never through a shell', async () => {
    const mark = path.join(dir, 'MARK');
    for (const payload of [`$(touch ${mark})`, `; touch ${mark}`, `\`touch ${mark}\``, `| touch ${mark}`]) {
      expect((await runner.run('echo', [payload])).stdout.trim()).toBe(payload);
    }
    expect(existsSync(mark)).toBe(false);
  });

  it('fails the commands of a helper that died, and starts a new helper for the next', async () => {
    const running = runner.run('sleep', ['30']);
    const helper = ppidOf((await runner.run('cat', ['/proc/self/stat'])).stdout);
    process.kill(helper, 'SIGKILL');
    await expect(running).rejects.toThrow(/helper exited/);
    const again = await runner.run('cat', ['/proc/self/stat']);
    expect(again.code).toBe(0);
    expect(ppidOf(again.stdout)).not.toBe(helper);
  });

  it('launches a long-lived process in its own session, output to files, and reports its exit', async () => {
    const log = path.join(dir, 'launched.log');
    const sleeper = await runner.launch('sleep', ['30'], { detached: true, stdio: ['ignore', 'ignore', 'ignore'] });
    const stat = (await runner.run('cat', [`/proc/${sleeper.pid}/stat`])).stdout;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    expect(Number(fields[3])).toBe(sleeper.pid); // session id: its own session
    expect(ppidOf(stat)).not.toBe(process.pid);
    process.kill(sleeper.pid, 'SIGTERM');
    expect(await sleeper.exited).toBe('killed by SIGTERM');

    const failing = await runner.launch('ls', [path.join(dir, 'not-there')], {
      detached: true,
      stdio: ['ignore', { path: log, flags: 'a' }, { path: log, flags: 'a' }],
    });
    expect(await failing.exited).toMatch(/^exited with code [1-9]/);
    expect(readFileSync(log, 'utf8')).toContain('not-there');
    await expect(
      runner.launch('nqvm-no-such-binary', [], { detached: true, stdio: ['ignore', 'ignore', 'ignore'] }),
    ).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('does not keep a finished program alive', () => {
    const script = path.join(dir, 'idle.mts');
    writeFileSync(
      script,
      [
        `import { systemRunner } from ${JSON.stringify(path.resolve(import.meta.dirname, 'exec.ts'))};`,
        `const r = await systemRunner.run('echo', ['ran']);`,
        'process.stdout.write(r.stdout);',
      ].join('\n'),
    );
    const res = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
    expect(res.error).toBeUndefined();
    expect(res.stdout).toBe('ran\n');
    expect(res.status).toBe(0);
  });
});
