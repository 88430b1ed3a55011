import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOpenApi } from '@nqvm/api';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deref, pathsOf, REMOVE, replaceAt, type Schema, sample } from './schema-sample.ts';
import { startTarget, type Target } from './support.ts';

interface Parameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  schema: Schema;
}
interface Operation {
  operationId: string;
  parameters: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  security?: Record<string, string[]>[];
}

const MARK = join(tmpdir(), `nqvm-fuzz-${randomBytes(6).toString('hex')}`);
const marks = [1, 2, 3, 4, 5, 6].map((i) => `${MARK}-${i}`);
// Shell, SQL and path payloads: none may ever run or reach a file system path.
const INJECTIONS = [
  `$(touch ${marks[0]})`,
  `\`touch ${marks[1]}\``,
  `; touch ${marks[2]} #`,
  `| touch ${marks[3]}`,
  `&& touch ${marks[4]}`,
  `x\ntouch ${marks[5]}`,
  "'; DROP TABLE users; --",
  '../../../../../etc/passwd',
  '%00',
];
const STRINGS = [
  '',
  'nul\u0000inside',
  '\u0000',
  'ctl\u0001\u001b[31m',
  'del\u007f',
  'c1\u0085',
  'tab\tnewline\n',
  'ünïcødé €',
  '😀🔥',
  '\u202eright-to-left',
  'lone\ud800surrogate',
  '\ufeffbom',
  'x'.repeat(70_000),
  'y'.repeat(300),
  ...INJECTIONS,
];
// Nested fields get the characters that broke things before, not every variant again.
const NESTED_STRINGS = ['nul\u0000inside', 'ctl\u0001', 'lone\ud800surrogate', 'z'.repeat(5000), INJECTIONS[0]!];
const NUMBERS = [0, -1, -2147483649, 2147483648, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, 1.5, 1e-300];
const WRONG_TYPES = [null, true, 12345, 'a-string', [1, 'two'], { nested: { deep: [null] } }];
const BAD_IDS = [
  'nope',
  '0',
  '-1',
  '00000000-0000-0000-0000-00000000000g',
  `${randomUUID()}%00`,
  '%00',
  '%ff%fe',
  '%E2%80%AE',
  '..%2f..%2fetc%2fpasswd',
  `${randomUUID()}'--`,
  '%24(touch%20x)',
  'a'.repeat(150),
  'b'.repeat(5000),
];
/** Percent-encodes, turning a lone surrogate into the invalid UTF-8 bytes a hostile client would send. */
function enc(x: string): string {
  try {
    return encodeURIComponent(x);
  } catch {
    return x
      .split('')
      .map((ch) => {
        try {
          return encodeURIComponent(ch);
        } catch {
          return '%ED%A0%80';
        }
      })
      .join('');
  }
}

const MALFORMED_JSON = ['{', '{"a":', '[', 'null', '"str"', '12', '{"a":1,}', '\u0000', '{"__proto__":{"x":1}}', ''];

