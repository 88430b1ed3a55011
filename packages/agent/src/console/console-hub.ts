import { createConnection, type Socket } from 'node:net';
import type { ConsoleControl } from '@nqvm/api';
import { readTail, SCROLLBACK_BYTES, Scrollback } from './scrollback.ts';

/** Where a VM's serial console lives: QEMU's chardev Unix socket and the log QEMU copies all output to. */
export interface ConsoleTarget {
  consoleSocket: string;
  consoleLog: string;
}

/** One attached terminal (a WebSocket in production, a small recorder in tests). */
export interface ConsoleViewer {
  output(data: Buffer): void;
  control(msg: ConsoleControl): void;
}

export interface ConsoleSession {
  input(data: Buffer): void;
  resize(cols: number, rows: number): void;
  detach(): void;
}

export interface ConsoleHubOptions {
  scrollbackBytes?: number;
  /** Backoff bounds while the console socket is away (QEMU restarting, VM stopped). */
  retryMinMs?: number;
  retryMaxMs?: number;
  connect?: (path: string) => Socket;
  /** Applies a recorded size inside the guest (through its agent); must not throw to the viewer. */
  applySize?: (vmId: string, size: { cols: number; rows: number }) => Promise<void>;
  /** Resizes within this window collapse into one applySize call with the last size. */
  resizeDebounceMs?: number;
}

/**
 * Everyone watching one VM's serial console: one connection to QEMU's socket (it serves a single client),
 * shared by all viewers; output fans out, input from any viewer goes in, scrollback comes first on attach.
 */
export class ConsoleHub {
  private readonly viewers = new Set<ConsoleViewer>();
  private readonly scrollback: Scrollback;
  private socket: Socket | undefined;
  private connected = false;
  private seeded: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private closed = false;
  private attaching = 0;
  private sizeTimer: NodeJS.Timeout | undefined;
  /** The size the viewers last asked for; kept for whoever can apply it, see resize(). */
  size: { cols: number; rows: number } | undefined;

  constructor(
    readonly vmId: string,
    private readonly resolve: () => ConsoleTarget | undefined | Promise<ConsoleTarget | undefined>,
    private readonly opts: ConsoleHubOptions = {},
    private readonly onIdle: () => void = () => {},
  ) {
    this.scrollback = new Scrollback(opts.scrollbackBytes ?? SCROLLBACK_BYTES);
    this.retryMs = opts.retryMinMs ?? 200;
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Sends the viewer a hello and the scrollback, then live output; the returned session takes its input. */
  async attach(viewer: ConsoleViewer): Promise<ConsoleSession> {
    this.seeded ??= this.seed();
    this.attaching++;
    try {
      await this.seeded;
    } finally {
      this.attaching--;
    }
    // Snapshot and subscription in one synchronous step: nothing is missed or repeated in between.
    const back = this.scrollback.snapshot();
    viewer.control({ type: 'hello', scrollback_bytes: back.length });
    if (back.length) viewer.output(back);
    this.viewers.add(viewer);
    if (!this.connected) viewer.control({ type: 'status', state: 'reconnecting' });
    return {
      input: (data) => {
        if (this.connected && data.length) this.socket?.write(data);
      },
      resize: (cols, rows) => this.resize(cols, rows),
      detach: () => {
        if (!this.viewers.delete(viewer) || this.viewers.size || this.attaching) return;
        this.close();
        this.onIdle();
      },
    };
  }

  /**
   * A serial line carries no window size, and typing `stty` into it would land in whatever reads the line, so
   * the size goes to the guest agent (applySize), debounced: a dragged window sends many sizes.
   */
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    const apply = this.opts.applySize;
    if (!apply) return;
    clearTimeout(this.sizeTimer);
    this.sizeTimer = setTimeout(() => {
      if (this.size) apply(this.vmId, this.size).catch(() => {});
    }, this.opts.resizeDebounceMs ?? 250);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.sizeTimer);
    this.socket?.destroy();
    this.socket = undefined;
    this.connected = false;
  }

  private async seed(): Promise<void> {
    const target = await this.resolve();
    if (target)
      this.scrollback.reset(await readTail(target.consoleLog, this.opts.scrollbackBytes).catch(() => Buffer.alloc(0)));
    await this.connect(target);
  }

  /** Resolves once the first attempt settled (connected or retry scheduled), so attach never waits on QEMU. */
  private async connect(known?: ConsoleTarget): Promise<void> {
    if (this.closed) return;
    const target = known ?? (await this.resolve());
    if (!target) {
      this.broadcast({ type: 'status', state: 'vm_gone' });
      return this.retry();
    }
    await new Promise<void>((done) => {
      const sock = (this.opts.connect ?? createConnection)(target.consoleSocket);
      this.socket = sock;
      sock.once('connect', () => {
        this.connected = true;
        this.retryMs = this.opts.retryMinMs ?? 200;
        this.broadcast({ type: 'status', state: 'connected' });
        done();
      });
      sock.on('data', (chunk: Buffer) => {
        this.scrollback.append(chunk);
        for (const v of this.viewers) v.output(chunk);
      });
      sock.on('error', () => {});
      sock.once('close', () => {
        const was = this.connected;
        this.connected = false;
        if (this.socket === sock) this.socket = undefined;
        if (this.closed) return done();
        if (was) this.broadcast({ type: 'status', state: 'reconnecting' });
        this.retry();
        done();
      });
    });
  }

  private retry(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, this.opts.retryMaxMs ?? 3000);
  }

  private broadcast(msg: ConsoleControl): void {
    for (const v of this.viewers) v.control(msg);
  }
}

/** The hubs of all VMs on this host; a hub exists while someone watches. */
export class ConsoleHubs {
  private readonly hubs = new Map<string, ConsoleHub>();

  constructor(
    private readonly resolve: (vmId: string) => ConsoleTarget | undefined | Promise<ConsoleTarget | undefined>,
    private readonly opts: ConsoleHubOptions = {},
  ) {}

  hub(vmId: string): ConsoleHub {
    let hub = this.hubs.get(vmId);
    if (!hub) {
      const created = new ConsoleHub(
        vmId,
        () => this.resolve(vmId),
        this.opts,
        () => {
          if (this.hubs.get(vmId) === created) this.hubs.delete(vmId);
        },
      );
      hub = created;
      this.hubs.set(vmId, hub);
    }
    return hub;
  }

  attach(vmId: string, viewer: ConsoleViewer): Promise<ConsoleSession> {
    return this.hub(vmId).attach(viewer);
  }

  get active(): number {
    return this.hubs.size;
  }

  closeAll(): void {
    for (const h of this.hubs.values()) h.close();
    this.hubs.clear();
  }
}
