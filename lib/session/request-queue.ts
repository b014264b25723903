/**
 * The requests a session has accepted and not yet written, oldest first.
 * A request that times out or is aborted while it waits stays in place and
 * is skipped when its turn comes: it is never written.
 */
import { Fifo } from '../fifo.js';

/** What the queue needs of a request. */
export interface Settleable {
  readonly settled: boolean;
  reject(error: Error): boolean;
}

export class RequestQueue<Request extends Settleable> {
  private readonly items = new Fifo<Request>();

  /** True when nothing waits, settled or not. */
  get isEmpty(): boolean {
    return this.items.length === 0;
  }

  push(request: Request): void {
    this.items.push(request);
  }

  /** The oldest request not yet settled, left in the queue; settled ones before it are dropped. */
  peekUnsettled(): Request | undefined {
    for (let request = this.items.peek(); request !== undefined; request = this.items.peek()) {
      if (!request.settled) return request;
      this.items.shift();
    }
    return undefined;
  }

  /** Removes and returns the oldest request not yet settled; settled ones before it are dropped. */
  takeUnsettled(): Request | undefined {
    for (let request = this.items.shift(); request !== undefined; request = this.items.shift()) {
      if (!request.settled) return request;
    }
    return undefined;
  }

  /** Requests waiting and not yet settled. */
  unsettledCount(): number {
    let count = 0;
    for (const request of this.items) if (!request.settled) count++;
    return count;
  }

  /** Removes and returns every request, settled or not. */
  takeAll(): Request[] {
    const all = [...this.items];
    this.items.clear();
    return all;
  }
}
