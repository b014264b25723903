/**
 * The command watchdog of one monitor: notices when QEMU has not answered a
 * command for `thresholdMs` (a QEMU stopped with SIGSTOP, a main loop stuck
 * in I/O) and says so.
 *
 *   answering ──oldest pending ≥ threshold──▶ stalled: warn (monitor, command, how long)
 *       ▲                                      │  warn again at 2×, 4×, 8× ... that age (at most every MAX_REPEAT_MS)
 *       └──────the stalled command settles─────┘  info: answering again (or: ended without an answer)
 *
 * It sees the commands of the monitor's QMP, HMP and read-only clients as
 * they go upstream and settle (a SessionObserver), and the monitor commands
 * of libvirt clients and NATS requesters (a CallWatch); the oldest of them is
 * the first entry of an insertion-ordered map keyed by the performance.now()
 * at which it was sent. A timer looks at its age every CHECK_INTERVAL_MS
 * (less for thresholds under four of them) while any command is pending:
 * it is set when a command goes upstream with none pending and cleared by
 * the first check that finds none, so an idle monitor, and a serve of many
 * idle monitors, holds no timer and wakes for none. The warning is logged
 * on a stall's start and then with backoff, never per check.
 */
import { performance } from 'node:perf_hooks';
import type { AuditSink } from '../audit-sink.js';
import type { CallWatch } from '../call-watch.js';
import type { Logger } from '../log.js';
import type { CommandOutcome, MonitorObserver, SessionObserver } from './observer.js';

/** Default of `serve --watchdog` / `watchdogSeconds`. */
export const DEFAULT_WATCHDOG_SECONDS = 10;
/** How often the oldest pending command's age is looked at (at most). */
export const CHECK_INTERVAL_MS = 1000;
/** A stall still going on is told again at most this far apart. */
export const MAX_REPEAT_MS = 5 * 60_000;

/** The oldest command QEMU has not answered yet. */
export interface PendingCommand {
  command: string;
  ageMs: number;
}

/** What the watchdog knows now (status, metrics). */
export interface WatchdogSnapshot {
  /** The threshold, in seconds. */
  thresholdSeconds: number;
  oldestPending: PendingCommand | undefined;
  /** True from a stall's warning until its command settles. */
  stalled: boolean;
  /** Stalls since start. */
  stalls: number;
}

export interface CommandWatchdogOptions {
  thresholdMs: number;
  logger: Logger;
  /** The monitor's name as currently known. */
  monitorName(): string;
}

/** Commands sent within one clock tick share an entry. */
interface PendingEntry {
  command: string;
  count: number;
}

const NO_PENDING: ReadonlyMap<number, PendingEntry> = new Map();

/**
 * The observer of the monitor and of its sessions, and the watch of its
 * libvirt calls and NATS requests: one object, as all of them report to it
 * alike.
 */
export class CommandWatchdog implements MonitorObserver, SessionObserver, CallWatch {
  /** Commands upstream, oldest first, by the time they were sent; `count` for two sent within one clock tick. */
  private pendingByTime: Map<number, PendingEntry> | undefined;
  private stall: { startedAt: number; command: string; nextWarningAgeMs: number } | undefined;
  private stallCount = 0;
  /** Set while commands are pending (see above). */
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly checkIntervalMs: number;

  constructor(private readonly options: CommandWatchdogOptions) {
    this.checkIntervalMs = Math.max(10, Math.min(CHECK_INTERVAL_MS, Math.floor(options.thresholdMs / 4)));
  }

  session(): SessionObserver {
    return this;
  }

  commandSent(command: string, startedAt: number): void {
    this.sent(command, startedAt);
  }

  commandSettled(_command: string, outcome: CommandOutcome, startedAt: number | undefined): void {
    if (startedAt !== undefined) this.settled(startedAt, outcome);
  }

  slowConsumerDisconnected(): void {}

  policyDisconnected(): void {}

  get calls(): CallWatch {
    return this;
  }

  callSent(command: string): (answered: boolean) => void {
    const startedAt = performance.now();
    this.sent(command, startedAt);
    return (answered) => this.settled(startedAt, answered ? 'ok' : 'lost');
  }

  event(): void {}

  linkUp(): void {}

  auditingLibvirt(audit: AuditSink): AuditSink {
    return audit;
  }

  snapshot(): WatchdogSnapshot {
    return {
      thresholdSeconds: this.options.thresholdMs / 1000,
      oldestPending: this.oldest(performance.now()),
      stalled: this.stall !== undefined,
      stalls: this.stallCount,
    };
  }

  stop(): void {
    this.stopped = true;
    this.stopChecking();
  }

  /** The commands pending, oldest first (made with the first: a serve of many idle monitors holds no map for each). */
  private get pending(): ReadonlyMap<number, PendingEntry> {
    return this.pendingByTime ?? NO_PENDING;
  }

  private sent(command: string, startedAt: number): void {
    const pending = (this.pendingByTime ??= new Map());
    const entry = pending.get(startedAt);
    if (entry === undefined) pending.set(startedAt, { command, count: 1 });
    else entry.count++;
    if (this.timer === undefined && !this.stopped) this.timer = setInterval(() => this.check(), this.checkIntervalMs).unref();
  }

  private stopChecking(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private settled(startedAt: number, outcome: CommandOutcome): void {
    const entry = this.pending.get(startedAt);
    if (entry === undefined) return;
    if (--entry.count === 0) this.pendingByTime?.delete(startedAt);
    const stall = this.stall;
    if (stall === undefined || startedAt !== stall.startedAt || this.pending.has(startedAt)) return;
    this.stall = undefined;
    const fields = { monitor: this.options.monitorName(), command: stall.command, stalledForMs: Math.round(performance.now() - stall.startedAt) };
    if (outcome === 'ok' || outcome === 'error') this.options.logger.info(fields, `QEMU answers again: ${stall.command} was answered after ${seconds(fields.stalledForMs)}`);
    else this.options.logger.info({ ...fields, outcome }, `stall over: ${stall.command} ended without an answer (${outcome})`);
  }

  private oldest(now: number): PendingCommand | undefined {
    for (const [startedAt, { command }] of this.pending) return { command, ageMs: now - startedAt };
    return undefined;
  }

  private check(): void {
    const now = performance.now();
    const first = this.pending.entries().next();
    if (first.done === true) return this.stopChecking();
    const [startedAt, { command }] = first.value;
    const ageMs = now - startedAt;
    const { thresholdMs } = this.options;
    if (this.stall === undefined) {
      if (ageMs < thresholdMs) return;
      this.stallCount++;
      this.stall = { startedAt, command, nextWarningAgeMs: Math.min(ageMs * 2, ageMs + MAX_REPEAT_MS) };
      this.warn(command, ageMs, false);
      return;
    }
    if (ageMs < this.stall.nextWarningAgeMs) return;
    this.stall.nextWarningAgeMs = Math.min(ageMs * 2, ageMs + MAX_REPEAT_MS);
    this.warn(command, ageMs, true);
  }

  private warn(command: string, ageMs: number, again: boolean): void {
    const rounded = Math.round(ageMs);
    this.options.logger.warn(
      { monitor: this.options.monitorName(), command, pendingForMs: rounded, pending: this.pendingCount(), thresholdMs: this.options.thresholdMs },
      `QEMU ${again ? 'still has' : 'has'} not answered ${command} for ${seconds(rounded)} (is it stopped or stuck?)`,
    );
  }

  private pendingCount(): number {
    let count = 0;
    for (const { count: entries } of this.pending.values()) count += entries;
    return count;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
