import type { WebSocket } from 'ws';

export interface RelayOptions {
  /** Opens a fresh upstream socket (resolving the VM's host and secret each time). */
  dial(): Promise<WebSocket>;
  onError?(err: unknown): void;
  retryMinMs?: number;
  retryMaxMs?: number;
}

const status = (state: 'connected' | 'reconnecting' | 'vm_gone') => JSON.stringify({ type: 'status', state });

/**
 * Relays a browser WebSocket to a host agent's, frame for frame (binary stays binary). When the agent side drops
 * (agent restart) the browser socket stays open: it is told `reconnecting` and the agent is redialled with
 * backoff until it answers, then `connected`. An agent that no longer knows the VM (404) ends the relay.
 */
export function relay(browser: WebSocket, opts: RelayOptions): void {
  let upstream: WebSocket | undefined;
  let open = false;
  let done = false;
  let delay = opts.retryMinMs ?? 250;
  let timer: NodeJS.Timeout | undefined;
  let announcedLoss = false;

  const finish = () => {
    done = true;
    clearTimeout(timer);
    upstream?.terminate();
  };
  browser.on('close', finish);
  // What the browser sends before the agent side is open (typing right after connecting) waits, up to 64 KiB.
  const queued: [Buffer, boolean][] = [];
  let queuedBytes = 0;
  browser.on('message', (data: Buffer, binary: boolean) => {
    if (open && upstream) upstream.send(binary ? data : data.toString('utf8'), { binary });
    else if (queuedBytes + data.length <= 64 * 1024) {
      queued.push([data, binary]);
      queuedBytes += data.length;
    }
  });

  const lost = () => {
    open = false;
    if (done) return;
    if (!announcedLoss && browser.readyState === browser.OPEN) browser.send(status('reconnecting'));
    announcedLoss = true;
    clearTimeout(timer);
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, opts.retryMaxMs ?? 5000);
  };

  const connect = async () => {
    if (done) return;
    let ws: WebSocket;
    try {
      ws = await opts.dial();
    } catch (err) {
      opts.onError?.(err);
      return lost();
    }
    if (done) return ws.terminate();
    upstream = ws;
    ws.on('open', () => {
      open = true;
      for (const [data, binary] of queued.splice(0)) ws.send(binary ? data : data.toString('utf8'), { binary });
      queuedBytes = 0;
      delay = opts.retryMinMs ?? 250;
      if (announcedLoss && browser.readyState === browser.OPEN) browser.send(status('connected'));
      announcedLoss = false;
    });
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (browser.readyState === browser.OPEN) browser.send(binary ? data : data.toString('utf8'), { binary });
    });
    ws.on('unexpected-response', (_req, res) => {
      ws.terminate();
      if (res.statusCode === 404) {
        if (browser.readyState === browser.OPEN) browser.send(status('vm_gone'));
        finish();
        browser.close(4404, 'vm not on its host');
      }
    });
    ws.on('error', (err) => opts.onError?.(err));
    ws.on('close', () => {
      if (upstream === ws) lost();
    });
  };
  void connect();
}
