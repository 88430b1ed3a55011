import { type Command, commands, groups } from './catalog.ts';
import { isBoolean, typeLabel } from './flags.ts';

/** Exit codes, the same for every command (shown by `nqvm help`). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  refused: 3,
  server: 4,
  notFound: 5,
  auth: 6,
  conflict: 7,
} as const;

export const GLOBAL_FLAGS: [string, string][] = [
  ['--json', 'print the answer as JSON'],
  ['--yaml', 'print the answer as YAML'],
  ['-q, --quiet', 'print only ids, one per line'],
  ['--all', 'lists: follow next_cursor and print every page'],
  ['--profile NAME', 'use a saved profile (nqvm login --profile NAME)'],
  ['--url URL', 'manager URL (else NQVM_URL, else the profile)'],
  ['--body JSON|@FILE', 'the whole request body, instead of field flags'],
  ['-h, --help', 'help for a command: nqvm vms create --help'],
];

const SPECIAL: [string, string][] = [
  ['nqvm up [--data-dir DIR] [--bind HOST:PORT]', 'start manager + local agent + demo images (root)'],
  ['nqvm login [--url URL] [--username NAME] [--profile NAME]', 'ask the password (stdin when piped); save a token'],
  ['nqvm console VM', 'interactive serial console (detach: Ctrl-])'],
  ['nqvm logs VM [-f] [--vmm] [--lines N]', 'the VM console log (or the VMM log); -f follows'],
  ['nqvm events [-f] [--json]', 'recent events; -f streams new ones'],
  ['nqvm profile list|use NAME', 'saved profiles'],
  ['nqvm passwd [--current-password P --new-password P]', 'change your password (asked, or 2 lines on stdin)'],
  ['nqvm users disable|enable USER', 'a disabled user cannot log in; their sessions and tokens stop (admin)'],
  ['nqvm install manager|agent [--set KEY=VALUE …] [--no-start]', 'systemd unit + /etc/nqvm/ROLE.env, started (root)'],
  ['nqvm host join URL --token TOKEN [--name N] [--bind H:P]', 'make this machine a host of that manager (root)'],
  ['nqvm admin reset-password [--username NAME] [--data-dir DIR]', "new password, on the manager's host (root)"],
  ['nqvm images build-demo [--out DIR]', 'build the demo kernel/initrd/rootfs from Debian packages'],
  [
    'nqvm images pull REFERENCE [--name N] [--username U --password-stdin] [--no-wait]',
    'an OCI image (registry/repo:tag) as a rootfs image; waits, with progress',
  ],
  ['nqvm completion bash|zsh|fish', 'print a shell completion script'],
  ['nqvm --version', 'the CLI version'],
];

const pad = (rows: [string, string][], indent = 2) => {
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${' '.repeat(indent)}${a.padEnd(w)}  ${b}`);
};

export function globalHelp(): string {
  const lines = [
    'nqvm — run and manage microVMs',
    '',
    'Usage: nqvm <resource> <verb> [ARGS] [--flags]',
    '',
    'Commands:',
  ];
  lines.push(...pad(SPECIAL));
  lines.push('', 'Resources (nqvm <resource> --help lists its verbs):');
  lines.push(
    ...pad(
      groups().map(
        (g) =>
          [
            g,
            commands()
              .filter((c) => c.group === g)
              .map((c) => c.verb)
              .join(', '),
          ] as [string, string],
      ),
    ),
  );
  lines.push('', 'Global flags:', ...pad(GLOBAL_FLAGS));
  lines.push(
    '',
    'Resources are given by id or by name. Flags are typed by the API schema; nested fields as --source.url URL;',
    'JSON values as --spec \'{"vcpu":1}\' or --spec @file.json; arrays by repeating the flag.',
    '',
    'Exit codes: 0 ok, 1 failure (network, I/O), 2 usage, 3 request refused (4xx), 4 server error (5xx),',
    '            5 not found, 6 not authenticated or not allowed, 7 conflict (wrong state, in use, quota).',
    '',
    'Environment: NQVM_URL, NQVM_TOKEN, NQVM_PROFILE, NQVM_CONFIG (default $XDG_CONFIG_HOME/nqvm/config.json).',
  );
  return lines.join('\n');
}

export function groupHelp(group: string): string {
  const cmds = commands().filter((c) => c.group === group);
  return [
    `Usage: nqvm ${group} <verb> [ARGS] [--flags]`,
    '',
    'Verbs:',
    ...pad(cmds.map((c) => [[c.verb, ...c.positionals.map(argName(c))].join(' '), c.def.summary])),
    '',
    `nqvm ${group} <verb> --help shows its flags.`,
  ].join('\n');
}

/** A positional's name in help: the resource it names (`VM`, `SNAPSHOT`, `DRIVE`). */
export function argName(c: Command) {
  return (param: string): string => {
    const at = c.def.path.indexOf(`/:${param}`);
    const segment = c.def.path.slice(0, at).split('/').pop() ?? param;
    return segment.replace(/s$/, '').toUpperCase();
  };
}

export function commandHelp(c: Command): string {
  const lines = [
    `Usage: nqvm ${c.group} ${c.verb}${c.positionals.map((p) => ` ${argName(c)(p)}`).join('')} [--flags]`,
    '',
    c.def.summary,
    '',
    `${c.def.method} ${c.def.path}${c.def.rawBody ? ' (body: the file given with --file PATH)' : ''}`,
  ];
  if (c.positionals.length)
    lines.push('', 'Arguments:', ...pad(c.positionals.map((p) => [argName(c)(p), p === 'id' ? 'id or name' : 'id'])));
  if (c.flags.length) {
    lines.push('', 'Flags:');
    lines.push(
      ...pad(
        c.flags.map((f) => {
          const type = isBoolean(f.schema) ? '' : ` ${typeLabel(f.schema)}`;
          const notes = [
            f.required ? 'required' : '',
            f.schema.default !== undefined ? `default ${JSON.stringify(f.schema.default)}` : '',
          ].filter(Boolean);
          const desc = [f.schema.description ?? '', notes.length ? `(${notes.join(', ')})` : '']
            .filter(Boolean)
            .join(' ');
          return [`--${f.flag}${type}`, desc] as [string, string];
        }),
      ),
    );
  }
  if (c.def.rawBody) lines.push('', '  --file PATH  the bytes to send (a progress bar shows on a terminal)');
  if (c.def.rawResponse) lines.push('', '  --output PATH  write the answer to a file (default: stdout)');
  lines.push('', 'Global flags:', ...pad(GLOBAL_FLAGS));
  return lines.join('\n');
}
