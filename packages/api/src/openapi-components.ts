import { Type } from 'typebox';

export type JsonObject = Record<string, unknown>;

export function plain(schema: unknown): JsonObject {
  // TypeBox schemas carry non-JSON keys; a JSON round trip leaves only the JSON Schema.
  const { $id: _id, '~kind': _kind, ...rest } = JSON.parse(JSON.stringify(schema)) as JsonObject;
  return rest;
}

/** Worth a name of its own: objects, and unions of two or more alternatives (state enums, source kinds). */
function nameable(s: JsonObject): boolean {
  if (s.type === 'object' && s.properties) return true;
  return Array.isArray(s.anyOf) && s.anyOf.length > 1;
}

/**
 * Every exported schema of the API package gets its export's name as a component, so generated SDKs get
 * named types (`Vm`, `Image`, `VmState`). Parameters (`…Params`, `…Query`) stay inline: OpenAPI lists them one by one.
 */
export class Components {
  private readonly byJson = new Map<string, string>();
  private readonly schemas = new Map<string, JsonObject>();
  readonly used = new Set<string>();

  constructor(exported: Record<string, unknown>) {
    for (const name of Object.keys(exported).sort()) {
      const value = exported[name];
      if (!/^[A-Z]/.test(name) || /(Params|Query)$/.test(name) || !Type.IsSchema(value)) continue;
      const s = plain(value);
      if (!nameable(s)) continue;
      const key = JSON.stringify(s);
      if (this.byJson.has(key)) continue;
      this.byJson.set(key, name);
      this.schemas.set(name, s);
    }
  }

  /** `schema` with every named sub-schema (or itself) replaced by a `$ref`. */
  ref(schema: unknown, self?: string): JsonObject {
    const walk = (node: unknown, root: boolean): unknown => {
      if (Array.isArray(node)) return node.map((n) => walk(n, false));
      if (!node || typeof node !== 'object') return node;
      const obj = node as JsonObject;
      const name = this.byJson.get(JSON.stringify(obj));
      if (name && !(root && name === self)) {
        this.used.add(name);
        return { $ref: `#/components/schemas/${name}` };
      }
      const out: JsonObject = {};
      for (const [k, v] of Object.entries(obj)) {
        if (k === 'properties' || k === 'patternProperties')
          out[k] = Object.fromEntries(Object.entries(v as JsonObject).map(([p, s]) => [p, walk(s, false)]));
        else if (k === 'items' || k === 'additionalProperties' || k === 'not') out[k] = walk(v, false);
        else if (k === 'anyOf' || k === 'allOf' || k === 'oneOf') out[k] = walk(v, false);
        else out[k] = v;
      }
      return out;
    };
    return walk(plain(schema), true) as JsonObject;
  }

  /** The named schemas referenced so far, and those they reference, each defined once. */
  definitions(): Record<string, JsonObject> {
    const out: Record<string, JsonObject> = {};
    for (let grew = true; grew; ) {
      grew = false;
      for (const name of [...this.used].sort())
        if (!out[name]) {
          out[name] = this.ref(this.schemas.get(name), name);
          grew = true;
        }
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  }
}
