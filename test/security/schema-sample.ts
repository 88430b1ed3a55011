/** A JSON Schema as found in the OpenAPI document (TypeBox output). */
export interface Schema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  default?: unknown;
  additionalProperties?: boolean | Schema;
  patternProperties?: Record<string, Schema>;
}

// Strings that satisfy the patterns the API uses; the first one a pattern accepts is the sample.
const CANDIDATES = [
  'fuzz1',
  'http://127.0.0.1:9',
  'a'.repeat(64),
  '0a:1b:2c:3d:4e:5f',
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFuzz fuzz@host',
  'fuzz.log',
  '169.254.1.1',
  'eth0',
  'fuzz',
];

function sampleString(s: Schema, ids: () => string): string {
  if (s.format === 'uuid') return ids();
  if (s.format === 'date-time') return new Date(0).toISOString();
  if (s.pattern) {
    const re = new RegExp(s.pattern);
    const hit = CANDIDATES.find((c) => re.test(c) && c.length <= (s.maxLength ?? Number.POSITIVE_INFINITY));
    if (hit) return hit;
  }
  const min = s.minLength ?? 1;
  return 'f'.repeat(Math.max(min, Math.min(4, s.maxLength ?? 4)));
}

/**
 * A value the schema accepts (as far as a small sampler can tell), with the smallest numbers: required fields
 * only, or every declared field when `full`.
 */
export function sample(s: Schema, ids: () => string, full = false): unknown {
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  if (s.default !== undefined) return s.default;
  const options = s.anyOf ?? s.oneOf;
  if (options) {
    const first = options.find((o) => o.type !== 'null') ?? options[0]!;
    return sample(first, ids, full);
  }
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const keys = full ? Object.keys(s.properties ?? {}) : (s.required ?? []);
      for (const key of keys) out[key] = sample(s.properties?.[key] ?? {}, ids, full);
      return out;
    }
    case 'array':
      return Array.from({ length: Math.max(s.minItems ?? 0, full ? 1 : 0) }, () => sample(s.items ?? {}, ids, full));
    case 'string':
      return sampleString(s, ids);
    case 'integer':
    case 'number': {
      const low = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : 1);
      return Math.min(Math.max(low, 1), s.maximum ?? Number.MAX_SAFE_INTEGER);
    }
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return 'fuzz';
  }
}

/** Every leaf and branch of a sampled value as a path of keys. */
export function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const key = Array.isArray(value) ? Number(k) : k;
      out.push([...prefix, key], ...pathsOf(v, [...prefix, key]));
    }
  }
  return out;
}

/** A deep copy of `value` with the thing at `path` replaced (or removed when `to` is REMOVE). */
export const REMOVE = Symbol('remove');
export function replaceAt(value: unknown, path: (string | number)[], to: unknown): unknown {
  if (path.length === 0) return to;
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (to === REMOVE) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = to;
  return copy;
}

/** The schema with every `#/components/schemas/X` reference replaced by its target (the sampler reads plain schemas). */
export function deref(s: unknown, components: Record<string, unknown>, depth = 0): unknown {
  if (depth > 32 || s === null || typeof s !== 'object') return s;
  if (Array.isArray(s)) return s.map((x) => deref(x, components, depth + 1));
  const ref = (s as Schema).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/'))
    return deref(components[ref.slice('#/components/schemas/'.length)], components, depth + 1);
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, deref(v, components, depth + 1)]));
}
