/**
 * A first-in first-out queue whose every operation is O(1) amortized.
 *
 * `Array.prototype.shift()` moves every remaining element once the array
 * is large (V8 trims the front in place only for small arrays), so a queue
 * built on it costs O(n²) for n items that pile up: a client that sends
 * many short inputs at once would buy seconds of the process's time. Here
 * the front is an index; the consumed prefix is dropped once it is both
 * over COMPACT_MIN_HEAD items and more than half of the array, so each item
 * is copied at most once more on average, and memory held is at most about
 * twice what is queued.
 */

/** Consumed items tolerated at the front before the array is compacted. */
const COMPACT_MIN_HEAD = 1024;

export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  /** Items queued. */
  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, or undefined when empty. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** Removes and returns the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    // The slot is released at once, so a consumed item is never kept alive by the queue.
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > COMPACT_MIN_HEAD && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes every item. */
  clear(): void {
    this.items = [];
    this.head = 0;
  }

  /** The queued items, oldest first, without removing them. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!;
  }
}
