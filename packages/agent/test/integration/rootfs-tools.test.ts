import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChecked, systemRunner } from '../../src/host/exec.ts';
import { Ext4Image } from '../../src/rootfs/ext4.ts';
import { prepareRootfs } from '../../src/rootfs/prepare.ts';
import { buildGuestToolsImage, buildNodeRuntime, type NodeRuntime } from '../../src/rootfs/runtime.ts';

let work: string;
let runtime: NodeRuntime;
let agentJs: string;
let buildMs: number;
const AGENT_SOURCE = 'console.log("guest agent says " + (6 * 7));\n';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nqvm-tools-it-'));
  agentJs = join(work, 'guest-agent.js');
  await writeFile(agentJs, AGENT_SOURCE);
  const t0 = performance.now();
  runtime = await buildNodeRuntime(systemRunner, { cacheDir: join(work, 'cache') });
  buildMs = performance.now() - t0;
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const sha256 = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');

describe('node runtime', () => {
  it('holds node, every library ldd lists and the loader, and is reused on the next call', async () => {
    expect(runtime.files).toEqual(
      expect.arrayContaining(['node', 'ld-linux-x86-64.so.2', 'libc.so.6', 'libstdc++.so.6']),
    );
    expect(await sha256(join(runtime.dir, 'node'))).toBe(await sha256(await realpath(process.execPath)));
    const t0 = performance.now();
    const again = await buildNodeRuntime(systemRunner, { cacheDir: join(work, 'cache') });
    const reuseMs = performance.now() - t0;
    expect(again).toEqual(runtime);
    expect(reuseMs).toBeLessThan(buildMs);
  });
});

describe('guest tools image', () => {
  it('is a read-only ext4 labelled nqvm-tools whose extracted node runs through the shipped loader', async () => {
    const out = join(work, 'tools.ext4');
    await buildGuestToolsImage(systemRunner, out, { guestAgentJs: agentJs, runtime });
    const header = await runChecked(systemRunner, 'dumpe2fs', ['-h', '--', out]);
    expect(header).toMatch(/Filesystem volume name:\s+nqvm-tools/);
    expect(header).toMatch(/Filesystem features:.*\bread-only\b/);
    expect((await systemRunner.run('e2fsck', ['-fn', '--', out])).code).toBe(0);

    const tools = new Ext4Image(out, systemRunner);
    expect(await tools.readText('/guest-agent.js')).toBe(AGENT_SOURCE);
    for (const f of runtime.files)
      expect((await tools.stat(`/node/${f}`))?.size).toBe((await stat(join(runtime.dir, f))).size);

    const dump = join(work, 'dump');
    await mkdir(dump);
    await runChecked(systemRunner, 'debugfs', ['-R', `rdump / ${dump}`, '--', out]);
    const dir = join(dump, 'node');
    const loader = join(dir, 'ld-linux-x86-64.so.2');
    const r = await systemRunner.run(loader, ['--library-path', dir, join(dir, 'node'), '-e', 'console.log(42)'], {
      env: {},
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('42\n');
    const agent = await systemRunner.run(
      loader,
      ['--library-path', dir, join(dir, 'node'), join(dump, 'guest-agent.js')],
      { env: {} },
    );
    expect(agent.stdout).toBe('guest agent says 42\n');
  });
});

describe('copy mode', () => {
  it('puts the runtime and agent into the rootfs under /opt/nqvm', async () => {
    const tree = join(work, 'tree');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await mkdir(join(tree, 'sbin'));
    await writeFile(join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await symlink('/bin/busybox', join(tree, 'sbin/init'));
    const img = join(work, 'copy.ext4');
    await runChecked(systemRunner, 'mkfs.ext4', ['-q', '-F', '-d', tree, '--', img, '256M']);
    const vm = new Ext4Image(img, systemRunner);
    await prepareRootfs(vm, {
      guestAgent: {
        mode: 'copy',
        guestAgentJs: agentJs,
        runtime,
        config: { vm_id: 'v', token: 't', host_url: 'http://10.0.0.1:19090' },
      },
    });
    expect(await vm.readText('/opt/nqvm/guest-agent.js')).toBe(AGENT_SOURCE);
    for (const f of runtime.files)
      expect(await vm.stat(`/opt/nqvm/node/${f}`)).toMatchObject({
        type: 'regular',
        mode: 0o755,
        size: (await stat(join(runtime.dir, f))).size,
      });
    expect(await vm.readText('/etc/nqvm/run-agent.sh')).not.toContain('mount');
    expect(await vm.readText('/etc/inittab')).toContain('::respawn:/etc/nqvm/run-agent.sh\n');
    expect((await systemRunner.run('e2fsck', ['-fn', '--', img])).code).toBe(0);
  });
});
