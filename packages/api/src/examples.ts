import type { JsonObject } from './openapi-components.ts';

const FIXED_UUID = '3f2b8c1e-9a4d-4e6b-8f1a-2c5d7e9b0a14';
const FIXED_TIME = '2026-12-03T09:30:00.000Z';

/** Strings tried, in order, against a `pattern`; the first that matches is the example. */
const CANDIDATES = [
  'web-1',
  'console.log',
  'https://images.example.com/debian-12.ext4',
  'http://10.0.0.2:19090',
  'a'.repeat(64).replace(/a/g, (_, i: number) => '0123456789abcdef'[i % 16]!),
  '52:54:00:12:34:56',
  '10.88.0.10',
  '10.88.0.0/24',
  'eth0',
  '42',
  'tap0',
  'vd0',
  'rootfs',
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@host',
];

/** A plausible value for a property, by its name, where the schema alone would give something meaningless. */
function byName(name: string | undefined, s: JsonObject): unknown {
  if (!name) return undefined;
  if (s.type === 'string' && !s.pattern && !s.format && !s.enum) {
    if (name === 'name') return 'web-1';
    if (name === 'description') return 'Front end, blue deployment';
    if (name === 'username') return 'alice';
    if (name === 'password') return 'correct-horse-battery';
  }
  return undefined;
}

/** An example value that satisfies `schema` (defaults first, then the first alternative, minimums, patterns). */
export function exampleOf(schema: JsonObject, name?: string, depth = 0): unknown {
  if (depth > 8) return null;
  if (schema.default !== undefined) return schema.default;
  if (schema.const !== undefined) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const named = byName(name, schema);
  if (named !== undefined) return named;
  if (Array.isArray(schema.anyOf)) {
    const alts = schema.anyOf as JsonObject[];
    return exampleOf(alts.find((a) => a.type !== 'null') ?? alts[0]!, name, depth + 1);
  }
  // A nullable scalar written as one schema with two types (`['integer', 'null']`): the non-null type.
  if (Array.isArray(schema.type)) {
    const types = schema.type as string[];
    return exampleOf({ ...schema, type: types.find((t) => t !== 'null') ?? 'null' }, name, depth + 1);
  }
  switch (schema.type) {
    case 'object': {
      const out: JsonObject = {};
      const props = (schema.properties ?? {}) as Record<string, JsonObject>;
      const required = new Set((schema.required ?? []) as string[]);
      const min = Number(schema.minProperties ?? 0);
      for (const [k, v] of Object.entries(props))
        if (required.has(k) || Object.keys(out).length < min) out[k] = exampleOf(v, k, depth + 1);
      return out;
    }
    case 'array': {
      const min = Number(schema.minItems ?? 0);
      const item = schema.items ? exampleOf(schema.items as JsonObject, name, depth + 1) : 'item';
      return Array.from({ length: Math.max(min, schema.items ? 1 : 0) }, () => item).slice(
        0,
        Number(schema.maxItems ?? 1),
      );
    }
    case 'integer':
    case 'number': {
      const min =
        typeof schema.minimum === 'number'
          ? schema.minimum
          : typeof schema.exclusiveMinimum === 'number'
            ? schema.exclusiveMinimum + 1
            : 1;
      const max = typeof schema.maximum === 'number' ? schema.maximum : Number.MAX_SAFE_INTEGER;
      return Math.min(Math.max(min, 1), max);
    }
    case 'boolean':
      return false;
    case 'null':
      return null;
    case 'string':
      return stringExample(schema);
    default:
      return {};
  }
}

function stringExample(s: JsonObject): string {
  if (s.format === 'uuid') return FIXED_UUID;
  if (s.format === 'date-time') return FIXED_TIME;
  const min = Number(s.minLength ?? 0);
  const max = Number(s.maxLength ?? 1_000_000);
  const fits = (v: string) => v.length >= min && v.length <= max;
  if (typeof s.pattern === 'string') {
    const re = new RegExp(s.pattern);
    const hit = CANDIDATES.find((c) => re.test(c) && fits(c));
    if (hit) return hit;
  }
  const base = 'example';
  return base.padEnd(min, 'x').slice(0, Math.max(min, Math.min(max, base.length)));
}
