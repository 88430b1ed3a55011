/** Flags that take a value wherever they appear; every other global flag is a switch. */
const VALUE_FLAGS = new Set([
  'profile',
  'url',
  'token',
  'body',
  'file',
  'output',
  'username',
  'lines',
  'limit',
  'data-dir',
  'bind',
  'out',
]);
const SHORT: Record<string, string> = { q: 'quiet', h: 'help', f: 'follow', V: 'version' };

export interface ParsedArgv {
  positionals: string[];
  /** Every value given for a flag, in order (`--tags a --tags b`); switches hold `''`, `--no-x` holds `'false'`. */
  flags: Map<string, string[]>;
}

/**
 * `--name value`, `--name=value`, switches, `--no-name`, short `-q -h -f`; `--` ends flags.
 * `takesValue(name)` says whether a flag consumes the next argument (known from the command's schema).
 */
export const defaultTakesValue = (name: string): boolean => VALUE_FLAGS.has(name);

export function parseArgv(argv: string[], takesValue: (name: string) => boolean = defaultTakesValue): ParsedArgv {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  const add = (k: string, v: string) => flags.set(k, [...(flags.get(k) ?? []), v]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (/^-[a-zA-Z]$/.test(a)) {
      add(SHORT[a[1]!] ?? a[1]!, '');
      continue;
    }
    if (!a.startsWith('--') || a.length === 2) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) {
      add(a.slice(2, eq), a.slice(eq + 1));
      continue;
    }
    const name = a.slice(2);
    if (name.startsWith('no-') && !takesValue(name)) {
      add(name.slice(3), 'false');
      continue;
    }
    if (takesValue(name) && i + 1 < argv.length) add(name, argv[++i]!);
    else add(name, '');
  }
  return { positionals, flags };
}

/** The last value of a flag (a switch gives `''`), or undefined. */
export function last(p: ParsedArgv, name: string): string | undefined {
  const v = p.flags.get(name);
  return v?.[v.length - 1];
}

/** A switch is on when given without a value, or as `=true`. */
export function on(p: ParsedArgv, name: string): boolean {
  const v = last(p, name);
  return v !== undefined && v !== 'false';
}
