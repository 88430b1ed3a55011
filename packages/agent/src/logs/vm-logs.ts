import { type FSWatcher, watch } from 'node:fs';
import { appendFile, open, readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';

/** What a VM's logs may keep on disk by default, the live file and its one rotated generation together. */
export const DEFAULT_LOG_MAX_BYTES = 8 * 1024 * 1024;
export const MIN_LOG_MAX_BYTES = 64 * 1024;

/** A VM whose logs are kept: its files, its cap, and its VMM's pid (undefined while it is not running). */
export interface LoggedVm {
  id: string;
  consoleLog: string;
  vmmLog: string;
  maxBytes: number;
  pid: number | undefined;
}

export interface VmLogsDeps {
  /** The VMs on this host now. */
  list(): LoggedVm[];
  /** How often the VM list and every file are looked at besides the change events (default 2 s). */
  sweepMs?: number;
  onError?(vmId: string, err: unknown): void;
  readCmdline?(pid: number): Promise<string>;
}

/**
 * Keeps `path` with its `.1` within `maxBytes`. The VMM holds the file open with O_APPEND, so it cannot be renamed
 * away: once the live file passes a quarter of the cap its tail (at most half the cap) is copied to `.1` and the live file
 * truncated; the VMM's next write lands at the start. Bytes written between the copy and the truncate are lost.
 */
export async function capLog(path: string, maxBytes: number): Promise<boolean> {
  const size = await stat(path).then(
    (s) => s.size,
    () => 0,
  );
  // Half the cap for `.1`, a quarter for the live file, a quarter for what the VMM writes before the next check.
  if (size <= Math.floor(maxBytes / 4)) return false;
  const keep = Math.min(size, Math.floor(maxBytes / 2));
  const fh = await open(path, 'r');
  let tail: Buffer;
  try {
    tail = Buffer.alloc(keep);
    const { bytesRead } = await fh.read(tail, 0, keep, size - keep);
    tail = tail.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  await truncate(path, 0);
  await writeFile(`${path}.1.tmp`, tail, { mode: 0o600 });
  await rename(`${path}.1.tmp`, `${path}.1`);
  return true;
}

const procCmdline = async (pid: number) => (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0$/, '');

/** An argv as one readable line: arguments holding spaces or quotes are quoted. */
function argvLine(nulSeparated: string): string {
  return nulSeparated
    .split('\0')
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`))
    .join(' ');
}

interface Watched {
  vm: LoggedVm;
  watchers: FSWatcher[];
  pending: NodeJS.Immediate | undefined;
  running: Promise<void> | undefined;
  /** Written to while a check ran: check again when it ends. */
  dirty: boolean;
  pid: number | undefined;
}

/**
 * A VM's console and VMM logs on this host: each kept under the VM's cap (checked on every write the kernel reports,
 * and on a sweep), and the VMM log opened, for each VMM process, with its command line: what QEMU or Firecracker
 * write themselves (warnings, errors, "terminating on signal") follows it.
 */
export class VmLogs {
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly d: VmLogsDeps) {}

  start(): void {
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.sweep().finally(() => {
          if (this.timer) tick();
        });
      }, this.d.sweepMs ?? 2000);
      this.timer.unref();
    };
    if (!this.timer) {
      void this.sweep();
      tick();
    }
  }

  /** Follows the VM list: new VMs are watched, gone ones forgotten, and every file checked once. */
  async sweep(): Promise<void> {
    const now = new Map(this.d.list().map((vm) => [vm.id, vm]));
    for (const [id, w] of this.watched) if (!now.has(id)) this.forget(id, w);
    await Promise.all(
      [...now.values()].map((vm) => {
        let w = this.watched.get(vm.id);
        if (!w) {
          w = { vm, watchers: [], pending: undefined, running: undefined, dirty: false, pid: undefined };
          this.watched.set(vm.id, w);
        }
        w.vm = vm;
        if (w.watchers.length < 2) this.watchFiles(w);
        return this.check(w);
      }),
    );
  }

  private watchFiles(w: Watched): void {
    for (const w0 of w.watchers) w0.close();
    w.watchers = [];
    for (const path of [w.vm.consoleLog, w.vm.vmmLog]) {
      try {
        const watcher = watch(path, { persistent: false }, () => this.soon(w));
        watcher.on('error', () => undefined);
        w.watchers.push(watcher);
      } catch {
        // Not there yet (the VMM has not opened it): the next sweep watches it.
      }
    }
  }

  /** A burst of writes is one check at a time: one more runs after it if the file changed meanwhile. */
  private soon(w: Watched): void {
    if (w.running) {
      w.dirty = true;
      return;
    }
    if (w.pending) return;
    w.pending = setImmediate(() => {
      w.pending = undefined;
      void this.check(w);
    });
  }

  private check(w: Watched): Promise<void> {
    if (w.running) return w.running;
    const run = (async () => {
      try {
        if (w.vm.pid !== undefined && w.vm.pid !== w.pid) {
          w.pid = w.vm.pid;
          const argv = await (this.d.readCmdline ?? procCmdline)(w.pid).catch(() => '');
          const line = `${new Date().toISOString()} nqvm-agent: VMM pid ${w.pid}${argv ? `: ${argvLine(argv)}` : ''}\n`;
          await appendFile(w.vm.vmmLog, line, { mode: 0o600 });
        }
        if (w.vm.pid === undefined) w.pid = undefined;
        const max = Math.max(MIN_LOG_MAX_BYTES, w.vm.maxBytes);
        for (const path of [w.vm.consoleLog, w.vm.vmmLog]) await capLog(path, max);
      } catch (err) {
        this.d.onError?.(w.vm.id, err);
      } finally {
        w.running = undefined;
        if (w.dirty && this.watched.get(w.vm.id) === w) {
          w.dirty = false;
          this.soon(w);
        }
      }
    })();
    w.running = run;
    return run;
  }

  private forget(id: string, w: Watched): void {
    for (const x of w.watchers) x.close();
    if (w.pending) clearImmediate(w.pending);
    this.watched.delete(id);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const [id, w] of this.watched) this.forget(id, w);
  }
}
