const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u ? v.toFixed(1) : v} ${UNITS[u]}`;
}

/** A one-line progress bar on stderr, redrawn at most ten times a second; only used when stderr is a terminal. */
export class Progress {
  private lastDraw = 0;
  private drawn = false;
  constructor(
    private readonly label: string,
    private readonly io: { errRaw?(s: string): void },
    private readonly now: () => number = Date.now,
  ) {}

  update(done: number, total?: number): void {
    const t = this.now();
    if (this.drawn && t - this.lastDraw < 100 && done !== total) return;
    this.lastDraw = t;
    this.drawn = true;
    this.io.errRaw?.(`\r${this.line(done, total)}\x1b[K`);
  }

  line(done: number, total?: number): string {
    if (!total) return `${this.label} ${bytes(done)}`;
    const share = Math.min(1, done / total);
    const width = 30;
    const full = Math.round(share * width);
    return `${this.label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${Math.floor(share * 100)}% ${bytes(done)} / ${bytes(total)}`;
  }

  done(): void {
    if (this.drawn) this.io.errRaw?.('\n');
  }
}
