/**
 * Fair turns for bulk client input. Lexing costs CPU in proportion to the
 * bytes a client sends; a few hundred clients each streaming a message of
 * one-byte tokens would otherwise fill every turn of the event loop (each
 * readable socket hands over up to 64 KiB per turn) and every other
 * client's round trip would wait behind them.
 *
 * So input is split in two: small chunks from a client that is not in the
 * middle of a large message are lexed at once, as they arrive (ordinary
 * commands never wait); anything else is bulk, and a client with bulk input
 * stops reading while its chunk is lexed in slices, round-robin with the
 * other bulk clients, at most BULK_BYTES_PER_TURN per turn. While only a
 * few clients have bulk input (one large command), turns follow each other
 * at once; when many do (a flood), turns are a millisecond apart, so the
 * process is not kept busy by them: on a loaded machine a process that
 * never sleeps waits for the scheduler before every reply it relays. Each
 * client waits with at most one chunk (64 KiB), so what is held is bounded
 * by the connection limits.
 */

/** Up to this size a chunk is lexed at once, unless its client is already in a large unfinished message. */
export const SMALL_INPUT_BYTES = 16 * 1024;
/** An unfinished message past this size makes its client's further input bulk. */
export const LARGE_MESSAGE_BYTES = 64 * 1024;
/** Bulk bytes lexed per turn, over all clients. */
export const BULK_BYTES_PER_TURN = 32 * 1024;
/** With more clients than this waiting with bulk input, turns are a millisecond apart rather than back to back. */
export const CONTENDED_BULK_CLIENTS = 4;
/** Bytes of one client's chunk lexed before the next client's turn. */
const SLICE_BYTES = 8 * 1024;

import { Fifo } from '../fifo.js';

interface BulkChunk {
  readonly chunk: Buffer;
  offset: number;
  readonly feed: (slice: Buffer) => void;
  readonly done: () => void;
}

export class InputPacer {
  private readonly queue = new Fifo<BulkChunk>();
  private scheduled = false;

  constructor(readonly bytesPerTurn = BULK_BYTES_PER_TURN) {}

  /** Whether a chunk of `chunkBytes`, from a client holding `unfinishedBytes` of a message, must wait for its turn. */
  isBulk(chunkBytes: number, unfinishedBytes: number): boolean {
    return chunkBytes > SMALL_INPUT_BYTES || unfinishedBytes > LARGE_MESSAGE_BYTES;
  }

  /** Clients waiting with bulk input. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Queues `chunk`: `feed` gets it slice by slice, in order, on later
   * turns, then `done` is called once. The caller stops reading from that
   * client until `done`.
   */
  enqueue(chunk: Buffer, feed: (slice: Buffer) => void, done: () => void): void {
    this.queue.push({ chunk, offset: 0, feed, done });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (this.waiting > CONTENDED_BULK_CLIENTS) setTimeout(() => this.turn(), 1);
    else setImmediate(() => this.turn());
  }

  private turn(): void {
    this.scheduled = false;
    let budget = this.bytesPerTurn;
    while (budget > 0) {
      const item = this.queue.shift();
      if (item === undefined) break;
      const end = Math.min(item.chunk.length, item.offset + Math.min(budget, SLICE_BYTES));
      budget -= end - item.offset;
      const slice = item.chunk.subarray(item.offset, end);
      item.offset = end;
      if (end < item.chunk.length) this.queue.push(item);
      item.feed(slice);
      if (end === item.chunk.length) item.done();
    }
    if (this.queue.length > 0) this.schedule();
  }
}
