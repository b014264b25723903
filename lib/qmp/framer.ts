/**
 * Byte stream → top-level JSON object texts.
 *
 * QEMU ends every object with CRLF and writes one per line in compact mode,
 * but `pretty=on` spreads one object over many lines, the guest agent ends
 * lines with LF only, and a dying QEMU can stop in the middle of an object
 * (FACTS §2, §4). So framing is by JSON structure, not by line: a small
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
   * Lines that start with this text and are at most UNPARSED_LINE_MAX_BYTES
   * long are framed by the scan and handed over unparsed while the sink
   * takesUnparsed(): for a sink that will only relay them, JSON.parse is
   * most of the cost of a short reply.
   */
  unparsedPrefix?: string;
}

/** Longer lines are parsed as usual: the scan is slower than JSON.parse on large input. */
export const UNPARSED_LINE_MAX_BYTES = 4096;

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

export class JsonObjectFramer {
  readonly maxMessageBytes: number;
  private readonly unparsedPrefix: string | undefined;
  /** Completed chunk pieces of the object in progress. */
  private pieces: string[] = [];
  private piecesBytes = 0;
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
    const chunkIsAscii = isAscii(chunk);
    let objectStart = this.depth > 0 ? 0 : -1;
    let i = 0;
    const length = text.length;
    // Position of the next backslash at or after i, or -1 when there is none left in the chunk.
    let backslash = text.indexOf('\\');
    while (i < length) {
      if (this.depth === 0) {
        const code = text.charCodeAt(i);
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
        continue;
      }
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        // Jump to the next quote or backslash: most of a message is string content.
        const quote = text.indexOf('"', i);
        if (backslash !== -1 && backslash < i) backslash = text.indexOf('\\', i);
        if (backslash !== -1 && (quote === -1 || backslash < quote)) {
          this.escaped = true;
          i = backslash + 1;
        } else if (quote !== -1) {
          this.inString = false;
          i = quote + 1;
        } else {
          i = length;
        }
        continue;
      }
      const code = text.charCodeAt(i);
      i++;
      if (code === QUOTE) {
        this.inString = true;
      } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
        this.depth++;
      } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
        if (--this.depth === 0) {
          const tail = text.slice(objectStart, i);
          objectStart = -1;
          if (this.overLimit(tail.length)) return;
          this.emit(tail, chunkIsAscii);
        }
      }
    }
    if (this.depth > 0) {
      const piece = text.slice(objectStart);
      this.pieces.push(piece);
      this.piecesBytes += piece.length;
      this.overLimit(0);
    }
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
    if (prefix !== undefined && end - start <= UNPARSED_LINE_MAX_BYTES && text.startsWith(prefix, start) && this.sink.takesUnparsed?.() === true) {
      return -1;
    }
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
      this.pieces = [];
      this.piecesBytes = 0;
      ascii = false; // earlier chunks were not checked
    }
    if (!ascii && NON_ASCII.test(text)) text = Buffer.from(text, 'latin1').toString('utf8');
    this.sink.message(text);
  }

  private reset(): void {
    this.pieces = [];
    this.piecesBytes = 0;
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
