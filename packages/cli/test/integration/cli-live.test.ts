import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startTestApp, type TestApp } from '../../../manager/test/support/harness.ts';
import { type StandinHost, startStandinHost } from '../../../manager/test/support/standin-agent.ts';
import { commands } from '../../src/catalog.ts';
import { EXIT } from '../../src/help.ts';
import { main } from '../../src/main.ts';

const BIN = new URL('../../bin/nqvm.ts', import.meta.url).pathname;

interface Run {
  code: number;
  out: string;
  err: string;
}

/** The CLI against a live manager (PGlite), every request over real HTTP. */
describe('nqvm CLI against a live manager', () => {
  let t: TestApp;
  let host: StandinHost;
  let url: string;
  let home: string;
  let env: Record<string, string>;

  const cli = async (args: string[], stdin = ''): Promise<Run> => {
    const out: string[] = [];
    const err: string[] = [];
    const chunks: Buffer[] = [];
    const code = await main(args, env, {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      write: (c) => chunks.push(Buffer.from(c)),
      readStdin: async () => stdin,
    });
    return { code, out: out.join('\n') + Buffer.concat(chunks).toString('utf8'), err: err.join('\n') };
  };

  beforeAll(async () => {
    t = await startTestApp('pglite');
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    host = await startStandinHost(t, (boot) => boot.answer(4242));
    await host.heartbeat([]);
    home = mkdtempSync(join(tmpdir(), 'nqvm-cli-'));
    env = { XDG_CONFIG_HOME: home, HOME: home };
    const login = await cli(['login', '--url', url, '--username', 'admin'], `${ADMIN_PASSWORD}\n`);
    expect(login.code, login.err).toBe(0);
  });
  afterAll(async () => {
    await host?.close();
    await t?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('logs in with the password from stdin and keeps the token in a private profile file', async () => {
    const file = join(home, 'nqvm', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as {
      current: string;
      profiles: Record<string, { url: string }>;
    };
    expect(saved.current).toBe('default');
    expect(saved.profiles.default?.url).toBe(url);
    const me = await cli(['auth', 'me', '--json']);
    expect(me.code, me.err).toBe(0);
    expect(JSON.parse(me.out)).toMatchObject({ username: 'admin' });
    const list = await cli(['profile', 'list']);
    expect(list.out).toMatch(/\* default {2}http:\/\/127\.0\.0\.1/);
  });

  it('keeps a value a string when the schema says string, and resolves resources by name', async () => {
    const images = (await cli(['images', 'list', '--json'])).out;
    expect(JSON.parse(images).items).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'nqvm-cli-img-'));
    writeFileSync(join(dir, 'vmlinuz'), Buffer.alloc(4096, 1));
    expect(spawnSync('mkfs.ext4', ['-q', '-F', join(dir, 'rootfs.ext4'), '4M']).status).toBe(0);
    for (const [name, kind, file] of [
      ['k1', 'kernel', 'vmlinuz'],
      ['r1', 'rootfs', 'rootfs.ext4'],
    ]) {
      const made = await cli(['images', 'upload', '--name', name!, '--kind', kind!, '--file', join(dir, file!), '-q']);
      expect(made.code, made.err).toBe(0);
      expect(made.out).toMatch(/^[0-9a-f-]{36}$/);
    }
    rmSync(dir, { recursive: true, force: true });
    // Image flags take names; the password is all digits and must reach the API as a string.
    const vm = await cli([
      'vms',
      'create',
      '--name',
      'web1',
      '--vcpu',
      '1',
      '--mem-mib',
      '128',
      '--kernel-image-id',
      'k1',
      '--rootfs-image-id',
      'r1',
      '--username',
      'me',
      '--password',
      '12345678',
      '--no-start',
      '--tags',
      'a',
      '--tags',
      'b',
      '--json',
    ]);
    expect(vm.code, vm.err).toBe(0);
    const created = JSON.parse(vm.out) as { id: string; state: string; tags: string[] };
    expect(created.state).toBe('stopped');
    expect(created.tags).toEqual(['a', 'b']);
    const creds = await cli(['vms', 'shell-credentials', 'web1', '--json']);
    expect(creds.code, creds.err).toBe(0);
    expect(JSON.parse(creds.out)).toMatchObject({ username: 'me', password: '12345678' });
    const got = await cli(['vm', 'get', 'web1', '--yaml']);
    expect(got.out).toMatch(new RegExp(`^id: ${created.id}$`, 'm'));
    expect(got.out).toMatch(/^name: web1$/m);
  });

  it('creates and deploys a function from files, lists its versions and invocations, and deletes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nqvm-fn-'));
    const file = join(dir, 'index.js');
    writeFileSync(file, 'exports.handler = async () => 1;\n');
    const made = await cli(['functions', 'create', 'cli-fn', '--runtime', 'node20', '--file', file, '--json']);
    expect(made.code, made.err).toBe(0);
    expect(JSON.parse(made.out)).toMatchObject({
      name: 'cli-fn',
      version: 1,
      files: { 'index.js': expect.any(String) },
    });
    writeFileSync(file, 'exports.handler = async () => 2;\n');
    const deployed = await cli(['functions', 'deploy', 'cli-fn', '--file', file, '--json']);
    expect(deployed.code, deployed.err).toBe(0);
    expect(JSON.parse(deployed.out)).toMatchObject({ version: 2, files: { 'index.js': expect.stringContaining('2') } });
    const versions = await cli(['functions', 'versions', 'cli-fn', '--json']);
    expect(JSON.parse(versions.out).items.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    expect((await cli(['functions', 'list'])).out).toContain('cli-fn');
    const logs = await cli(['functions', 'logs', 'cli-fn']);
    expect(logs.code, logs.err).toBe(0);
    expect((await cli(['functions', 'invocations', 'cli-fn', '--json'])).code).toBe(0);
    expect((await cli(['functions', 'delete', 'cli-fn'])).code).toBe(0);
    expect((await cli(['functions', 'get', 'cli-fn'])).code).toBe(EXIT.notFound);
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows cursors with --all and tells about the next page without it', async () => {
    for (let i = 0; i < 5; i++) {
      const made = await cli([
        'images',
        'create',
        '--name',
        `page${i}`,
        '--kind',
        'volume',
        '--source.type',
        'blank',
        '--source.size-mib',
        '8',
      ]);
      expect(made.code, made.err).toBe(0);
    }
    const one = await cli(['images', 'list', '--limit', '2', '-q']);
    expect(one.out.split('\n')).toHaveLength(2);
    expect(one.err).toMatch(/more: --cursor \S+ \(or --all/);
    const all = await cli(['images', 'list', '--limit', '2', '--all', '-q']);
    expect(all.out.split('\n')).toHaveLength(7);
    expect(all.err).toBe('');
    const table = await cli(['images', 'list', '--limit', '100']);
    expect(table.out.split('\n')[0]).toMatch(/^ID\s+NAME\s+KIND\s+STATE/);
  });

  it('uploads and downloads image bytes unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nqvm-cli-bytes-'));
    const bytes = Buffer.alloc(300_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 251;
    writeFileSync(join(dir, 'in.bin'), bytes);
    const up = await cli([
      'images',
      'upload',
      '--name',
      'blob1',
      '--kind',
      'kernel',
      '--file',
      join(dir, 'in.bin'),
      '--json',
    ]);
    expect(up.code, up.err).toBe(0);
    const out = join(dir, 'out.bin');
    const down = await cli(['images', 'content', 'blob1', '--output', out]);
    expect(down.code, down.err).toBe(0);
    expect(readFileSync(out).equals(bytes)).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('names image versions: a name is its latest version, name:tag a tagged one, and rollback moves latest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nqvm-cli-ver-'));
    for (const [i, t] of [
      ['1', 'first'],
      ['2', 'second'],
    ] as const) {
      writeFileSync(join(dir, `v${i}`), Buffer.alloc(4096, Number(i)));
      const up = await cli([
        'images',
        'upload',
        '--name',
        'ver',
        '--kind',
        'kernel',
        '--tag',
        t,
        '--file',
        join(dir, `v${i}`),
        '-q',
      ]);
      expect(up.code, up.err).toBe(0);
    }
    rmSync(dir, { recursive: true, force: true });
    const version = async (ref: string) => JSON.parse((await cli(['images', 'get', ref, '--json'])).out).version;
    expect(await version('ver')).toBe(2);
    expect(await version('ver:first')).toBe(1);
    expect(await version('ver@2')).toBe(2);
    const back = await cli(['images', 'rollback', 'ver:first', '--json']);
    expect(back.code, back.err).toBe(0);
    expect(JSON.parse(back.out)).toMatchObject({ version: 1, latest: true });
    expect(await version('ver')).toBe(1);
    expect(await version('ver:latest')).toBe(1);
    expect((await cli(['images', 'get', 'ver:third'])).code).toBe(5);
    expect((await cli(['images', 'get', 'ver@3'])).code).toBe(5);
    // VM create takes image references itself: the manager resolves --kernel-image / --rootfs-image.
    const ids = async (ref: string) => JSON.parse((await cli(['images', 'get', ref, '--json'])).out).id;
    const vm = await cli(
      ['vms', 'create', '--name', 'by-ref', '--vcpu', '1', '--mem-mib', '128', '--no-start', '--json'].concat([
        '--kernel-image',
        'ver@2',
        '--rootfs-image',
        'r1:latest',
      ]),
    );
    expect(vm.code, vm.err).toBe(0);
    expect(JSON.parse(vm.out)).toMatchObject({ kernel_image_id: await ids('ver@2'), rootfs_image_id: await ids('r1') });
    const missing = await cli(
      ['vms', 'create', '--name', 'by-ref2', '--vcpu', '1', '--mem-mib', '128'].concat([
        '--no-start',
        '--kernel-image',
        'ver:third',
        '--rootfs-image',
        'r1',
      ]),
    );
    expect(missing.code).toBe(5);
    expect(missing.err).toMatch(/ver:third/);
  });

  it('answers with documented exit codes', async () => {
    const missing = await cli(['images', 'get', 'no-such-image']);
    expect(missing.code).toBe(5);
    expect(missing.err).toMatch(/no images named "no-such-image"/);
    expect((await cli(['vms', 'stop', '00000000-0000-4000-8000-000000000000'])).code).toBe(5);
    const bad = await cli(['vms', 'create', '--name', 'x', '--vcpu', 'two']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--vcpu expects an integer/);
    expect((await cli(['vms', 'list', '--frobnicate'])).code).toBe(2);
    expect((await cli(['vms', 'list', '--token', 'not-a-token'])).code).toBe(6);
    const conflict = await cli(['vms', 'resume', 'web1']);
    expect(conflict.code).toBe(7);
    expect(conflict.err).toMatch(/409/);
  });

  it('has help for every generated command, listing each flag', async () => {
    for (const c of commands()) {
      const h = await cli([c.group, c.verb, '--help']);
      expect(h.code, `${c.group} ${c.verb}`).toBe(0);
      expect(h.out).toContain(`Usage: nqvm ${c.group} ${c.verb}`);
      for (const f of c.flags) expect(h.out, `${c.group} ${c.verb} --${f.flag}`).toContain(`--${f.flag}`);
    }
  });

  it('answers every argument-free read of the API', async () => {
    const reads = commands().filter((c) => c.def.method === 'GET' && !c.positionals.length && !c.def.rawResponse);
    expect(reads.length).toBeGreaterThan(5);
    for (const c of reads) {
      const r = await cli([c.group, c.verb, '--json']);
      expect(r.code, `${c.group} ${c.verb}: ${r.err}`).toBe(0);
      expect(() => JSON.parse(r.out)).not.toThrow();
    }
  });

  it('runs as the installed bin: --version, a usage error on stderr, and the events of the session', async () => {
    // Asynchronous: the manager answering the bin runs in this very process.
    const run = (args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', BIN, ...args],
          { env: { ...process.env, ...env } },
          (err, stdout, stderr) =>
            resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const v = await run(['--version']);
    expect(v.status).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const u = await run(['vms', 'frob']);
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/unknown verb "frob" for vms/);
    const ev = await run(['events', '--limit', '50']);
    expect(ev.status, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/vm\s+create/);
  });

  it('manages users by username, changes the own password with passwd, and revokes tokens', async () => {
    const created = await cli(['users', 'create', '--username', 'bob', '--password', 'bobs-first-password', '--json']);
    expect(created.code, created.err).toBe(0);
    expect(JSON.parse(created.out)).toMatchObject({ username: 'bob', role: 'user', disabled: false });
    expect((await cli(['users', 'list'])).out).toMatch(/bob\s+user\s+false/);
    const off = await cli(['users', 'disable', 'bob', '--json']);
    expect(off.code, off.err).toBe(0);
    expect(JSON.parse(off.out)).toMatchObject({ disabled: true });
    const refused = await cli(
      ['login', '--url', url, '--profile', 'bob', '--username', 'bob'],
      'bobs-first-password\n',
    );
    expect(refused.code).toBe(EXIT.auth);
    expect((await cli(['users', 'enable', 'bob'])).code).toBe(0);
    const bob = await cli(['login', '--url', url, '--profile', 'bob', '--username', 'bob'], 'bobs-first-password\n');
    expect(bob.code, bob.err).toBe(0);
    expect((await cli(['profile', 'use', 'default'])).code).toBe(0);

    const pw = await cli(['passwd', '--profile', 'bob'], 'bobs-first-password\nbobs-second-password\n');
    expect(pw.code, pw.err).toBe(0);
    const weak = await cli(['passwd', '--profile', 'bob'], 'bobs-second-password\nshort\n');
    expect(weak.code).toBe(EXIT.refused);
    expect(weak.err).toMatch(/new_password/);
    const token = await cli(['tokens', 'create', '--profile', 'bob', '--name', 'bob-ci', '--json']);
    expect(token.code, token.err).toBe(0);
    const { id } = JSON.parse(token.out) as { id: string };
    expect((await cli(['tokens', 'list', '--profile', 'bob'])).out).toContain('bob-ci');
    expect((await cli(['tokens', 'revoke', '--profile', 'bob', id])).code).toBe(0);
    expect((await cli(['tokens', 'list', '--profile', 'bob'])).out).not.toContain('bob-ci');
    expect((await cli(['users', 'list', '--profile', 'bob'])).code).toBe(EXIT.auth);

    const me = JSON.parse((await cli(['auth', 'me', '--json'])).out) as { id: string };
    const last = await cli(['users', 'disable', me.id]);
    expect(last.code).toBe(EXIT.conflict);
    expect(last.err).toMatch(/409 last_admin/);
    expect((await cli(['users', 'delete', 'bob'])).code).toBe(0);
  });
});
