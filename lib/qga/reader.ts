/**
 * Guest-agent byte stream → JSON messages, with the agent's resync
 * handshake (docs/monitor-facts.md §4).
 *
 * The agent sends no greeting and may hold anything in the pipe when a client
 * arrives: replies meant for a previous client, half an object, an error
 * about our own flush byte. The handshake that cuts through it is
 * `guest-sync-delimited` with a random id: the agent answers
 * `\xff{"return": ID}\n`, and 0xFF can never occur in the agent's JSON (its
 * output is ASCII). So while a sync is awaited:
 *
 *   discard ──0xFF──▶ after sentinel ──{"return": ID}──▶ synced (normal framing)
 *      ▲                  │   ▲   │
 *      └── any other ─────┘   └───┘ 0xFF again: restart with a fresh framer
 *          message                  (a stale partial object is dropped)
 *
 * Everything before the first sentinel is discarded unread, so stale bytes
 * cost no memory. After the match, the same chunk continues through normal
 * framing.
 */
import { JsonObjectFramer } from '../qmp/framer.js';
import { parseJsonLossless } from '../qmp/json.js';

const SENTINEL = 0xff;

/** Where the reader delivers what it recognises; called synchronously from push(). */
export interface QgaReaderSink {
  /** A complete JSON object, outside a resync. */
  message(text: string): void;
  /** The awaited `guest-sync-delimited` reply arrived; later bytes are framed normally. */
  synced(): void;
  /** Text skipped while resynchronising (stale replies, errors, lines). */
  discarded(text: string): void;
  /** Bytes outside any object outside a resync: a 0xFF sentinel (`'\xff'`) or non-JSON text. */
  garbage(text: string): void;
  /** An object grew past the limit; the reader is now closed. */
  oversize(bytes: number, limit: number): void;
}

/** Limits for QgaReader. */
export interface QgaReaderOptions {
  /** Largest message accepted, in bytes. */
  maxMessageBytes?: number;
}

/** The push-driven reader drawn above; it never throws on input. */
export class QgaReader {
  private framer: JsonObjectFramer;
  /** The id of the awaited sync reply; undefined outside a resync. */
  private syncId: number | undefined;
  /** A sentinel has been seen and nothing since ruled out the sync reply. */
  private afterSentinel = false;

  constructor(
    private readonly sink: QgaReaderSink,
    private readonly options: QgaReaderOptions = {},
  ) {
    this.framer = this.createFramer();
  }

  /** Starts a resync: discards input until `\xff{"return": syncId}`. */
  awaitSync(syncId: number): void {
    this.syncId = syncId;
    this.afterSentinel = false;
    this.framer = this.createFramer();
  }

  /** True while a sync reply is awaited. */
  get syncing(): boolean {
    return this.syncId !== undefined;
  }

  /** Feeds a chunk; emits whatever it completes. */
  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      if (this.syncId === undefined) {
        this.framer.push(start === 0 ? chunk : chunk.subarray(start));
        return;
      }
      const sentinel = chunk.indexOf(SENTINEL, start);
      const end = sentinel === -1 ? chunk.length : sentinel;
      if (this.afterSentinel && end > start) {
        this.framer.push(chunk.subarray(start, end));
        if (this.syncId === undefined) {
          // Synced inside this piece; the rest of the chunk is framed normally.
          start = end;
          continue;
        }
      } else if (end > start) {
        this.sink.discarded(chunk.toString('latin1', start, end));
      }
      if (sentinel === -1) return;
      this.afterSentinel = true;
      this.framer = this.createFramer();
      start = sentinel + 1;
    }
  }

  /** Ends the stream; returns an unfinished object's text (empty if none). */
  end(): string {
    return this.framer.end();
  }

  private createFramer(): JsonObjectFramer {
    return new JsonObjectFramer(
      {
        message: (text) => this.onMessage(text),
        garbage: (text) => (this.syncId === undefined ? this.sink.garbage(text) : this.sink.discarded(text)),
        sentinel: () => this.sink.garbage('\xff'),
        oversize: (bytes, limit) => this.sink.oversize(bytes, limit),
      },
      this.options,
    );
  }

  private onMessage(text: string): void {
    if (this.syncId === undefined) {
      this.sink.message(text);
    } else if (this.afterSentinel && isSyncReply(text, this.syncId)) {
      this.syncId = undefined;
      this.afterSentinel = false;
      this.sink.synced();
    } else {
      this.afterSentinel = false;
      this.sink.discarded(text);
    }
  }
}

function isSyncReply(text: string, syncId: number): boolean {
  try {
    const value = parseJsonLossless(text) as { return?: unknown } | null;
    return typeof value === 'object' && value !== null && value.return === syncId;
  } catch {
    return false;
  }
}
