import { readFileSync } from 'node:fs';
import { allRoutes } from '@nqvm/api';
import { describe, expect, it } from 'vitest';
import { parseArgv } from '../../src/argv.ts';
import { commands, findCommand, verbOf } from '../../src/catalog.ts';
import { complete, completionScript } from '../../src/completion.ts';
import { flagsOf, parseValue, UsageError } from '../../src/flags.ts';
import { commandHelp, globalHelp } from '../../src/help.ts';
import { exitOfStatus } from '../../src/main.ts';
import { render } from '../../src/output.ts';
import { Progress } from '../../src/progress.ts';
import { VERSION } from '../../src/version.ts';

const cmd = (group: string, verb: string) => {
  const c = findCommand(group, verb);
  if (!c) throw new Error(`no command ${group} ${verb}`);
  return c;
};
const flag = (group: string, verb: string, name: string) => {
  const f = cmd(group, verb).flags.find((x) => x.flag === name);
  if (!f) throw new Error(`no flag --${name} on ${group} ${verb}`);
  return f;
};

describe('the generated CLI catalogue', () => {
  it('has one command per user route, with unique kebab-case names', () => {
    const userRoutes = allRoutes().filter((d) => d.auth === 'user');
    const names = commands().map((c) => `${c.group} ${c.verb}`);
    expect(new Set(names).size).toBe(names.length);
    for (const d of userRoutes)
      expect(
        commands().some((c) => c.def === d),
        d.operationId,
      ).toBe(true);
    for (const n of names) expect(n).toMatch(/^[a-z][a-z-]* [a-z][a-z-]*$/);
    // Agent and guest callbacks are not a user's to call.
    expect(commands().some((c) => c.def.auth === 'host' || c.def.auth === 'guest')).toBe(false);
  });

  it('derives verbs from operation ids without the resource noun', () => {
    expect(verbOf('listVms', 'vms')).toBe('list');
    expect(verbOf('ctrlAltDelVm', 'vms')).toBe('ctrl-alt-del');
    expect(verbOf('createDrive', 'devices')).toBe('create-drive');
    expect(cmd('vms', 'save-as-template').def.operationId).toBe('saveVmAsTemplate');
    expect(cmd('snapshots', 'list').positionals).toEqual(['id']);
  });

  it('types values by the schema: a numeric password stays a string', () => {
    expect(parseValue(flag('vms', 'create', 'password').schema, '12345678', 'password')).toBe('12345678');
    expect(parseValue(flag('vms', 'create', 'vcpu').schema, '2', 'vcpu')).toBe(2);
    expect(() => parseValue(flag('vms', 'create', 'vcpu').schema, 'two', 'vcpu')).toThrow(/expects an integer/);
    expect(parseValue(flag('vms', 'list', 'state').schema, 'running', 'state')).toBe('running');
    expect(() => parseValue(flag('vms', 'list', 'state').schema, 'runing', 'state')).toThrow(UsageError);
    expect(parseValue(flag('vms', 'create', 'tags').schema, 'web', 'tags')).toEqual(['web']);
    expect(parseValue(flag('vms', 'create', 'tags').schema, '["a","b"]', 'tags')).toEqual(['a', 'b']);
    expect(parseValue(flag('images', 'create', 'source.size-mib').schema, '64', 'source.size-mib')).toBe(64);
  });

  it("knows a command's switches, so `--start false` and `--no-start` both read as false", () => {
    const flags = flagsOf(cmd('vms', 'create').def.body, 'body');
    expect(flags.find((f) => f.flag === 'start')).toBeDefined();
    const p = parseArgv(['vms', 'create', '--no-start', '--name', 'a'], (n) => n === 'name');
    expect(p.flags.get('start')).toEqual(['false']);
    expect(p.flags.get('name')).toEqual(['a']);
  });

  it('prints help per command listing every flag with its type and description', () => {
    const help = commandHelp(cmd('vms', 'create'));
    expect(help).toMatch(/Usage: nqvm vms create/);
    expect(help).toMatch(/--mem-mib integer/);
    expect(help).toMatch(/--password string/);
    expect(help).toMatch(/--vmm qemu\|firecracker|--vmm firecracker\|qemu/);
    expect(commandHelp(cmd('vms', 'stop'))).toMatch(/Usage: nqvm vms stop VM/);
    expect(globalHelp()).toMatch(/Exit codes: 0 ok/);
  });

  it('maps answers to documented exit codes', () => {
    expect([401, 403, 404, 409, 400, 422, 500].map(exitOfStatus)).toEqual([6, 6, 5, 7, 3, 3, 4]);
  });

  it('completes resources, verbs and flags', () => {
    expect(complete(['v'])).toContain('vms');
    expect(complete(['vms', 'st'])).toEqual(['start', 'stop']);
    expect(complete(['vms', 'create', '--mem'])).toEqual(['--mem-mib']);
    for (const shell of ['bash', 'zsh', 'fish']) expect(completionScript(shell)).toMatch(/__complete/);
  });

  it('renders tables, YAML, JSON and ids only', () => {
    const page = { items: [{ id: 'a1', name: 'web', state: 'running' }], next_cursor: null };
    expect(render(page, 'quiet', 'vms')).toBe('a1');
    expect(render(page, 'json', 'vms')).toBe(JSON.stringify(page, null, 2));
    expect(render({ id: 'a1', name: 'web' }, 'yaml', 'vms')).toBe('id: a1\nname: web');
    expect(render({ items: [], next_cursor: null }, 'table', 'vms')).toBe('(none)');
  });

  it('draws progress as a bar with bytes', () => {
    let drawn = '';
    const bar = new Progress('upload', { errRaw: (s) => (drawn += s) }, () => 0);
    bar.update(512 * 1024, 1024 * 1024);
    expect(drawn).toMatch(/upload \[#{15}\.{15}\] 50% 512\.0 KiB \/ 1\.0 MiB/);
  });

  it('reports the version of its package', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});
