/**
 * The official Firecracker v1.16.1 swagger as an oracle: find the operation for (method, path) and
 * validate the body against its body-parameter schema with ajv. Swagger 2.0 `definitions` are kept as
 * draft-07 `definitions`, so `#/definitions/X` refs resolve unchanged.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

export const FIRECRACKER_SPEC_PATH = '/work/shared/firecracker/firecracker-v1.16.1.yaml';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface SwaggerParam {
  in: string;
  name: string;
  required?: boolean;
  schema?: Json;
}
interface SwaggerOperation {
  operationId: string;
  parameters?: SwaggerParam[];
  responses?: Record<string, { schema?: Json }>;
}
interface Swagger {
  info: { version: string };
  paths: Record<string, Record<string, SwaggerOperation>>;
  definitions: Record<string, Json>;
}

export interface OracleResult {
  valid: boolean;
  operationId?: string;
  pathParams?: Record<string, string>;
  errors: string[];
}

export interface OracleOptions {
  /**
   * Reject properties the swagger does not list. Firecracker's serde structs use deny_unknown_fields, so a
   * misspelt field is a 400 on the real VMM even though Swagger 2.0 leaves objects open. Default true.
   */
  closedObjects?: boolean;
}

const KNOWN_FORMATS = new Set(['int32', 'int64', 'date-time', 'uri', 'ipv4']);

/** Swagger → JSON Schema details: the MMDS address regex is written as a `format`; `example` is not a keyword. */
function convert(node: Json, closed: boolean): Json {
  if (Array.isArray(node)) return node.map((n) => convert(n, closed));
  if (node === null || typeof node !== 'object') return node;
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'example') continue;
    if (k === 'format' && typeof v === 'string' && !KNOWN_FORMATS.has(v)) {
      out.pattern = `^${v}$`;
      continue;
    }
    out[k] =
      k === 'properties' && v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, convert(s, closed)]))
        : convert(v, closed);
  }
  if (closed && out.type === 'object' && out.properties && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

// ajv-formats is CommonJS; its default export arrives either directly or under .default.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

export class FirecrackerSpec {
  readonly version: string;
  private readonly doc: Swagger;
  private readonly ajv: Ajv;
  private readonly routes: { template: string; segments: string[] }[];
  private readonly cache = new Map<string, ValidateFunction>();
  private readonly closed: boolean;

  constructor(specPath = FIRECRACKER_SPEC_PATH, opts: OracleOptions = {}) {
    this.doc = parse(readFileSync(specPath, 'utf8')) as Swagger;
    this.version = this.doc.info.version;
    this.ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
    addFormats(this.ajv);
    this.closed = opts.closedObjects ?? true;
    this.ajv.addSchema({ $id: 'fc', definitions: convert(this.doc.definitions as Json, this.closed) });
    this.routes = Object.keys(this.doc.paths).map((template) => ({ template, segments: template.split('/') }));
  }

  /** Every (method, path template) the spec defines. */
  operations(): { method: string; path: string; operationId: string }[] {
    return Object.entries(this.doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([m, op]) => ({ method: m.toUpperCase(), path: p, operationId: op.operationId })),
    );
  }

  private match(urlPath: string): { template: string; params: Record<string, string> } | null {
    const segs = urlPath.split('?')[0]!.split('/');
    for (const r of this.routes) {
      if (r.segments.length !== segs.length) continue;
      const params: Record<string, string> = {};
      const ok = r.segments.every((s, i) => {
        const actual = segs[i]!;
        if (s.startsWith('{') && s.endsWith('}')) {
          if (actual.length === 0) return false;
          params[s.slice(1, -1)] = decodeURIComponent(actual);
          return true;
        }
        return s === actual;
      });
      if (ok) return { template: r.template, params };
    }
    return null;
  }

  private validator(key: string, schema: Json): ValidateFunction {
    let v = this.cache.get(key);
    if (!v) {
      // Wrap so that `#/definitions/...` inside the operation resolves against the spec document.
      v = this.ajv.compile({ $id: `fc-op-${this.cache.size}`, ...wrap(convert(schema, this.closed)) });
      this.cache.set(key, v);
    }
    return v;
  }

  validateRequest(method: string, urlPath: string, body?: unknown): OracleResult {
    const found = this.match(urlPath);
    if (!found) return { valid: false, errors: [`no path in the spec matches ${urlPath}`] };
    const op = this.doc.paths[found.template]?.[method.toLowerCase()];
    if (!op) return { valid: false, errors: [`${method} is not defined for ${found.template}`] };
    const base = { operationId: op.operationId, pathParams: found.params };
    const bodyParam = op.parameters?.find((p) => p.in === 'body');
    if (!bodyParam?.schema) {
      return body === undefined
        ? { valid: true, errors: [], ...base }
        : { valid: false, errors: ['operation takes no body'], ...base };
    }
    if (body === undefined) {
      return bodyParam.required
        ? { valid: false, errors: ['request body is required'], ...base }
        : { valid: true, errors: [], ...base };
    }
    const validate = this.validator(`${method} ${found.template}`, bodyParam.schema);
    if (validate(body)) return { valid: true, errors: [], ...base };
    return {
      valid: false,
      errors: (validate.errors ?? []).map(
        (e) =>
          `${e.instancePath || '(body)'} ${e.message ?? 'invalid'}${'additionalProperty' in e.params ? `: ${String(e.params.additionalProperty)}` : ''}`,
      ),
      ...base,
    };
  }

  /** Validates a 200 body against the operation's declared response schema. */
  validateResponse(method: string, urlPath: string, status: number, body: unknown): OracleResult {
    const found = this.match(urlPath);
    const op = found ? this.doc.paths[found.template]?.[method.toLowerCase()] : undefined;
    const schema = op?.responses?.[String(status)]?.schema;
    if (!found || !op || !schema)
      return { valid: false, errors: [`no ${status} response schema for ${method} ${urlPath}`] };
    const validate = this.validator(`${method} ${found.template} ${status}`, schema);
    return validate(body)
      ? { valid: true, errors: [], operationId: op.operationId }
      : { valid: false, errors: (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`) };
  }
}

/** Rewrites local refs to point into the registered spec document. */
function wrap(schema: Json): { [k: string]: Json } {
  const rewrite = (n: Json): Json => {
    if (Array.isArray(n)) return n.map(rewrite);
    if (n === null || typeof n !== 'object') return n;
    return Object.fromEntries(
      Object.entries(n).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? `fc${v}` : rewrite(v)]),
    );
  };
  return { allOf: [rewrite(schema)] };
}
