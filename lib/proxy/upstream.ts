/**
 * The one connection to the upstream monitor (docs/design.md invariant 1), kept
 * up for as long as the proxy runs.
 *
 * Each successful connection is a *link*. Downstream sessions are greeted on
 * one link and live and die with it: when it is lost they answer what was
 * pending and close, as QEMU's own clients would see the monitor go away.
 * The upstream then reconnects with exponential backoff capped at
 * `maxBackoffMs` (about a second), and clients that arrived in between are
 * greeted on the new link.
 *
 *   connecting ──connected──▶ up ──lost──▶ connecting (after backoff)
 *        │                     │
 *        └──────stop()─────────┴──────────▶ stopped
 *
 * Nothing here reads from the monitor: QmpMonitor always drains its socket,
 * listeners or not (invariant 4).
 */
import type { CloseInfo, Monitor, QmpRelay } from '../contract.js';
import { connect } from '../monitor.js';
import { parseTarget } from '../transport.js';
import type { Logger } from '../log.js';
import { StateMachine, type Transitions } from '../state.js';
import { schemaChecksFor, type SchemaChecks } from '../qapi/validate.js';

export const DEFAULT_INITIAL_BACKOFF_MS = 50;
export const DEFAULT_MAX_BACKOFF_MS = 1000;
/** A QEMU whose socket is held by another client greets nobody (docs/monitor-facts.md §2): give up on this attempt after this long. */
export const DEFAULT_UPSTREAM_GREETING_TIMEOUT_MS = 5000;

export type UpstreamState = 'connecting' | 'up' | 'stopped';

const NEXT_STATES: Transitions<UpstreamState> = {
  connecting: ['up', 'stopped'],
  up: ['connecting', 'stopped'],
  stopped: [],
};

/** One connection to the upstream monitor. */
export interface UpstreamLink {
  /** Counts links from 1; a session greeted on one link never outlives it. */
  readonly generation: number;
  readonly monitor: Monitor;
  /** The monitor's QMP relay path; null for a text-only (HMP) upstream. */
  readonly qmp: QmpRelay | null;
  /** Settles when this link has ended. */
  readonly closed: Promise<CloseInfo>;
  /** Checks built from this QEMU's own schema; present exactly when the upstream was asked to check arguments. */
  readonly argumentChecks?: SchemaChecks;
  /** Commands may carry file descriptors on this link (a unix socket opened for it). */
  readonly carriesFds?: boolean;
}

export interface UpstreamOptions {
  /** The monitor socket: PATH, unix:PATH or tcp:HOST:PORT. */
  target: string;
  /** Names the monitor in logs. */
  label: string;
  logger: Logger;
  greetingTimeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Largest message accepted from QEMU. */
  maxMessageBytes?: number;
  /** Ask each new QMP link for `query-qmp-schema` before it is reported up, for checking clients' arguments. */
  checkArguments?: boolean;
  /** Open the link so that commands can carry file descriptors (only a unix socket can; ignored for TCP). */
  fdPassing?: boolean;
}

