import { ApiError } from '@nqvm/api';
import { defaultTakesValue, last, on, type ParsedArgv, parseArgv } from './argv.ts';
import { findCommand, groupOf } from './catalog.ts';
import { complete, completionScript } from './completion.ts';
import { type CliConfig, loadCliConfig, readConfigFile, saveProfile, writeConfigFile } from './config.ts';
import { isBoolean, UsageError } from './flags.ts';
import { commandHelp, EXIT, globalHelp, groupHelp } from './help.ts';
import { attachConsole, ConsoleRefused, events, readPassword, type Tty } from './interactive.ts';
import { NotResolved, resolveId } from './resolve.ts';
import { clientFor, type Io, outputMode, runCommand } from './run.ts';
import { VERSION } from './version.ts';

export type { Io } from './run.ts';

/** Every command goes through here: options parsed once, errors mapped to messages and exit codes. */
export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  io: Io,
  tty?: Tty,
): Promise<number> {
  const first = parseArgv(argv);
  try {
    return await dispatch(argv, first, env, io, tty);
  } catch (err) {
    return report(err, io);
  }
}

function configOf(p: ParsedArgv, env: Record<string, string | undefined>): CliConfig {
  return loadCliConfig(env, { profile: last(p, 'profile'), url: last(p, 'url'), token: last(p, 'token') });
}

async function dispatch(
  argv: string[],
  p: ParsedArgv,
  env: Record<string, string | undefined>,
  io: Io,
  tty?: Tty,
): Promise<number> {
  const [cmd, ...rest] = p.positionals;
  if (on(p, 'version')) {
    io.out(VERSION);
    return EXIT.ok;
  }
  if (cmd === '__complete') {
    const words = argv.slice(argv.indexOf('__complete') + 1);
    io.out(complete(words.length ? words : ['']).join('\n'));
    return EXIT.ok;
  }
  if (!cmd || cmd === 'help') {
    const group = rest[0] && groupOf(rest[0]);
    const c = group && rest[1] ? findCommand(group, rest[1]) : undefined;
    io.out(c ? commandHelp(c) : group ? groupHelp(group) : globalHelp());
    return EXIT.ok;
  }
  if (cmd === 'completion') {
    if (!rest[0]) throw new UsageError('completion needs a shell: bash, zsh or fish');
    io.out(completionScript(rest[0]));
    return EXIT.ok;
  }
  if (cmd === 'up') {
    const { up } = await import('./up.ts');
    await up(env, legacyFlags(p));
    return EXIT.ok;
  }
  if (groupOf(cmd) === 'images' && rest[0] === 'build-demo') {
    const { buildDemo } = await import('./up.ts');
    const built = await buildDemo(last(p, 'out'), env);
    io.out(
      on(p, 'json')
        ? JSON.stringify(built, null, 2)
        : Object.entries(built)
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n'),
    );
    return EXIT.ok;
  }
  if (cmd === 'admin') return (await import('./admin.ts')).adminCommand(argv, env, io);
  if (cmd === 'install') return (await import('./install-commands.ts')).installCommand(argv, io);
  if (groupOf(cmd) === 'hosts' && rest[0] === 'join')
    return (await import('./install-commands.ts')).hostJoin(argv, env, io);
  const cfg = configOf(p, env);
  if (cmd === 'login') return login(cfg, p, io, tty);
  if (cmd === 'profile' || cmd === 'profiles') return profiles(cfg, rest, io);
  if (cmd === 'passwd') return (await import('./users.ts')).passwd(cfg, p, io, tty);
  if (groupOf(cmd) === 'users' && (rest[0] === 'disable' || rest[0] === 'enable') && !on(p, 'help'))
    return (await import('./users.ts')).setUserDisabled(cfg, rest, p, io);
  if (
    groupOf(cmd) === 'functions' &&
    (rest[0] === 'deploy' || rest[0] === 'logs' || (rest[0] === 'create' && p.flags.has('file'))) &&
    !on(p, 'help')
  )
    return (await import('./functions.ts')).functionsCommand(cfg, argv, io);
  if (cmd === 'console') {
    if (!rest[0]) throw new UsageError('console needs a VM (id or name)');
    if (!tty) throw new UsageError('console needs a terminal');
    const id = await resolveId(clientFor(cfg), '/v1/vms', rest[0]);
    await attachConsole(cfg, id, tty);
    return EXIT.ok;
  }
  if (cmd === 'events' && (!rest[0] || on(p, 'follow')) && !on(p, 'help')) {
    await events(cfg, io, { follow: on(p, 'follow'), mode: outputMode(p), limit: numberFlag(p, 'limit') });
    return EXIT.ok;
  }
  if (cmd === 'logs' && rest[0] && rest[0] !== 'tail') return vmLogs(cfg, rest, p, io);
  if (groupOf(cmd) === 'images' && rest[0] === 'pull' && !on(p, 'help')) {
    await (await import('./pull.ts')).imagesPull(cfg, rest.slice(1), p, io);
    return EXIT.ok;
  }

  const group = groupOf(cmd);
  if (!group) throw new UsageError(`unknown command "${cmd}"`);
  const [verb] = rest;
  if (!verb) {
    io.out(groupHelp(group));
    return on(p, 'help') ? EXIT.ok : EXIT.usage;
  }
  const c = findCommand(group, verb);
  if (!c) throw new UsageError(`unknown verb "${verb}" for ${group} (see nqvm ${group} --help)`);
  if (on(p, 'help')) {
    io.out(commandHelp(c));
    return EXIT.ok;
  }
  // Parsed again now that the command is known: its boolean flags take no value.
  const valued = new Map(c.flags.map((f) => [f.flag, !isBoolean(f.schema)]));
  const full = parseArgv(argv, (name) => valued.get(name) ?? defaultTakesValue(name));
  await runCommand(c, full.positionals.slice(2), full, cfg, io);
  return EXIT.ok;
}

