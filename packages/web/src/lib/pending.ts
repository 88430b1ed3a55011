import { ApiError, api, type Problem, type Vm, type VmAction } from '@nqvm/api';
import { call, isMissingRoute } from './api.ts';

/**
 * Endpoints the console is built against before they are in the `api` route table (issue 6 lists them).
 * Each function is replaced by `call(api.x.y, …)` once the contract lands; until then a 404
 * `route_not_found` from the manager shows as "not available yet".
 */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'include',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) {
    const text = await res.text();
    let problem: Problem;
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = { type: 'about:blank', title: res.statusText, status: res.status, code: 'http_error', detail: text };
    }
    if (res.status === 401) window.dispatchEvent(new Event('nqvm:unauthorized'));
    throw new ApiError(res.status, problem);
  }
  return res.status === 204 ? (undefined as T) : ((await res.json()) as T);
}

export type BulkAction = VmAction | 'delete';
export interface BulkResult {
  id: string;
  ok: boolean;
  /** HTTP status, known when the per-VM fallback made the call. */
  status?: number;
  error?: string;
}

/** The API takes at most this many ids per bulk request. */
const BULK_MAX = 500;

/** `POST /v1/vms/actions {ids, action}` in chunks of 500; falls back to one call per VM while the bulk route is missing. */
export async function bulkVmAction(ids: string[], action: BulkAction): Promise<BulkResult[]> {
  try {
    const out: BulkResult[] = [];
    for (let i = 0; i < ids.length; i += BULK_MAX) {
      const res = await call(api.vms.bulk, { body: { ids: ids.slice(i, i + BULK_MAX), action } });
      for (const r of res.results)
        out.push({ id: r.id, ok: r.ok, ...(r.ok ? {} : { error: r.detail ?? r.code ?? 'refused' }) });
    }
    return out;
  } catch (err) {
    if (!isMissingRoute(err)) throw err;
  }
  return Promise.all(
    ids.map(async (id): Promise<BulkResult> => {
      try {
        await vmAction(id, action);
        return { id, ok: true, status: 202 };
      } catch (err) {
        return err instanceof ApiError
          ? { id, ok: false, status: err.status, error: err.problem.detail ?? err.problem.title }
          : { id, ok: false, status: 0, error: String(err) };
      }
    }),
  );
}

export function vmAction(id: string, action: BulkAction): Promise<Vm> {
  const params = { params: { id } };
  switch (action) {
    case 'start':
      return call(api.vms.start, params);
    case 'stop':
      return call(api.vms.stop, params);
    case 'pause':
      return call(api.vms.pause, params);
    case 'resume':
      return call(api.vms.resume, params);
    case 'ctrl-alt-del':
      return call(api.vms.ctrlAltDel, params);
    case 'delete':
      return call(api.vms.delete, params);
  }
}
