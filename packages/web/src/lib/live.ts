import { type Event, wsRoutes } from '@nqvm/api';
import type { QueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { openSocket } from './api.ts';

type Listener = (e: Event) => void;
const listeners = new Set<Listener>();
let connected = false;
const statusListeners = new Set<(c: boolean) => void>();

/** Which cached queries an event makes stale, by the resource it is about. */
export function staleKeys(e: Pick<Event, 'resource_type' | 'resource_id'>): unknown[][] {
  const t = e.resource_type.toLowerCase();
  const keys: unknown[][] = [['events']];
  if (t.startsWith('vm') || t === 'snapshot' || t === 'drive' || t === 'nic') {
    keys.push(['vms'], ['stats'], ['operations']);
    if (e.resource_id) keys.push(['vm', e.resource_id]);
  }
  if (t.startsWith('host')) keys.push(['hosts'], ['stats']);
  if (t.startsWith('image')) keys.push(['images'], ...(e.resource_id ? [['image', e.resource_id]] : []));
  if (t.startsWith('template')) keys.push(['templates']);
  if (t.startsWith('snapshot')) keys.push(['snapshots']);
  if (t.startsWith('token')) keys.push(['tokens']);
  return keys;
}

/**
 * One events WebSocket for the whole app: resumes after the last id seen, reconnects with backoff, and
 * marks the queries an event touches as stale (batched) instead of polling.
 */
export function startLiveUpdates(qc: QueryClient): () => void {
  let ws: WebSocket | null = null;
  let lastId: string | undefined;
  let stopped = false;
  let retry = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let flush: ReturnType<typeof setTimeout> | undefined;
  const pending = new Map<string, unknown[]>();

  const setConnected = (c: boolean) => {
    connected = c;
    for (const fn of statusListeners) fn(c);
  };
  const invalidate = (keys: unknown[][]) => {
    for (const k of keys) pending.set(JSON.stringify(k), k);
    flush ??= setTimeout(() => {
      flush = undefined;
      const all = [...pending.values()];
      pending.clear();
      for (const queryKey of all) void qc.invalidateQueries({ queryKey });
    }, 200);
  };

  const open = () => {
    if (stopped) return;
    ws = openSocket(wsRoutes.events, undefined, { after: lastId });
    ws.onmessage = (msg) => {
      const data = JSON.parse(String(msg.data)) as { type: string; event?: Event };
      if (data.type === 'ready') {
        retry = 0;
        setConnected(true);
        // What was read before this subscription began may predate an event it will never see: an event between a
        // page's first reads and the first subscription (under load, a guest_ready that came while the socket connected),
        // or one committed late with an id below the one a reconnect resumes after. Re-read what is on screen once.
        void qc.invalidateQueries();
      } else if (data.type === 'event' && data.event) {
        if (!lastId || BigInt(data.event.id) > BigInt(lastId)) lastId = data.event.id;
        invalidate(staleKeys(data.event));
        for (const fn of listeners) fn(data.event);
      }
    };
    ws.onclose = () => {
      setConnected(false);
      if (stopped) return;
      timer = setTimeout(open, Math.min(15_000, 500 * 2 ** retry++));
    };
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(flush);
    ws?.close();
  };
}

export function onLiveEvent(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function useLiveConnected(): boolean {
  const [c, setC] = useState(connected);
  useEffect(() => {
    statusListeners.add(setC);
    return () => {
      statusListeners.delete(setC);
    };
  }, []);
  return c;
}