function numberFlag(p: ParsedArgv, name: string): number | undefined {
  const v = last(p, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} expects an integer`);
  return Number(v);
}

/** `up` still takes its flags as a plain record. */
function legacyFlags(p: ParsedArgv): Record<string, string | boolean> {
  return Object.fromEntries([...p.flags].map(([k, v]) => [k, v[v.length - 1] === '' ? true : v[v.length - 1]!]));
}

async function login(cfg: CliConfig, p: ParsedArgv, io: Io, tty?: Tty): Promise<number> {
  const username = last(p, 'username') || 'admin';
  const password = await readPassword(io, tty);
  if (!password) throw new UsageError('give the password (typed, or on stdin)');
  const { api } = await import('@nqvm/api');
  const res = await clientFor({ ...cfg, token: undefined }).call(api.auth.login, { body: { username, password } });
  saveProfile(cfg.file, cfg.profile, { url: cfg.url, token: res.token });
  io.out(`logged in to ${cfg.url} as ${username} (profile ${cfg.profile}, session until ${res.expires_at})`);
  return EXIT.ok;
}

function profiles(cfg: CliConfig, rest: string[], io: Io): number {
  const saved = readConfigFile(cfg.file);
  if (!rest[0] || rest[0] === 'list') {
    const names = Object.keys(saved.profiles);
    if (!names.length) io.out('(no profiles: nqvm login saves one)');
    for (const n of names) io.out(`${n === saved.current ? '*' : ' '} ${n}  ${saved.profiles[n]!.url}`);
    return EXIT.ok;
  }
  if (rest[0] === 'use' && rest[1]) {
    if (!saved.profiles[rest[1]]) throw new NotResolved(`no profile named "${rest[1]}"`);
    writeConfigFile(cfg.file, { ...saved, current: rest[1] });
    io.out(`using profile ${rest[1]}`);
    return EXIT.ok;
  }
  throw new UsageError('profile list | profile use NAME');
}

/** `nqvm logs VM [-f] [--vmm] [--lines N]`: the generated `logs tail` for one VM's console or VMM log. */
async function vmLogs(cfg: CliConfig, rest: string[], p: ParsedArgv, io: Io): Promise<number> {
  const c = findCommand('logs', 'tail');
  if (!c) throw new UsageError('this manager has no log tail');
  const vmId = await resolveId(clientFor(cfg), '/v1/vms', rest[0]!);
  const flags = new Map<string, string[]>([
    ['source', [on(p, 'vmm') ? 'vm-vmm' : 'vm-console']],
    ['vm-id', [vmId]],
    ['follow', [on(p, 'follow') ? 'true' : 'false']],
  ]);
  const lines = last(p, 'lines');
  if (lines) flags.set('lines', [lines]);
  await runCommand(c, [], { positionals: [], flags }, cfg, io);
  return EXIT.ok;
}

function report(err: unknown, io: Io): number {
  if (err instanceof UsageError) {
    io.err(`nqvm: ${err.message}\n(see nqvm --help)`);
    return EXIT.usage;
  }
  if (err instanceof NotResolved) {
    io.err(`nqvm: ${err.message}`);
    return EXIT.notFound;
  }
  if (err instanceof ApiError) {
    const p = err.problem;
    io.err(`nqvm: ${p.status} ${p.code}: ${p.detail ?? p.title}${p.field ? ` (field ${p.field})` : ''}`);
    return exitOfStatus(err.status);
  }
  if (err instanceof ConsoleRefused) {
    io.err(`nqvm: ${err.message}`);
    return exitOfStatus(err.status);
  }
  io.err(`nqvm: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT.failure;
}

export function exitOfStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status >= 500) return EXIT.server;
  return EXIT.refused;
}
