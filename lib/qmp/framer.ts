/**
 * Byte stream → top-level JSON object texts.
 *
 * QEMU ends every object with CRLF and writes one per line in compact mode,
 * but `pretty=on` spreads one object over many lines, the guest agent ends
 * lines with LF only, and a dying QEMU can stop in the middle of an object
 * (docs/monitor-facts.md §2, §4). So framing is by JSON structure, not by line: a small
 * resumable scanner tracks brace depth and string state across chunks and
 * emits the exact text of each complete top-level object. It never parses
 * and never throws on input; what is not an object is reported as garbage.
 *
 * Bytes are decoded as latin1 so that one byte is one character: the scan
 * can count bytes exactly, and the guest agent's 0xFF resync sentinel
 * survives. QEMU's output is pure ASCII; an object holding bytes above 0x7F
 * is re-decoded as UTF-8 once it is complete.
 *
 *   depth 0 ──'{'──▶ in object ──'"'──▶ in string ──'\\'──▶ escaped
 *      ▲                 │  ▲               │  ▲                │
 *      └── '}' at depth 1┘  └────── '"' ────┘  └── any char ─────┘
 */

import { isAscii } from 'node:buffer';

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LINE_FEED = 0x0a;
const SENTINEL = 0xff;

// Garbage is reported a line at a time, in pieces of at most this many bytes.
const MAX_GARBAGE_REPORT = 4096;

const NON_ASCII = /[\x80-\xff]/;

export interface FramerSink {
  /**
   * A complete top-level JSON object, exactly as sent. `parsed` is its
   * JSON.parse value when the fast path already parsed it (lossy for
   * integers beyond 2^53: check before trusting it), else undefined.
   */
  message(text: string, parsed?: object): void;
  /** Bytes outside any object that are neither whitespace nor 0xFF. */
  garbage(text: string): void;
  /** A 0xFF byte outside any object (guest-agent resync marker). */
  sentinel?(): void;
  /** The object being assembled grew past the limit; the framer is now closed. */
  oversize(bytes: number, limit: number): void;
  /** Whether the next line starting with `unparsedPrefix` may be handed over unparsed; default no. */
  takesUnparsed?(): boolean;
}

export interface FramerOptions {
  /** Largest object accepted, in bytes. Default 16 MiB. */
  maxMessageBytes?: number;
  /**
   * Lines that start with this text are framed by the scan and handed over
   * unparsed while the sink takesUnparsed(): for a sink that will only relay
   * them, JSON.parse is most of the cost (the scan takes a half to two thirds
   * of JSON.parse's time, at any length).
   */
  unparsedPrefix?: string;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Up to this many bytes, a chunk is checked for non-ASCII bytes here; a longer one by Node's vectorised isAscii (BENCHMARKS.md, "The client's cost per command"). */
const SMALL_CHUNK = 512;

function smallIsAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! > 0x7f) return false;
  return true;
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

export class JsonObjectFramer {
  readonly maxMessageBytes: number;
  private readonly unparsedPrefix: string | undefined;
  /** Completed chunk pieces of the object in progress. */
  private pieces: string[] = [];
  private piecesBytes = 0;
  /** Whether every piece came from a pure-ASCII chunk (then no UTF-8 re-decoding is needed). */
  private piecesAscii = true;
  /** Bracket depth inside the current object; 0 = between objects. */
  private depth = 0;
  private inString = false;
  private escaped = false;
  private garbageText = '';
  private closed = false;

  constructor(
    private readonly sink: FramerSink,
    options: FramerOptions = {},
  ) {
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.unparsedPrefix = options.unparsedPrefix;
  }

