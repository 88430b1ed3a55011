import { describe, expect, it } from 'vitest';
import { main, parseFlags } from './main.ts';

describe('nqvm CLI', () => {
  it('parses --flag value, --flag=value and bare boolean flags', () => {
    expect(parseFlags(['vms', 'create', '--mem-mib', '256', '--name=web', '--json', 'x'])).toEqual({
      positionals: ['vms', 'create', 'x'],
      flags: { 'mem-mib': '256', name: 'web', json: true },
    });
  });

  it('prints help and exits 0; an unknown resource is a usage error with exit 2', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), readStdin: async () => '' };
    expect(await main([], {}, io)).toBe(0);
    expect(out.join('\n')).toMatch(/nqvm up/);
    expect(await main(['frobs', 'list'], { NQVM_CONFIG: '/nonexistent/x.json' }, io)).toBe(2);
    expect(err.join('\n')).toMatch(/unknown resource "frobs"/);
    expect(out.join('\n')).not.toMatch(/frobs/);
  });
});
