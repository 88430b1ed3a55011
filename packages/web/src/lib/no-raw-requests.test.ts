import { describe, expect, it } from 'vitest';

/** Every module of the console, as text (test files aside), named from `src/`. */
const sources = Object.entries(
  import.meta.glob<string>(['../**/*.ts', '../**/*.tsx', '!../**/*.test.ts'], {
    query: '?raw',
    import: 'default',
    eager: true,
  }),
).map(([path, text]) => ({ path: path.replace(/^\.\//, 'lib/').replace(/^\.\.\//, ''), text }));

/** The one module allowed to open connections: the typed client's wrapper (XHR for upload progress, sockets). */
const TRANSPORT = 'lib/api.ts';

function rawRequests(path: string, text: string): string[] {
  const found: string[] = [];
  const code = text.replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '');
  if (/\bfetch\s*\(/.test(code)) found.push(`${path}: fetch()`);
  if (path !== TRANSPORT && /\bXMLHttpRequest\b/.test(code)) found.push(`${path}: XMLHttpRequest`);
  if (path !== TRANSPORT && /\bnew\s+WebSocket\b/.test(code)) found.push(`${path}: new WebSocket`);
  if (/['"`]\/v1\//.test(code)) found.push(`${path}: a hand-written /v1/ path`);
  return found;
}

describe('the console talks to the manager only through the typed client', () => {
  it('reads every module of packages/web/src', () => {
    expect(sources.map((s) => s.path)).toEqual(expect.arrayContaining([TRANSPORT, 'main.tsx', 'pages/vms/detail.tsx']));
  });

  it('finds no fetch, XHR, WebSocket or hand-written API path outside the typed client', () => {
    expect(sources.flatMap((s) => rawRequests(s.path, s.text))).toEqual([]);
  });

  it('would catch each kind of raw request', () => {
    expect(rawRequests('pages/x.tsx', "await fetch('/v1/vms')")).toEqual([
      'pages/x.tsx: fetch()',
      'pages/x.tsx: a hand-written /v1/ path',
    ]);
    expect(rawRequests('pages/x.tsx', 'const ws = new WebSocket(url); new XMLHttpRequest();')).toHaveLength(2);
    expect(rawRequests(TRANSPORT, 'new WebSocket(base + buildPath(def.path, params))')).toEqual([]);
  });
});
