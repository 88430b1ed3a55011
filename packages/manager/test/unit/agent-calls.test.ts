import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return files(p);
    return /\.ts$/.test(e.name) && !/\.test\.ts$/.test(e.name) ? [p] : [];
  });
}

/** Each source file of the manager with its text, comments left out (they may name paths). */
const sources = files(src).map((f) => ({
  file: relative(src, f),
  code: readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\/|(^|[^:])\/\/.*$/gm, '$1'),
}));

const AGENT_CLIENT = 'features/vms/agent-client.ts';

describe('the manager reaches host agents only through the agent client', () => {
  it('no source names an agent path: they come from agentApi in @nqvm/api', () => {
    expect(sources.filter((s) => /\/agent\/v1|\/guest\/v1/.test(s.code)).map((s) => s.file)).toEqual([]);
  });

  it('HTTP and WebSocket clients appear only in the agent client (and the URL guard image imports and OCI pulls fetch user URLs through)', () => {
    // A file's own function called fetch is not the global one.
    const globalFetch = (code: string) => /\bfetch\s*\(/.test(code) && !/\b(const|let|function)\s+fetch\b/.test(code);
    const fetching = sources.filter(
      (s) => globalFetch(s.code) || /\bnew WebSocket\s*\(|\bNqvmClient\b|'node:https?'|'undici'/.test(s.code),
    );
    expect(fetching.map((s) => s.file).sort()).toEqual([
      'features/images/images.service.ts',
      'features/images/oci/oci.registry.ts',
      AGENT_CLIENT,
      'security/url-guard.ts',
    ]);
    const imports = sources.find((s) => s.file === 'features/images/images.service.ts')!;
    expect(imports.code).not.toMatch(/agentTarget|AgentTarget|hostId/);
  });

  it("no source builds a URL from an agent's address", () => {
    expect(sources.filter((s) => /\$\{[\w.]*\.addr\}/.test(s.code)).map((s) => s.file)).toEqual([]);
  });
});
