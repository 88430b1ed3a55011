import type { WebhookPayload } from '@nqvm/api';
import type { FastifyBaseLogger } from 'fastify';
import { LeasePoller } from '../../domain/lease-poller.ts';
import { toEvent } from '../events/events.service.ts';
import type { AttemptResult, DeliveryRow, DeliveryStore } from './webhooks.repository.ts';
import { SIGNATURE_HEADER, sign } from './webhooks.signature.ts';

export interface DelivererOptions {
  /** Attempts before a delivery is given up as failed. */
  maxAttempts: number;
  /** The wait after the first failed attempt; doubled after each further one, up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
  /** How long a receiver may take to answer. */
  timeoutMs: number;
  concurrency?: number;
}

export interface DelivererDeps {
  store: DeliveryStore;
  /** POSTs to a URL through the URL guard (no internal ranges); resolves with the status. */
  post(url: string, body: string, headers: Record<string, string>, signal: AbortSignal): Promise<number>;
  openSecret(sealed: string): string;
  /** This process's name in leases. */
  owner: string;
  log: Pick<FastifyBaseLogger, 'warn' | 'error'>;
  now?: () => Date;
}

/** The wait before attempt `attempts + 1`, after `attempts` failed ones. */
export function backoffAfter(attempts: number, o: Pick<DelivererOptions, 'backoffMs' | 'maxBackoffMs'>): number {
  return Math.min(o.maxBackoffMs, o.backoffMs * 2 ** Math.max(0, attempts - 1));
}

/**
 * Sends webhook deliveries claimed by lease from the deliveries table: every manager runs one, so deliveries survive
 * any manager's restart (a claim left by a dead one is taken again once its lease runs out). A 2xx answer settles a
 * delivery; anything else is retried with doubling backoff until the attempts run out.
 */
export class WebhookDeliverer {
  private readonly poller: LeasePoller<DeliveryRow>;

  constructor(
    private readonly d: DelivererDeps,
    private readonly o: DelivererOptions,
  ) {
    this.poller = new LeasePoller({
      claim: (free) => {
        const leaseUntil = new Date(this.now().getTime() + this.o.timeoutMs * 2 + 30_000);
        return this.d.store.claim(this.d.owner, leaseUntil, free);
      },
      run: (row) => this.attempt(row),
      key: (row) => row.id,
      concurrency: this.o.concurrency ?? 8,
      messages: { claim: 'claiming webhook deliveries failed', run: 'webhook delivery attempt failed' },
      log: this.d.log,
    });
  }

  private now(): Date {
    return (this.d.now ?? (() => new Date()))();
  }

  start(intervalMs = 1000): void {
    this.poller.start(intervalMs);
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  /** Waits until this process sends nothing. */
  idle(): Promise<void> {
    return this.poller.idle();
  }

  /** Claims soon (events were written). */
  kick(): void {
    this.poller.kick();
  }

  /** Claims what is due and sends it; settles when those attempts have ended (tests await it). */
  async tick(): Promise<void> {
    await this.poller.claimAndRun();
    await this.idle();
  }

  private async attempt(row: DeliveryRow): Promise<void> {
    const target = await this.d.store.target(row);
    if (!target) return; // its webhook was deleted meanwhile: the row went with it
    const { webhook, event } = target;
    const payload: WebhookPayload = { delivery_id: row.id, webhook_id: webhook.id, event: toEvent(event) };
    const body = JSON.stringify(payload);
    const t = Math.floor(this.now().getTime() / 1000);
    const headers = {
      'content-type': 'application/json',
      [SIGNATURE_HEADER]: sign(this.d.openSecret(webhook.secretEnc), t, body),
      'nqvm-webhook-id': webhook.id,
      'nqvm-delivery-id': row.id,
      'nqvm-event-type': row.eventType,
      'nqvm-delivery-attempt': String(row.attempts),
    };
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
    let status: number | null = null;
    let error = '';
    try {
      status = await this.d.post(webhook.url, body, headers, abort.signal);
      if (status < 200 || status > 299) error = `the receiver answered ${status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(timer);
    }
    const result: AttemptResult = !error
      ? { state: 'succeeded', responseCode: status ?? 0 }
      : row.attempts >= this.o.maxAttempts
        ? { state: 'failed', responseCode: status, error }
        : {
            state: 'pending',
            responseCode: status,
            error,
            nextAttemptAt: new Date(this.now().getTime() + backoffAfter(row.attempts, this.o)),
          };
    if (!(await this.d.store.settle(row.id, this.d.owner, result)))
      this.d.log.warn({ delivery_id: row.id }, 'webhook delivery was taken over before its attempt was recorded');
    else if (result.state === 'pending') {
      // The retry is due before the next poll perhaps: look again then.
      const wait = setTimeout(() => this.kick(), result.nextAttemptAt.getTime() - this.now().getTime() + 5);
      wait.unref();
    }
  }
}
