import { allRoutes, type NqvmClient, type RouteDef } from '@nqvm/api';
import { UsageError } from './flags.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A name that matched nothing (exit code "not found"), or several things. */
export class NotResolved extends Error {}

/** The list route of a collection path (`/v1/vms`), if the API has one that answers pages. */
function listRoute(collection: string): RouteDef | undefined {
  return allRoutes().find((d) => d.method === 'GET' && d.path === collection && d.auth === 'user');
}

/** The collection a path parameter names: `/v1/vms/:id/stop` → `/v1/vms`; `:drive_id` → undefined (not listable). */
export function collectionOf(path: string, param: string): string | undefined {
  const at = path.indexOf(`/:${param}`);
  return at > 0 ? path.slice(0, at) : undefined;
}

/** Body and query fields that hold an id of a listable resource, by their name. */
const FIELD_COLLECTIONS: [RegExp, string][] = [
  [/(^|_)image_id$/, '/v1/images'],
  [/^host_id$/, '/v1/hosts'],
  [/^vm_id$/, '/v1/vms'],
  [/^template_id$/, '/v1/templates'],
];

export function collectionOfField(field: string): string | undefined {
  return FIELD_COLLECTIONS.find(([re]) => re.test(field))?.[1];
}

interface Named {
  id: string;
  name?: string;
  /** Users go by their username. */
  username?: string;
  /** Versioned resources (images) mark the version their name resolves to. */
  latest?: boolean;
  tag?: string | null;
  version?: number;
}

/**
 * An id as given, or the id of the one resource of the collection with that exact name. A versioned resource
 * (images) answers by name with the version `latest` marks, by `name:tag` with that tagged version and by
 * `name@N` with version N.
 */
export async function resolveId(client: NqvmClient, collection: string | undefined, value: string): Promise<string> {
  if (UUID.test(value) || !collection) return value;
  const def = listRoute(collection);
  if (!def) throw new UsageError(`give an id for ${collection.split('/').pop()}: it cannot be found by name`);
  const props = (def.query as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
  const searchKey = ['search', 'q', 'name'].find((k) => k in props);
  const at = /^(.+)@([1-9][0-9]*)$/.exec(value);
  const colon = value.lastIndexOf(':');
  const [base, tag] = at
    ? [at[1]!, undefined]
    : colon > 0
      ? [value.slice(0, colon), value.slice(colon + 1)]
      : [value, undefined];
  const version = at ? Number(at[2]) : undefined;
  const named: Named[] = [];
  const tagged: Named[] = [];
  let versioned = false;
  let cursor: string | undefined;
  do {
    const query: Record<string, unknown> = { limit: 100, ...(cursor ? { cursor } : {}) };
    if (searchKey) query[searchKey] = tag === undefined && version === undefined ? value : base;
    const page = (await client.call(def, { query } as never)) as { items: Named[]; next_cursor: string | null };
    for (const item of page.items) {
      item.name ??= item.username;
      versioned ||= item.latest !== undefined;
      if (item.name === value) named.push(item);
      else if (tag !== undefined && item.name === base && (item.tag === tag || (tag === 'latest' && item.latest)))
        tagged.push(item);
      else if (version !== undefined && item.name === base && item.version === version) tagged.push(item);
    }
    cursor = page.next_cursor ?? undefined;
  } while (cursor && (versioned || named.length + tagged.length < 2));
  const what = collection.split('/').pop();
  const latest = named.filter((i) => i.latest);
  const matches = named.length > 1 && latest.length === 1 ? latest : named.length ? named : tagged;
  if (matches.length === 0) throw new NotResolved(`no ${what} named "${value}"`);
  if (matches.length > 1) throw new NotResolved(`several ${what} are named "${value}": give the id`);
  return matches[0]!.id;
}
