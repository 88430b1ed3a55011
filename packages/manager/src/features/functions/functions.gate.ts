import { DomainError } from '../../domain/errors.ts';

export class FunctionBusy extends DomainError {
  constructor(name: string, running: number, queued: number) {
    super(
      429,
      'function_queue_full',
      `function ${name} runs ${running} invocations and ${queued} wait: its queue is full`,
      undefined,
      { retry_after_s: 1 },
    );
  }
}

/**
 * Per function: at most `limit` runs at once, at most `queueLimit` waiting for a slot, the next one refused. Slots are
 * handed over in arrival order.
 */
export class FunctionGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly name: string,
    public limit: number,
    public queueLimit: number,
  ) {}

  get idle(): boolean {
    return this.running === 0 && this.waiting.length === 0;
  }

  /** Takes a place (a slot or one in the queue) now, or throws FunctionBusy; the slot itself comes with `wait`. */
  admit(): { wait: Promise<void>; release: () => void } {
    if (this.running >= this.limit && this.waiting.length >= this.queueLimit)
      throw new FunctionBusy(this.name, this.running, this.waiting.length);
    let wait: Promise<void>;
    if (this.running < this.limit) {
      this.running++;
      wait = Promise.resolve();
    } else wait = new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return {
      wait,
      release: () => {
        if (released) return;
        released = true;
        const next = this.waiting.shift();
        if (next) next();
        else this.running--;
      },
    };
  }
}