  /** Feeds a chunk; emits everything it completes. Ignored once closed. */
  push(chunk: Buffer): void {
    if (this.closed) return;
    const text = chunk.toString('latin1');
    // Whole lines of pure ASCII (everything QEMU sends in compact mode) skip the scan.
    const chunkIsAscii = chunk.length <= SMALL_CHUNK ? smallIsAscii(chunk) : isAscii(chunk);
    let objectStart = this.depth > 0 ? 0 : -1;
    let i = 0;
    const length = chunk.length;
    while (i < length) {
      if (this.depth > 0) {
        const next = this.scanObject(chunk, i);
        if (next === -1) break;
        const tail = text.slice(objectStart, next);
        objectStart = -1;
        i = next;
        if (this.overLimit(tail.length)) return;
        this.emit(tail, chunkIsAscii);
        continue;
      }
      const code = chunk[i]!;
      if (code === OPEN_BRACE) {
        this.flushGarbage();
        if (chunkIsAscii) {
          const next = this.tryWholeLine(text, i);
          if (next !== -1) {
            i = next;
            continue;
          }
        }
        objectStart = i;
        this.depth = 1;
        i++;
        continue;
      }
      if (code === SENTINEL) {
        this.flushGarbage();
        this.sink.sentinel?.();
      } else if (code === LINE_FEED) {
        this.flushGarbage();
      } else if (!isWhitespace(code)) {
        this.garbageText += text[i];
        if (this.garbageText.length >= MAX_GARBAGE_REPORT) this.flushGarbage();
      }
      i++;
    }
    if (this.depth > 0) {
      const piece = text.slice(objectStart);
      this.pieces.push(piece);
      this.piecesBytes += piece.length;
      if (!chunkIsAscii) this.piecesAscii = false;
      this.overLimit(0);
    }
  }

  /**
   * The scan inside an object, from `from`, over the chunk's bytes (the same
   * indices as its latin1 text; typed-array loads in a loop over locals run
   * about twice as fast as charCodeAt, and QEMU's objects are mostly short
   * strings). Returns the index just past the object's closing brace, or -1
   * when the chunk ends first; the state is kept either way.
   */
  private scanObject(bytes: Uint8Array, from: number): number {
    let depth = this.depth;
    let inString = this.inString;
    let escaped = this.escaped;
    const length = bytes.length;
    let i = from;
    while (i < length) {
      const code = bytes[i++]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (code === BACKSLASH) escaped = true;
        else if (code === QUOTE) inString = false;
      } else if (code === QUOTE) {
        inString = true;
      } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
        depth++;
      } else if ((code === CLOSE_BRACE || code === CLOSE_BRACKET) && --depth === 0) {
        break;
      }
    }
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
    return depth === 0 ? i : -1;
  }

  /**
   * Ends the stream. Returns the discarded partial object (empty if none):
   * a peer that dies mid-object leaves a tail that must not be parsed.
   */
  end(): string {
    const partial = this.pieces.join('');
    this.reset();
    this.flushGarbage();
    this.closed = true;
    return partial;
  }

  /** True while part of an object is buffered. */
  get midObject(): boolean {
    return this.depth > 0;
  }

  /**
   * Fast path: if the object starting at `start` is alone on its line, parse
   * the line and emit it. JSON.parse accepting the line proves it is one
   * complete object, so the per-character scan is skipped. Returns the
   * index after the line, or -1 to fall back to the scan.
   */
  private tryWholeLine(text: string, start: number): number {
    const lineEnd = text.indexOf('\n', start);
    if (lineEnd === -1) return -1;
    let end = lineEnd;
    while (end > start && isWhitespace(text.charCodeAt(end - 1))) end--;
    if (text.charCodeAt(end - 1) !== CLOSE_BRACE || end - start > this.maxMessageBytes) return -1;
    const prefix = this.unparsedPrefix;
    if (prefix !== undefined && text.startsWith(prefix, start) && this.sink.takesUnparsed?.() === true) return -1;
    const line = text.slice(start, end);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return -1;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return -1;
    this.sink.message(line, parsed);
    return lineEnd + 1;
  }

  private overLimit(extraBytes: number): boolean {
    const total = this.piecesBytes + extraBytes;
    if (total <= this.maxMessageBytes) return false;
    this.reset();
    this.closed = true;
    this.sink.oversize(total, this.maxMessageBytes);
    return true;
  }

  private emit(tail: string, tailIsAscii: boolean): void {
    let text = tail;
    let ascii = tailIsAscii;
    if (this.pieces.length > 0) {
      this.pieces.push(tail);
      text = this.pieces.join('');
      ascii = tailIsAscii && this.piecesAscii;
      this.pieces = [];
      this.piecesBytes = 0;
      this.piecesAscii = true;
    }
    if (!ascii && NON_ASCII.test(text)) text = Buffer.from(text, 'latin1').toString('utf8');
    this.sink.message(text);
  }

  private reset(): void {
    this.pieces = [];
    this.piecesBytes = 0;
    this.piecesAscii = true;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }

  private flushGarbage(): void {
    if (this.garbageText === '') return;
    const text = this.garbageText;
    this.garbageText = '';
    this.sink.garbage(text);
  }

}
