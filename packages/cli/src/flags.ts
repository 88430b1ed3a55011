import { readFileSync } from 'node:fs';
import type { TSchema } from 'typebox';

export class UsageError extends Error {}

/** A JSON schema node as TypeBox emits it; only the keywords the CLI reads. */
interface SchemaNode {
  type?: string | string[];
  anyOf?: SchemaNode[];
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, SchemaNode>;
  patternProperties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  required?: string[];
  description?: string;
  default?: unknown;
  format?: string;
  minimum?: number;
  maximum?: number;
}

/** One `--flag` of a command: where its value goes and the schema that types it. */
export interface FlagSpec {
  /** kebab-case as typed: `mem-mib`, `source.url`. */
  flag: string;
  /** JSON path in the body or query: `['source', 'url']`. */
  path: string[];
  in: 'body' | 'query';
  schema: SchemaNode;
  required: boolean;
}

const kebab = (s: string) => s.replaceAll('_', '-');

/** The flags of an object schema; nested objects become dotted flags (`--source.type url`) as well as a JSON flag. */
export function flagsOf(schema: TSchema | undefined, where: 'body' | 'query'): FlagSpec[] {
  const root = schema as SchemaNode | undefined;
  if (!root?.properties) return [];
  const out: FlagSpec[] = [];
  const walk = (node: SchemaNode, path: string[], parentRequired: boolean) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const p = [...path, name];
      const required = parentRequired && (node.required ?? []).includes(name);
      out.push({ flag: p.map(kebab).join('.'), path: p, in: where, schema: child, required });
      if (child.properties && path.length < 2) walk(child, p, required);
    }
  };
  walk(root, [], true);
  return out;
}

/** The type a user sees in help: `integer`, `string`, `boolean`, `a|b|c`, `JSON object`, `string[]`. */
export function typeLabel(s: SchemaNode): string {
  const lits = literals(s);
  if (lits) return lits.map(String).join('|');
  if (s.anyOf) {
    const kinds = s.anyOf.filter((m) => m.type !== 'null').map(typeLabel);
    return [...new Set(kinds)].join(' or ');
  }
  if (s.type === 'array') return `${s.items ? typeLabel(s.items) : 'value'}[]`;
  if (s.type === 'object' || s.patternProperties) return 'JSON object';
  if (s.format === 'uuid') return 'id';
  return String(s.type ?? 'JSON');
}

function literals(s: SchemaNode): unknown[] | undefined {
  if (s.enum) return s.enum;
  if (s.const !== undefined) return [s.const];
  if (s.anyOf?.every((m) => m.const !== undefined)) return s.anyOf.map((m) => m.const);
  return undefined;
}

export function isBoolean(s: SchemaNode): boolean {
  return s.type === 'boolean' || !!s.anyOf?.some((m) => m.type === 'boolean');
}

function readJson(raw: string, flag: string): unknown {
  const text = raw.startsWith('@') ? readFileSync(raw.slice(1), 'utf8') : raw;
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`--${flag} expects JSON${raw.startsWith('@') ? ` in ${raw.slice(1)}` : ' (or @FILE)'}`);
  }
}

/** A raw argv string turned into the value the schema asks for; a string stays a string. */
export function parseValue(s: SchemaNode, raw: string, flag: string): unknown {
  const lits = literals(s);
  if (lits) {
    const hit = lits.find((l) => String(l) === raw);
    if (hit === undefined) throw new UsageError(`--${flag} must be one of: ${lits.map(String).join(', ')}`);
    return hit;
  }
  if (s.anyOf) {
    if (raw === 'null' && s.anyOf.some((m) => m.type === 'null')) return null;
    let first: unknown;
    for (const m of s.anyOf.filter((x) => x.type !== 'null')) {
      try {
        return parseValue(m, raw, flag);
      } catch (err) {
        first ??= err;
      }
    }
    throw first ?? new UsageError(`--${flag}: cannot read "${raw}"`);
  }
  switch (s.type) {
    case 'string':
      return raw;
    case 'integer':
      if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${flag} expects an integer, got "${raw}"`);
      return Number(raw);
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} expects a number, got "${raw}"`);
      return n;
    }
    case 'boolean':
      if (raw === 'true' || raw === '') return true;
      if (raw === 'false') return false;
      throw new UsageError(`--${flag} expects true or false, got "${raw}"`);
    case 'array':
      if (raw.startsWith('[') || raw.startsWith('@')) return readJson(raw, flag);
      return [s.items ? parseValue(s.items, raw, flag) : raw];
    case 'null':
      if (raw === 'null') return null;
      throw new UsageError(`--${flag} expects null`);
    default:
      return readJson(raw, flag);
  }
}

/** Several occurrences of one flag: arrays gather them, anything else takes the last. */
export function parseValues(s: SchemaNode, raws: string[], flag: string): unknown {
  if (s.type === 'array' && raws.length > 1) return raws.flatMap((r) => parseValue(s, r, flag) as unknown[]);
  return parseValue(s, raws[raws.length - 1]!, flag);
}

export function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}
