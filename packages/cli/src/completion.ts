import { commands, findCommand, groupOf, groups } from './catalog.ts';
import { GLOBAL_FLAGS } from './help.ts';

const SPECIAL = ['up', 'login', 'passwd', 'console', 'logs', 'events', 'profile', 'completion', 'help'];

/** Candidates for the word being typed, given the words before it (without `nqvm`). */
export function complete(words: string[]): string[] {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1).filter((w) => !w.startsWith('-'));
  let candidates: string[];
  if (before.length === 0) candidates = [...SPECIAL, ...groups()];
  else if (before[0] === 'completion') candidates = ['bash', 'zsh', 'fish'];
  else {
    const group = groupOf(before[0]!);
    if (!group) candidates = [];
    else if (before.length === 1 && !current.startsWith('-')) candidates = verbsOf(group);
    else {
      const c = findCommand(group, before[1] ?? '');
      const globals = GLOBAL_FLAGS.flatMap(([f]) => f.split(', ').map((x) => x.split(' ')[0]!));
      candidates = [...(c?.flags.map((f) => `--${f.flag}`) ?? []), ...globals.filter((g) => g.startsWith('--'))];
    }
  }
  return candidates.filter((c) => c.startsWith(current));
}

function verbsOf(group: string): string[] {
  return commands()
    .filter((c) => c.group === group)
    .map((c) => c.verb);
}

/** Shell scripts that ask `nqvm __complete` for candidates, so they stay right as the API grows. */
export function completionScript(shell: string): string {
  switch (shell) {
    case 'bash':
      return [
        '# nqvm completion for bash: eval "$(nqvm completion bash)"',
        '_nqvm() {',
        "  local IFS=$'\\n'",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own expansion
        '  COMPREPLY=($(nqvm __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))',
        '}',
        'complete -o default -F _nqvm nqvm',
      ].join('\n');
    case 'zsh':
      return [
        '#compdef nqvm',
        '# nqvm completion for zsh: eval "$(nqvm completion zsh)"',
        '_nqvm() {',
        '  local -a candidates',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: zsh's own expansion
        '  candidates=(${(f)"$(nqvm __complete ${words[2,CURRENT]} 2>/dev/null)"})',
        '  compadd -a candidates',
        '}',
        'compdef _nqvm nqvm',
      ].join('\n');
    case 'fish':
      return [
        '# nqvm completion for fish: nqvm completion fish | source',
        "complete -c nqvm -f -a '(nqvm __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'",
      ].join('\n');
    default:
      throw new Error(`no completion for shell "${shell}" (bash, zsh or fish)`);
  }
}
