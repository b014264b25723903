/**
 * The events waiting to go to NATS: one queue per VM, sent one at a time in
 * wire order, all bounded together.
 *
 * An event is sent only once the event before it (of the same VM) is
 * through: with JetStream that is its acknowledgement, so the stream holds
 * every VM's events in wire order even when a publish has to be repeated
 * (the repeat of one that had arrived is a duplicate, dropped by its
 * message id). VMs do not wait for each other.
 *
 * While NATS is down, or a publish fails, events stay queued, up to
 * `maxBuffered` over all VMs; past that, new events are dropped and
 * counted. Both are logged once per outage, with the counts when NATS is
 * back. A failed publish is tried again after a backoff, or on reconnection,
 * except one NATS can never take (UnpublishableEventError), which is
 * dropped, counted and logged, so it cannot hold up the VM's later events.
 */
import type { Logger } from '../log.js';
import type { EventMessage } from './event-message.js';

/** A sender's rejection of an event NATS will never take (larger than the server's max_payload): dropped, not retried. */
export class UnpublishableEventError extends Error {}

/** Where events go: resolves once NATS has the message (JetStream: acknowledged), rejects when it did not take it. */
export type EventSender = (message: EventMessage) => Promise<void>;

/** First wait after a failed publish; doubles up to MAX_RETRY_DELAY_MS. */
const FIRST_RETRY_DELAY_MS = 100;
const MAX_RETRY_DELAY_MS = 2000;

/** What the outbox has done, since start. */
export interface OutboxCounts {
  /** Events NATS took. */
  published: number;
  /** Events that arrived while NATS was down (sent later unless dropped). */
  arrivedWhileDown: number;
  /** Events dropped because the buffer was full, or because NATS can never take them. */
  dropped: number;
  /** Publishes that failed (and were tried again). */
  failedPublishes: number;
  /** Events waiting now. */
  buffered: number;
}

export class EventOutbox {
  private readonly queues = new Map<string, EventMessage[]>();
  private readonly draining = new Set<string>();
  private connected = false;
  private closed = false;
  private readonly counts: OutboxCounts = { published: 0, arrivedWhileDown: 0, dropped: 0, failedPublishes: 0, buffered: 0 };
  /** Counts at the start of the current outage, for the summary when it ends. */
  private outage: { arrived: number; dropped: number; since: Date } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = FIRST_RETRY_DELAY_MS;
  private warnedFull = false;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    private readonly send: EventSender,
    private readonly maxBuffered: number,
    private readonly logger: Logger,
  ) {}

  stats(): Readonly<OutboxCounts> {
    return { ...this.counts };
  }

  /** Queues `message` behind the other events of the VM `vmKey`, or drops it when the buffer is full. */
  enqueue(vmKey: string, message: EventMessage): void {
    if (this.closed) return;
    if (!this.connected) {
      this.beginOutage();
      this.counts.arrivedWhileDown++;
    }
    if (this.counts.buffered >= this.maxBuffered) {
      if (!this.warnedFull) {
        this.warnedFull = true;
        this.logger.warn({ maxBufferedEvents: this.maxBuffered }, 'NATS event buffer full: dropping events until NATS takes them again');
      }
      this.counts.dropped++;
      return;
    }
    let queue = this.queues.get(vmKey);
    if (queue === undefined) {
      queue = [];
      this.queues.set(vmKey, queue);
    }
    queue.push(message);
    this.counts.buffered++;
    if (this.connected) void this.drain(vmKey);
  }

  /** The connection went up or down; going up sends what waits. */
  setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    if (!connected) {
      this.beginOutage();
      return;
    }
    this.retryDelayMs = FIRST_RETRY_DELAY_MS;
    this.kick();
  }

  /**
   * Resolves once nothing waits or after `timeoutMs`, then stops: what is
   * still queued is dropped (serve is ending), counted and logged.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.counts.buffered > 0 && this.connected) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.counts.buffered > 0) this.logger.warn({ unpublished: this.counts.buffered }, 'events not published to NATS before shutdown');
  }

  private beginOutage(): void {
    if (this.outage !== undefined) return;
    this.outage = { arrived: this.counts.arrivedWhileDown, dropped: this.counts.dropped, since: new Date() };
    this.logger.warn({ maxBufferedEvents: this.maxBuffered }, 'NATS is not taking events: buffering them');
  }

  private endOutageIfIdle(): void {
    if (this.outage === undefined || !this.connected || this.counts.buffered > 0) return;
    const { arrived, dropped, since } = this.outage;
    this.outage = undefined;
    this.logger.info(
      { arrivedWhileDown: this.counts.arrivedWhileDown - arrived, dropped: this.counts.dropped - dropped, since: since.toISOString() },
      'NATS takes events again: buffered events published',
    );
  }

  private kick(): void {
    for (const vmKey of this.queues.keys()) void this.drain(vmKey);
  }

  private async drain(vmKey: string): Promise<void> {
    if (this.draining.has(vmKey)) return;
    this.draining.add(vmKey);
    try {
      const queue = this.queues.get(vmKey)!;
      while (queue.length > 0 && this.connected && !this.closed) {
        try {
          await this.send(queue[0]!);
        } catch (error) {
          if (error instanceof UnpublishableEventError) {
            this.logger.warn({ subject: queue[0]!.subject, err: error.message }, 'event dropped: NATS cannot take it');
            queue.shift();
            this.counts.buffered--;
            this.counts.dropped++;
            continue;
          }
          this.counts.failedPublishes++;
          this.logger.debug({ err: (error as Error).message, subject: queue[0]!.subject }, 'NATS publish failed; will try again');
          this.beginOutage();
          this.scheduleRetry();
          return;
        }
        queue.shift();
        this.counts.buffered--;
        this.counts.published++;
        this.retryDelayMs = FIRST_RETRY_DELAY_MS;
      }
      if (queue.length === 0) this.queues.delete(vmKey);
    } finally {
      this.draining.delete(vmKey);
    }
    if (this.counts.buffered === 0) {
      this.warnedFull = false;
      this.endOutageIfIdle();
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    const delayMs = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, MAX_RETRY_DELAY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.connected) this.kick();
    }, delayMs);
    this.retryTimer.unref();
  }
}
