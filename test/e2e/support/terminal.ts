import WebSocket from 'ws';

// busybox ash asks for the cursor position (ESC [6n) right after printing its prompt. A kernel message
// (`[   12.345678] …`) printed on the serial console may follow a prompt on its line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching the terminal's escape sequence is the point
const PROMPT = /[$#] (\x1b\[6n)?(?:\r?$|\[ *\d+\.\d+\])/m;
const LOGIN = /login: ?(?:\r?$|\[ *\d+\.\d+\])/m;

/** A terminal over the shell WebSocket: collects output, types input, waits for text to appear. */
export class Terminal {
  private out = '';
  readonly control: Record<string, unknown>[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.out += data.toString();
      else this.control.push(JSON.parse(data.toString()) as Record<string, unknown>);
    });
  }

  /** Resolves once the console said hello (scrollback follows), so what is typed next reaches the guest. */
  static open(url: string, headers: Record<string, string>): Promise<Terminal> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => {
        const t = new Terminal(ws);
        const wait = setInterval(() => {
          if (t.control.some((c) => c.type === 'hello')) {
            clearInterval(wait);
            resolve(t);
          }
        }, 20);
      });
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  get text(): string {
    return this.out;
  }

  type(s: string): void {
    this.ws.send(Buffer.from(s), { binary: true });
  }

  /** Waits until `pattern` appears in output produced after `from` (an offset into text). */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.out.slice(from));
      if (m) return m;
      if (Date.now() > deadline)
        throw new Error(`terminal: no ${pattern} within ${timeoutMs} ms; last output:\n${this.out.slice(-600)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Logs in at the getty prompt and waits for a shell prompt. The serial line outlives WebSocket
   * connections, so a shell may already be open there: then there is nothing to do.
   */
  async login(username: string, password: string, timeoutMs = 60_000): Promise<void> {
    let mark = this.out.length;
    this.type('\n');
    const m = await this.waitFor(new RegExp(`${LOGIN.source}|${PROMPT.source}`, 'm'), timeoutMs, mark);
    if (!m[0].includes('login')) return;
    mark = this.out.length;
    this.type(`${username}\n`);
    await this.waitFor(/Password:/, timeoutMs, mark);
    mark = this.out.length;
    this.type(`${password}\n`);
    await this.waitFor(PROMPT, timeoutMs, mark);
  }

  /** Runs a command and returns what it printed between two markers. */
  async run(cmd: string, timeoutMs = 30_000): Promise<string> {
    const tag = Math.random().toString(36).slice(2, 8);
    const mark = this.out.length;
    this.type(`echo BEGIN-${tag}; ${cmd}; echo END-${tag}\n`);
    const m = await this.waitFor(new RegExp(`\\nBEGIN-${tag}\\r?\\n([\\s\\S]*?)END-${tag}`), timeoutMs, mark);
    return m[1]!.replace(/\r/g, '');
  }

  close(): void {
    this.ws.close();
  }
}
