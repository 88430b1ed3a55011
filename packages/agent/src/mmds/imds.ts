/** Resolves an MMDS request path in the data tree the way Firecracker does; undefined when absent. */
export function lookup(data: unknown, path: string): unknown {
  let node = data;
  for (const seg of path.split('/').filter(Boolean)) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    const key = decodeURIComponent(seg);
    if (!Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/**
 * IMDS text: an object lists its keys one per line, sub-objects with a trailing `/`; a string is itself.
 * Other leaves (numbers, arrays) have no IMDS form, as in Firecracker: null means "not representable".
 * Keys come sorted, as Firecracker's: the manager's jsonb store does not keep insertion order anyway.
 */
export function imdsText(node: unknown): string | null {
  if (typeof node === 'string') return node;
  if (node !== null && typeof node === 'object' && !Array.isArray(node))
    return Object.entries(node as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? `${k}/` : k))
      .join('\n');
  return null;
}

/** RFC 7396 JSON merge patch: null removes, objects merge recursively, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
