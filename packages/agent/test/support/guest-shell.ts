import { createConnection, type Socket } from 'node:net';

/**
 * A root shell on a guest's serial console: connects to QEMU's console socket (it serves one client at a
 * time), logs in at `login:` and runs commands, each ended by a marker carrying the exit code.
 */
export class GuestShell {
  private buf = '';
  private seq = 0;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
    });
  }

  static async login(consoleSocket: string, user: string, password: string, timeoutMs = 120_000): Promise<GuestShell> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(consoleSocket, () => resolve(s));
      s.once('error', reject);
    });
    const sh = new GuestShell(socket);
    const deadline = Date.now() + timeoutMs;
    // Boot and guest agent messages interleave with the prompts, so each step looks only at fresh output.
    for (;;) {
      if (Date.now() > deadline) throw new Error(`no login prompt; console: ${sh.buf.slice(-300)}`);
      sh.buf = '';
      socket.write('\n');
      if (
        await sh
          .waitFor((t) => t.includes('login:'), 3000)
          .then(
            () => true,
            () => false,
          )
      )
        break;
    }
    sh.buf = '';
    socket.write(`${user}\n`);
    await sh.waitFor((t) => t.includes('assword:'), 30_000);
    sh.buf = '';
    socket.write(`${password}\n`);
    await sh.waitFor((t) => /[#$] /.test(t), 30_000);
    await sh.run('stty -echo 2>/dev/null; export PS1="# "');
    return sh;
  }

  private async waitFor(match: (text: string) => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!match(this.buf)) {
      if (Date.now() > deadline) throw new Error(`timed out on the guest console; tail: ${this.buf.slice(-300)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Runs one command line; resolves with its output (without the marker) and exit code. */
  async run(cmd: string, timeoutMs = 60_000): Promise<{ out: string; code: number }> {
    const n = ++this.seq;
    this.buf = '';
    // The marker is assembled by printf, so the echoed command line never matches it.
    this.socket.write(`${cmd}; printf '%s_%s %s\\n' __NQEND ${n} $?\n`);
    const re = new RegExp(`__NQEND_${n} (\\d+)\\r?\\n`);
    await this.waitFor((t) => re.test(t), timeoutMs);
    const m = re.exec(this.buf)!;
    const out = this.buf
      .slice(0, m.index)
      .split(/\r?\n/)
      .filter((l) => !l.includes('__NQEND'))
      .join('\n');
    return { out: out.trim(), code: Number(m[1]) };
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}
