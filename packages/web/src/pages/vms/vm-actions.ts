import { api, type Vm, type VmAction } from '@nqvm/api';
import { call } from '../../lib/api.ts';

export type BulkAction = VmAction | 'delete';
export interface BulkResult {
  id: string;
  ok: boolean;
  error?: string;
}

/** The API takes at most this many ids per bulk request. */
const BULK_MAX = 500;

/** `POST /v1/vms/actions {ids, action}`, in chunks of 500. */
export async function bulkVmAction(ids: string[], action: BulkAction): Promise<BulkResult[]> {
  const out: BulkResult[] = [];
  for (let i = 0; i < ids.length; i += BULK_MAX) {
    const res = await call(api.vms.bulk, { body: { ids: ids.slice(i, i + BULK_MAX), action } });
    for (const r of res.results)
      out.push({ id: r.id, ok: r.ok, ...(r.ok ? {} : { error: r.detail ?? r.code ?? 'refused' }) });
  }
  return out;
}

/** One VM's action; `force-off` is a stop that kills the VMM at once (`POST /v1/vms/{id}/stop {force: true}`). */
export function vmAction(id: string, action: BulkAction | 'force-off'): Promise<Vm> {
  const params = { params: { id } };
  switch (action) {
    case 'start':
      return call(api.vms.start, params);
    case 'stop':
      return call(api.vms.stop, params);
    case 'force-off':
      return call(api.vms.stop, { ...params, body: { force: true } });
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
