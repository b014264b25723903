/**
 * One request's life, whatever the protocol: it settles exactly once, by
 * reply, error, timeout, abort or connection loss (docs/design.md invariant 2).
 * A request settled early (timeout, abort) keeps its place on the wire so that
 * its late reply is recognised and dropped instead of being given to the next
 * caller.
 */
import { AbortError, TimeoutError } from './errors.js';

/** Who asked: recorded on every request for logs and the proxy's audit. */
export type RequestOrigin =
  | { kind: 'driver' }
  | { kind: 'passthrough' }
  | { kind: 'downstream'; session: number; endpoint?: string };

export const DRIVER_ORIGIN: RequestOrigin = { kind: 'driver' };

export interface RequestOptions {
  /** Settle with TimeoutError after this many milliseconds. */
  timeoutMs?: number;
  /** Settle with AbortError when this signal fires. */
  signal?: AbortSignal;
  /** Who is asking; defaults to the driver (the library's own caller). */
  origin?: RequestOrigin;
}

/**
 * The requests waiting on each signal. A signal gets one 'abort' listener
 * however many requests share it: a proxy session passes one signal with
 * every command, and EventTarget listeners cost microseconds each to add
 * and remove, far more than a Set entry.
 */
const requestsBySignal = new WeakMap<AbortSignal, Set<PendingRequest<unknown>>>();

function watchSignal(signal: AbortSignal, request: PendingRequest<unknown>): void {
  let requests = requestsBySignal.get(signal);
  if (requests === undefined) {
    const watched = new Set<PendingRequest<unknown>>();
    requests = watched;
    requestsBySignal.set(signal, watched);
    signal.addEventListener(
      'abort',
      () => {
        requestsBySignal.delete(signal);
        for (const waiting of [...watched]) waiting.abort();
      },
      { once: true },
    );
  }
  requests.add(request);
}

/** How a request ended, for callers that take the outcome as a callback. */
export type RequestOutcome<Reply> = { ok: true; reply: Reply } | { ok: false; error: Error };

export class PendingRequest<Reply> {
  // Assigned in the constructor, not defined as class fields (BENCHMARKS.md, "The client's cost per command").
  declare readonly command: string;
  declare readonly origin: RequestOrigin;
  private declare readonly onSettled: ((outcome: RequestOutcome<Reply>) => void) | undefined;
  private declare outcome: RequestOutcome<Reply> | undefined;
  private declare promiseValue: Promise<Reply> | undefined;
  private declare resolvePromise: ((reply: Reply) => void) | undefined;
  private declare rejectPromise: ((error: Error) => void) | undefined;
  private declare timer: NodeJS.Timeout | undefined;
  private declare readonly signal: AbortSignal | undefined;

  /**
   * `onSettled`, when given, is called synchronously with the outcome (a
   * proxy relays replies in wire order with events that way, without a
   * promise turn per reply); the promise is then only made if asked for.
   */
  constructor(
    command: string,
    origin: RequestOrigin,
    options: RequestOptions,
    defaultTimeoutMs?: number,
    onSettled?: (outcome: RequestOutcome<Reply>) => void,
  ) {
    this.command = command;
    this.origin = origin;
    this.onSettled = onSettled;
    this.outcome = undefined;
    this.promiseValue = undefined;
    this.resolvePromise = undefined;
    this.rejectPromise = undefined;
    this.timer = undefined;
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => {
        this.reject(new TimeoutError(`${command}: no reply within ${timeoutMs} ms`, timeoutMs, command));
      }, timeoutMs);
    }
    this.signal = options.signal;
    if (this.signal) {
      if (this.signal.aborted) queueMicrotask(() => this.abort());
      else watchSignal(this.signal, this as PendingRequest<unknown>);
    }
  }

  /** True once resolved or rejected; a settled request ignores later outcomes. */
  get settled(): boolean {
    return this.outcome !== undefined;
  }

  /** Settles with the reply, or rejects with the error. */
  get promise(): Promise<Reply> {
    if (this.promiseValue === undefined) {
      const outcome = this.outcome;
      if (outcome === undefined) {
        this.promiseValue = new Promise<Reply>((resolve, reject) => {
          this.resolvePromise = resolve;
          this.rejectPromise = reject;
        });
      } else {
        this.promiseValue = outcome.ok ? Promise.resolve(outcome.reply) : Promise.reject(outcome.error);
      }
    }
    return this.promiseValue;
  }

  /** Settles with AbortError (the signal fired). */
  abort(): boolean {
    return this.reject(new AbortError(this.command, { cause: this.signal?.reason }));
  }

  resolve(reply: Reply): boolean {
    return this.settle({ ok: true, reply });
  }

  reject(error: Error): boolean {
    return this.settle({ ok: false, error });
  }

  private settle(outcome: RequestOutcome<Reply>): boolean {
    if (this.outcome !== undefined) return false;
    this.outcome = outcome;
    if (this.timer) clearTimeout(this.timer);
    if (this.signal) requestsBySignal.get(this.signal)?.delete(this as PendingRequest<unknown>);
    if (outcome.ok) this.resolvePromise?.(outcome.reply);
    else this.rejectPromise?.(outcome.error);
    this.onSettled?.(outcome);
    return true;
  }
}
