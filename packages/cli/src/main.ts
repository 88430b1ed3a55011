import { ApiError } from '@nqvm/api';
import { helpText, type Io, login, runApiCommand, UsageError } from './commands.ts';
import { loadCliConfig } from './config.ts';

const EXIT = { ok: 0, failure: 1, usage: 2, api4xx: 3, api5xx: 4 } as const;

/** Every command goes through here: options parsed once, errors mapped to messages and exit codes. */
export async function main(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  const parsed = parseFlags(argv);
  const [cmd, ...rest] = parsed.positionals;
  const flags = parsed.flags;
  try {
    if (!cmd || cmd === 'help' || flags.help) {
      io.out(helpText());
      return EXIT.ok;
    }
    if (cmd === 'up') {
      const { up } = await import('./up.ts');
      await up(env, flags);
      return EXIT.ok;
    }
    if ((cmd === 'images' || cmd === 'image') && rest[0] === 'build-demo') {
      const { buildDemo } = await import('./up.ts');
      const built = await buildDemo(typeof flags.out === 'string' ? flags.out : undefined, env);
      io.out(
        flags.json
          ? JSON.stringify(built, null, 2)
          : Object.entries(built)
              .map(([k, v]) => `${k}: ${v}`)
              .join('\n'),
      );
      return EXIT.ok;
    }
    const cfg = loadCliConfig(env);
    if (cmd === 'login') {
      await login(cfg, io, flags);
      return EXIT.ok;
    }
    const [op, ...positional] = rest;
    if (!op) throw new UsageError(`${cmd} needs an operation`);
    await runApiCommand(cfg, io, cmd, op, positional, flags);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`nqvm: ${err.message}\n\n${helpText()}`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      const p = err.problem;
      io.err(`nqvm: ${p.status} ${p.code}: ${p.detail ?? p.title}${p.field ? ` (field ${p.field})` : ''}`);
      return err.status >= 500 ? EXIT.api5xx : EXIT.api4xx;
    }
    io.err(`nqvm: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT.failure;
  }
}

const BOOLEAN_FLAGS = new Set(['json', 'help']);

/** `--name value`, `--name=value`, bare `--json`; everything else is positional. */
export function parseFlags(argv: string[]): { positionals: string[]; flags: Record<string, string | boolean> } {
  const positionals: string[] = [];
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--') || a === '--') {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1);
    else if (BOOLEAN_FLAGS.has(a.slice(2)) || i + 1 >= argv.length || argv[i + 1]!.startsWith('--'))
      flags[a.slice(2)] = true;
    else flags[a.slice(2)] = argv[++i]!;
  }
  return { positionals, flags };
}