export class Upstream {
  private readonly machine: StateMachine<UpstreamState>;
  private link: UpstreamLink | undefined;
  /** A connection made but not yet reported up (its schema is being read): stop() closes it too. */
  private preparing: Monitor | undefined;
  private generation = 0;
  private readonly linkListeners = new Set<(link: UpstreamLink) => void>();
  private readonly waiters: Array<(link: UpstreamLink | null) => void> = [];
  private wake: (() => void) | undefined;
  private held = false;
  private loop: Promise<void> | undefined;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: UpstreamOptions) {
    this.machine = new StateMachine<UpstreamState>('connecting', NEXT_STATES, options.logger, { monitor: options.label }, 'upstream state');
    this.initialBackoffMs = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    this.maxBackoffMs = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  }

  get state(): UpstreamState {
    return this.machine.current;
  }

  /** When the state last changed (ms since the epoch). */
  get stateSince(): number {
    return this.machine.since;
  }

  /** Links made so far: every one after the first is a reconnect. */
  get linkCount(): number {
    return this.generation;
  }

  /** The link in use, if the upstream is up. */
  get current(): UpstreamLink | undefined {
    return this.link;
  }

  /** Starts connecting (and reconnecting) in the background. Idempotent. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves with the current link, or the next one; with null once stopped. */
  whenUp(): Promise<UpstreamLink | null> {
    if (this.link) return Promise.resolve(this.link);
    if (this.isStopped()) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Calls `listener` with every new link; returns the unsubscribe function. */
  onLink(listener: (link: UpstreamLink) => void): () => void {
    this.linkListeners.add(listener);
    return () => this.linkListeners.delete(listener);
  }

  /** Skips the rest of the current backoff wait (e.g. after QEMU was started again). */
  retryNow(): void {
    this.wake?.();
  }

  /**
   * Makes no connection attempt until release(). For a QEMU being started
   * again: it serves one client at a time, so a reconnect racing the
   * launcher's readiness probe would leave the probe ungreeted.
   */
  hold(): void {
    this.held = true;
  }

  /** Ends hold() and connects at once. */
  release(): void {
    this.held = false;
    this.retryNow();
  }

  /** Closes the link and stops reconnecting; pending requests reject with ConnectionClosedError. */
  async stop(): Promise<void> {
    if (this.isStopped()) return;
    this.machine.transition('stopped', 'stop()');
    this.wake?.();
    for (const waiter of this.waiters.splice(0)) waiter(null);
    await (this.link?.monitor ?? this.preparing)?.close();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { logger, label, target } = this.options;
    // Asked only of a unix socket: over TCP the library refuses fdPassing outright.
    const fdPassing = this.options.fdPassing === true && isUnixTarget(target);
    let backoffMs = this.initialBackoffMs;
    let failures = 0;
    while (!this.isStopped()) {
      while (this.held && !this.isStopped()) await this.pause(this.maxBackoffMs);
      if (this.isStopped()) break;
      let monitor: Monitor;
      try {
        monitor = await connect(target, {
          logger,
          greetingTimeoutMs: this.options.greetingTimeoutMs ?? DEFAULT_UPSTREAM_GREETING_TIMEOUT_MS,
          maxMessageBytes: this.options.maxMessageBytes,
          fdPassing,
        });
      } catch (error) {
        failures++;
        // Said at attempts 1, 2, 4, 8, ...: a wrong path keeps being reported, ever less often, without flooding the log.
        const fields = { monitor: label, upstream: target, err: (error as Error).message, attempt: failures, retryMs: backoffMs };
        if ((failures & (failures - 1)) === 0) logger.warn(fields, failures === 1 ? 'cannot connect to the upstream monitor; retrying' : 'still cannot connect to the upstream monitor; retrying');
        else logger.debug(fields, 'upstream connect failed');
        await this.pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.maxBackoffMs);
        continue;
      }
      let argumentChecks: SchemaChecks | undefined;
      this.preparing = monitor;
      try {
        argumentChecks = await this.argumentChecksOf(monitor);
      } catch (error) {
        if (this.isStopped()) break;
        // No link is reported up without its checks: a client's command is never let through unchecked.
        failures++;
        logger.warn({ monitor: label, upstream: target, err: (error as Error).message, retryMs: backoffMs }, "cannot read the upstream's schema for argument checks; reconnecting");
        await monitor.close();
        await this.pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.maxBackoffMs);
        continue;
      } finally {
        this.preparing = undefined;
      }
      if (this.isStopped()) {
        await monitor.close();
        break;
      }
      failures = 0;
      backoffMs = this.initialBackoffMs;
      const link: UpstreamLink = {
        generation: ++this.generation,
        monitor,
        qmp: monitor.relay,
        closed: monitor.closed,
        argumentChecks,
        carriesFds: monitor.fdPassing,
      };
      this.link = link;
      this.machine.transition('up', `link ${link.generation} connected`);
        logger.info({ monitor: label, upstream: target, protocol: monitor.protocol, link: link.generation }, 'upstream monitor connected');
      for (const listener of this.linkListeners) listener(link);
      for (const waiter of this.waiters.splice(0)) waiter(link);
      const info = await monitor.closed;
      this.link = undefined;
      if (this.isStopped()) break;
      this.machine.transition('connecting', info.expected ? 'closed' : 'connection lost');
        const fields = { monitor: label, upstream: target, link: link.generation, err: info.cause?.message };
      if (info.expected) logger.info(fields, 'upstream monitor closed; reconnecting');
      else logger.warn(fields, 'upstream monitor connection lost; reconnecting');
      await this.pause(backoffMs);
    }
  }

  /** The schema's checks, asked for once per link and before any client is greeted on it, so that nothing waits for them later. */
  private async argumentChecksOf(monitor: Monitor): Promise<SchemaChecks | undefined> {
    if (!this.options.checkArguments || monitor.relay === null) return undefined;
    return schemaChecksFor(await monitor.execute('query-qmp-schema'));
  }

  /** Read through a call: stop() changes the state while run() awaits. */
  private isStopped(): boolean {
    return this.machine.current === 'stopped';
  }

  /** Waits `ms`, or less if stop() or retryNow() wakes it. */
  private pause(ms: number): Promise<void> {
    if (this.isStopped()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}

/** A target that names a unix socket (the only kind that carries file descriptors); false for TCP and for what cannot be parsed. */
function isUnixTarget(target: string): boolean {
  try {
    return 'path' in parseTarget(target);
  } catch {
    return false;
  }
}
