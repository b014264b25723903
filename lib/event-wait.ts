/**
 * Waiting for QEMU's events: one (`waitForEvent`) or a stream of them
 * (`listenForEvents`). Both subscribe when called, so call them before the
 * command that causes the event; an event that arrives in the same read as
 * that command's reply is then not missed.
 *
 *   const deleted = waitForEvent(monitor, 'DEVICE_DELETED', { match: (e) => e.data.device === 'kbd0', timeoutMs: 5000 });
 *   await monitor.execute('device_del', { id: 'kbd0' });
 *   await deleted;
 */
import type { Observable } from 'rxjs';
import { AbortError, ConnectionClosedError, QmpxError, TimeoutError } from './errors.js';
import type { QmpEvent } from './qmp/wire.js';
import type { EventData } from './qapi/typed.js';

/** An event whose `data` is typed by its name (from the shipped event map). */
export type TypedEvent<E extends string> = Omit<QmpEvent, 'event' | 'data'> & { event: E } & (undefined extends EventData<E>
    ? { data?: EventData<E> }
    : // eslint-disable-next-line @typescript-eslint/no-empty-object-type
      {} extends EventData<E>
      ? { data?: EventData<E> }
      : { data: EventData<E> });

/** What waiting needs of a monitor: its event stream. */
export interface EventSource {
  readonly events$: Observable<QmpEvent>;
}

export interface WaitForEventOptions<E extends string> {
  /** Only an event for which this returns true settles the wait. */
  match?: (event: TypedEvent<E>) => boolean;
  /** Reject with TimeoutError after this many ms. Default: wait until the connection closes. */
  timeoutMs?: number;
  /** Reject with AbortError when this fires. */
  signal?: AbortSignal;
}

/**
 * Resolves with the first event called `name` that `match` accepts.
 * Rejects with TimeoutError, AbortError, or ConnectionClosedError when the
 * connection ends first.
 */
export function waitForEvent<E extends string>(monitor: EventSource, name: E, options: WaitForEventOptions<E> = {}): Promise<TypedEvent<E>> {
  const { match, timeoutMs, signal } = options;
  return new Promise<TypedEvent<E>>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => finish(() => reject(new AbortError(`waiting for ${name}`, { cause: signal?.reason })));
    const subscription = monitor.events$.subscribe({
      next: (event) => {
        if (event.event !== name) return;
        const typed = typedEvent<E>(event);
        let matched: boolean;
        try {
          matched = match === undefined || match(typed);
        } catch (error) {
          finish(() => reject(error));
          return;
        }
        if (matched) finish(() => resolve(typed));
      },
      complete: () => finish(() => reject(new ConnectionClosedError(`the monitor connection closed while waiting for ${name}`))),
    });
    function finish(settle: () => void): void {
      subscription.unsubscribe();
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    }
    if (subscription.closed) return; // settled during subscribe (the stream had already completed)
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => finish(() => reject(new TimeoutError(`no ${name} event within ${timeoutMs} ms`, timeoutMs, name))), timeoutMs);
    }
  });
}

/**
 * The event as its name's type in the event map. The map is generated
 * from QEMU's schema, which describes what QEMU sends under that name; it
 * is not checked again here.
 */
function typedEvent<E extends string>(event: QmpEvent): TypedEvent<E> {
  return event as unknown as TypedEvent<E>;
}

/** The listener's queue filled up: the reader fell behind; the events that did not fit are lost. */
export class EventQueueOverflowError extends QmpxError {
  override readonly code = 'EVENT_QUEUE_OVERFLOW';

  constructor(
    readonly maxQueued: number,
    /** How many events arrived after the queue was full. */
    readonly dropped: number,
  ) {
    super(`event listener: more than ${maxQueued} events waited to be read; ${dropped} were dropped and the listener stopped`);
  }
}

export interface ListenOptions {
  /** Events waiting to be read before the listener overflows. Default 1000. */
  maxQueued?: number;
  /** Ends the iteration (without an error) when it fires. */
  signal?: AbortSignal;
}

export const DEFAULT_MAX_QUEUED_EVENTS = 1000;

/**
 * An async iterable over the events named in `names` (every event when
 * empty), from the moment of the call. Events are queued until read, at
 * most `maxQueued`: past that the listener stops, and once the queued
 * events are read the iteration throws EventQueueOverflowError. It ends
 * when the connection closes, `signal` fires or `return()` is called
 * (a `break` out of `for await`).
 */
export function listenForEvents(monitor: EventSource, names: readonly string[] = [], options: ListenOptions = {}): AsyncIterableIterator<QmpEvent> {
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED_EVENTS;
  const wanted = new Set(names);
  const queue: QmpEvent[] = [];
  let head = 0;
  let ended = false;
  let failure: Error | undefined;
  let dropped = 0;
  let wake: (() => void) | undefined;
  const subscription = monitor.events$.subscribe({
    next: (event) => {
      if (ended || (wanted.size > 0 && !wanted.has(event.event))) return;
      if (queue.length - head >= maxQueued) {
        dropped++;
        failure = new EventQueueOverflowError(maxQueued, dropped);
        return;
      }
      queue.push(event);
      wake?.();
    },
    complete: () => stop(),
  });
  const onAbort = (): void => stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stop();
  function stop(): void {
    ended = true;
    subscription.unsubscribe();
    options.signal?.removeEventListener('abort', onAbort);
    wake?.();
  }
  const iterator: AsyncIterableIterator<QmpEvent> = {
    async next(): Promise<IteratorResult<QmpEvent>> {
      for (;;) {
        if (head < queue.length) {
          const event = queue[head++]!;
          if (head > 1024 && head * 2 > queue.length) {
            queue.splice(0, head);
            head = 0;
          }
          return { value: event, done: false };
        }
        if (failure !== undefined) {
          const error = failure;
          failure = undefined;
          stop();
          throw error;
        }
        if (ended) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    },
    async return(): Promise<IteratorResult<QmpEvent>> {
      stop();
      queue.length = 0;
      head = 0;
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
