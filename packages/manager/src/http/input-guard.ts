import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest } from '../domain/errors.ts';

const MAX_DEPTH = 64;

/**
 * NUL and the other C0 and C1 controls (tab, newline and carriage return are text where `multiline`), and
 * lone UTF-16 surrogates, which are no character at all and which no database column can store.
 */
export function hasControlChar(s: string, multiline: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 ? !(multiline && (c === 9 || c === 10 || c === 13)) : c >= 0x7f && c <= 0x9f) return true;
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return true;
      i++;
    }
  }
  return false;
}

type Forbidden = (s: string) => boolean;
// A body may carry multi-line text (user data, scripts); paths and query strings are one line.
const BODY: Forbidden = (s) => hasControlChar(s, true);
const LINE: Forbidden = (s) => hasControlChar(s, false);

/** The first string (or key) under `value` holding a forbidden character, as a `body.a.0.b` path. */
export function controlCharAt(value: unknown, where: string, forbidden: Forbidden, depth = 0): string | undefined {
  if (typeof value === 'string') return forbidden(value) ? where : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  if (depth > MAX_DEPTH) return where;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = controlCharAt(value[i], `${where}.${i}`, forbidden, depth + 1);
      if (hit) return hit;
    }
    return undefined;
  }
  // Streams (uploads) and buffers are bytes, not text.
  if (ArrayBuffer.isView(value) || typeof (value as { pipe?: unknown }).pipe === 'function') return undefined;
  for (const [key, v] of Object.entries(value)) {
    if (forbidden(key)) return `${where}.${[...key].map((ch) => (LINE(ch) ? '?' : ch)).join('')}`;
    const hit = controlCharAt(v, `${where}.${key}`, forbidden, depth + 1);
    if (hit) return hit;
  }
  return undefined;
}

function check(req: FastifyRequest): void {
  const field =
    controlCharAt(req.params, 'params', LINE) ??
    controlCharAt(req.query, 'query', LINE) ??
    controlCharAt(req.body, 'body', BODY);
  if (field)
    throw new BadRequest(
      'invalid_characters',
      `${field} contains NUL, another control character or a lone surrogate, which is never accepted`,
      field,
    );
}

/**
 * No request string reaches a handler (and so the database, which refuses NUL) with control characters:
 * checked once for every route before schema validation.
 */
export function installInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => check(req));
}