describe('schema-driven fuzz of every operation in the OpenAPI document', () => {
  let target: Target;
  let apiToken: string;
  beforeAll(async () => {
    target = await startTarget();
    // An API token, not the session: a fuzzed logout must not end the run's own credentials.
    const created = await target.t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'fuzz' } });
    apiToken = created.json().token;
  });
  afterAll(async () => {
    for (const m of marks) rmSync(m, { force: true });
    await target?.close();
  });

  it('answers every mutated request without a 5xx, every 4xx as problem+json, and runs no payload', async () => {
    const document = buildOpenApi() as { components?: { schemas?: Record<string, unknown> } };
    const doc = deref(document, document.components?.schemas ?? {}) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    const started = Date.now();

    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const isGuest = op.operationId === 'reportGuestIp';
        const isHost = !isGuest && (op.security ?? []).some((s) => 'hostSecret' in s);
        const authorization = isGuest
          ? `Bearer ${target.vms[0]!.guestToken}`
          : isHost
            ? `Bearer ${target.host.secret}`
            : `Bearer ${apiToken}`;
        // Host and guest routes on their real ids (so the body is what is fuzzed); the rest on ids that do not
        // exist, so no fuzzed request deletes or reconfigures the run's own VMs.
        const realId = isGuest ? target.vms[0]!.id : isHost ? target.host.id : undefined;
        const pathValues: Record<string, string> = {};
        for (const p of op.parameters.filter((x) => x.in === 'path'))
          pathValues[p.name] = p.name === 'id' ? (realId ?? randomUUID()) : String(sample(p.schema, randomUUID));
        const queryParams = op.parameters.filter((x) => x.in === 'query');
        const baseQuery: Record<string, unknown> = {};
        for (const q of queryParams) if (q.required) baseQuery[q.name] = sample(q.schema, randomUUID);
        const jsonSchema = op.requestBody?.content['application/json']?.schema;
        const raw = op.requestBody?.content['application/octet-stream'] !== undefined;
        const bodies = jsonSchema ? [sample(jsonSchema, randomUUID), sample(jsonSchema, randomUUID, true)] : [];

        const urlOf = (params: Record<string, string>, query: Record<string, unknown>) => {
          const path = template.replace(/\{([a-z_]+)\}/g, (_, n: string) =>
            n in params && /%|\.\./.test(params[n]!) ? params[n]! : enc(params[n] ?? ''),
          );
          const qs = Object.entries(query)
            .flatMap(([k, v]) =>
              (Array.isArray(v) ? v : [v]).map(
                (x) => `${enc(k)}=${enc(typeof x === 'string' ? x : JSON.stringify(x))}`,
              ),
            )
            .join('&');
          return qs ? `${path}?${qs}` : path;
        };
        const send = async (what: string, opts: Omit<InjectOptions, 'method'>) => {
          let res: LightMyRequestResponse;
          try {
            res = await target.t.app.inject({
              method: method.toUpperCase() as InjectOptions['method'],
              ...opts,
              headers: { authorization, ...(opts.headers ?? {}) },
            });
          } catch (err) {
            failures.push(`${method.toUpperCase()} ${template} ${what}: inject threw ${(err as Error).message}`);
            return;
          }
          sent++;
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          const tag = `${method.toUpperCase()} ${template} ${what}`;
          if (res.statusCode >= 500) failures.push(`${tag}: ${res.statusCode} ${res.body.slice(0, 200)}`);
          else if (res.statusCode >= 400) {
            const type = String(res.headers['content-type'] ?? '');
            let code: unknown;
            try {
              code = (res.json() as { code?: unknown }).code;
            } catch {
              code = undefined;
            }
            if (!type.startsWith('application/problem+json') || typeof code !== 'string')
              failures.push(`${tag}: ${res.statusCode} not problem+json (${type}) ${res.body.slice(0, 120)}`);
          }
        };
        const jsonBody = (payload: unknown) => ({
          url: urlOf(pathValues, baseQuery),
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify(payload),
        });
        const rawBody = { headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('fuzz') };

        // Baselines.
        if (jsonSchema) for (const b of bodies) await send('valid body', jsonBody(b));
        else await send('valid', { url: urlOf(pathValues, baseQuery), ...(raw ? rawBody : {}) });

        // Body mutations: every field dropped, retyped, and given every hostile string and extreme number.
        if (jsonSchema) {
          const full = bodies[1];
          for (const path of pathsOf(full)) {
            const at = path.join('.');
            const value = path.reduce<unknown>((node, k) => (node as Record<string | number, unknown>)[k], full);
            await send(`body.${at} dropped`, jsonBody(replaceAt(full, path, REMOVE)));
            for (const v of WRONG_TYPES)
              await send(`body.${at}=${JSON.stringify(v)}`, jsonBody(replaceAt(full, path, v)));
            if (typeof value === 'string')
              for (const v of path.length > 1 ? NESTED_STRINGS : STRINGS)
                await send(`body.${at}=<string ${v.length}>`, jsonBody(replaceAt(full, path, v)));
            if (typeof value === 'number')
              for (const v of NUMBERS) await send(`body.${at}=${v}`, jsonBody(replaceAt(full, path, v)));
          }
          for (const v of [...WRONG_TYPES, ...STRINGS.slice(0, 4)])
            await send(`body=${JSON.stringify(v).slice(0, 20)}`, jsonBody(v));
          await send('unknown field', jsonBody({ ...(full as object), 'unknown\u0000key': 1 }));
          for (const text of MALFORMED_JSON)
            await send(`malformed JSON ${JSON.stringify(text)}`, {
              url: urlOf(pathValues, baseQuery),
              headers: { 'content-type': 'application/json' },
              payload: text,
            });
          await send('text/plain body', {
            url: urlOf(pathValues, baseQuery),
            headers: { 'content-type': 'text/plain' },
            payload: 'hello',
          });
          await send('oversized body', {
            url: urlOf(pathValues, baseQuery),
            headers: { 'content-type': 'application/json' },
            payload: JSON.stringify({ pad: 'z'.repeat(1_100_000) }),
          });
        }

        // Malformed ids in every path parameter.
        for (const p of Object.keys(pathValues))
          for (const bad of BAD_IDS)
            await send(`path ${p}=${bad.slice(0, 40)}`, {
              url: urlOf({ ...pathValues, [p]: bad }, baseQuery),
              ...(jsonSchema ? jsonBody(bodies[0]) : raw ? rawBody : {}),
              ...(jsonSchema ? { url: urlOf({ ...pathValues, [p]: bad }, baseQuery) } : {}),
            });

        // Query parameters: hostile strings, extreme numbers, repeated keys.
        for (const q of queryParams)
          for (const v of [...STRINGS, ...NUMBERS, ['a', 'b']])
            await send(`query ${q.name}=${String(v).slice(0, 30)}`, {
              url: urlOf(pathValues, { ...baseQuery, [q.name]: v }),
              ...(jsonSchema
                ? { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(bodies[0]) }
                : {}),
              ...(raw ? rawBody : {}),
            });
      }
    }

    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(
      `fuzz: ${sent} requests over ${Object.values(doc.paths).flatMap(Object.keys).length} operations in ${seconds.toFixed(1)} s;` +
        ` statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}\n`,
    );
    expect(failures.slice(0, 40), `${failures.length} failures`).toEqual([]);
    expect(sent).toBeGreaterThan(2000);
    for (const m of marks) expect(existsSync(m), `${m} was created: an injection ran`).toBe(false);
  });
});
