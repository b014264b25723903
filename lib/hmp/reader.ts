/**
 * HMP byte stream → banner and command outputs.
 *
 * What QEMU's human monitor sends (docs/monitor-facts.md §3), with one command outstanding:
 *
 *   on connect   QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) 
 *   per command  <echo>\x1b[K\r\n<output lines, each ending \r\n>(qemu) 
 *   empty line   \r\n(qemu) 
 *
 * The echo is the line editor redrawing the line after every byte typed, so
 * it grows with the square of the line length (33 MB for 4,094 characters);
 * it is discarded as it streams past, keeping only enough of a tail to spot
 * its end across chunk boundaries. The output ends at the first `(qemu) `
 * prompt that starts a line; the prompt has no newline after it.
 *
 *   banner ──prompt──▶ idle ──expectReply()──▶ echo ──terminator──▶ output
 *                       ▲                                             │
 *                       └──────────────────── prompt ─────────────────┘
 *
 * A qmpx proxy's HMP socket prints the same banner, outputs and prompts but
 * no echo and no escapes (a line editor is the client's business there), so
 * the first non-empty command decides: an ESC before the first prompt means
 * the peer echoes; a prompt with no ESC before it means the whole text was
 * output. Until that is known the text is kept, not discarded.
 *
 * Known limits, both deliberate so that the result never depends on how
 * the bytes were chunked: an output line that itself begins with `(qemu) `
 * would end the output early (no HMP command in QEMU 7.2 prints one; the
 * rest is then reported as unexpected), and an output whose last line lacks
 * a newline would not be seen to end until a deadline (every `info`
 * subcommand of QEMU 7.2 ends its output with one).
 *
 * Bytes are decoded as latin1 while scanning so one byte is one character
 * and a UTF-8 sequence split across chunks stays intact; a finished output
 * holding bytes above 0x7F is re-decoded as UTF-8.
 */

/** The prompt QEMU prints when it is ready for the next line. */
export const HMP_PROMPT = '(qemu) ';
const LINE_PROMPT = `\r\n${HMP_PROMPT}`;
/** How the echo of a non-empty line ends: the last redraw's erase-to-end-of-line, then Enter. */
export const ECHO_END = '\x1b[K\r\n';
/** An empty line is echoed as a bare Enter. */
export const EMPTY_ECHO_END = '\r\n';
const BANNER_START = 'QEMU ';
/** A banner longer than this without a prompt is not QEMU's. */
export const MAX_BANNER_BYTES = 4096;

const NON_ASCII = /[\x80-\xff]/;

/** Where the reader delivers what it recognises; called synchronously from push(). */
export interface HmpReaderSink {
  /** The text before the first prompt, CRLF kept: QEMU's banner. */
  banner(text: string): void;
  /** The start of the stream is not an HMP banner; `seen` is what arrived. */
  notBanner(seen: string): void;
  /** The output of the outstanding command, exactly as sent (CRLF kept), decoded as UTF-8. */
  reply(output: string): void;
  /** Bytes that arrived while no command was outstanding. */
  unexpected(text: string): void;
  /** The output grew past the limit; the reader is now closed. */
  oversize(bytes: number, limit: number): void;
}

/** Limits for HmpReader. */
export interface HmpReaderOptions {
  /** Largest command output accepted, in bytes. The echo is not counted: it is never kept. */
  maxOutputBytes: number;
}

type Phase = 'banner' | 'idle' | 'echo' | 'output' | 'closed';

/** The push-driven parser drawn above; it never throws on input. */
export class HmpReader {
  private phase: Phase = 'banner';
  /**
   * Banner or output collected so far; in the echo phase, the unmatched tail
   * of the echo. An output is only appended to (a rope, never flattened)
   * until its end is found: each chunk costs its own length, not the length
   * of what came before.
   */
  private collected = '';
  /**
   * The last characters of `collected` (one fewer than a line-start prompt),
   * where a prompt split across chunks begins; only this and the new chunk
   * are searched.
   */
  private tail = '';
  private echoTerminator = ECHO_END;
  private emptyLine = false;
  /** Whether the peer echoes typed lines; learnt from the first non-empty command. */
  private peerEchoes: boolean | undefined;

  constructor(
    private readonly sink: HmpReaderSink,
    private readonly options: HmpReaderOptions,
  ) {}

  /**
   * Announces that a command line has just been written, so the next bytes
   * are its echo. `emptyLine`: the line was empty, whose echo differs.
   * Throws if a command is already outstanding: HMP takes one at a time.
   */
  expectReply(emptyLine: boolean): void {
    if (this.phase !== 'idle') throw new Error(`HMP reader: a command was written while ${this.phase}`);
    this.collected = '';
    this.tail = '';
    this.emptyLine = emptyLine;
    this.echoTerminator = emptyLine ? EMPTY_ECHO_END : ECHO_END;
    this.phase = this.peerEchoes === false ? 'output' : 'echo';
  }

  /** True while a command's echo or output is awaited. */
  get awaitingReply(): boolean {
    return this.phase === 'echo' || this.phase === 'output';
  }

  /** Feeds a chunk; emits whatever it completes. Ignored once closed. */
  push(chunk: Buffer | string): void {
    let text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    while (text !== '') {
      switch (this.phase) {
        case 'closed':
          return;
        case 'banner':
          text = this.readBanner(text);
          break;
        case 'idle':
          this.sink.unexpected(decode(text));
          return;
        case 'echo':
          text = this.skipEcho(text);
          break;
        case 'output':
          text = this.readOutput(text);
          break;
      }
    }
  }

  /** Ends the stream and returns the text of an unfinished banner or output (empty if none). */
  end(): string {
    const partial = this.phase === 'banner' || this.phase === 'output' ? decode(this.collected) : '';
    this.phase = 'closed';
    this.collected = '';
    return partial;
  }

  /** Consumes banner text; returns what follows the first prompt. */
  private readBanner(text: string): string {
    const searchFrom = Math.max(0, this.collected.length - LINE_PROMPT.length + 1);
    this.collected += text;
    const start = this.collected.slice(0, BANNER_START.length);
    if (!BANNER_START.startsWith(start)) return this.rejectBanner();
    const prompt = this.collected.indexOf(LINE_PROMPT, searchFrom);
    if (prompt === -1) {
      if (this.collected.length > MAX_BANNER_BYTES) return this.rejectBanner();
      return '';
    }
    const bannerEnd = prompt + 2;
    const rest = this.collected.slice(bannerEnd + HMP_PROMPT.length);
    const banner = this.collected.slice(0, bannerEnd);
    this.collected = '';
    this.phase = 'idle';
    this.sink.banner(decode(banner));
    return rest;
  }

  private rejectBanner(): string {
    const seen = decode(this.collected);
    this.collected = '';
    this.phase = 'closed';
    this.sink.notBanner(seen);
    return '';
  }

  /** Discards echo; returns what follows it. */
  private skipEcho(text: string): string {
    const joined = this.collected + text;
    if (this.peerEchoes === undefined && !this.emptyLine) {
      // What was collected before holds neither an ESC nor a prompt: only the new text can decide.
      if (text.includes('\x1b')) {
        this.peerEchoes = true;
      } else if (this.startsWithPrompt(text) || (this.tail + text).includes(LINE_PROMPT)) {
        this.peerEchoes = false;
        this.collected = '';
        this.tail = '';
        this.phase = 'output';
        return joined;
      } else {
        this.append(text);
        if (this.collected.length > this.options.maxOutputBytes) this.overflow(this.collected.length);
        return '';
      }
    }
    const end = joined.indexOf(this.echoTerminator);
    if (end === -1) {
      this.collected = joined.slice(-(this.echoTerminator.length - 1));
      return '';
    }
    this.collected = '';
    this.tail = '';
    this.phase = 'output';
    return joined.slice(end + this.echoTerminator.length);
  }

  /** Collects output; returns what follows the prompt that ends it. */
  private readOutput(text: string): string {
    let end: number;
    let promptAt: number;
    if (this.startsWithPrompt(text)) {
      end = 0;
      promptAt = 0;
    } else {
      const searched = this.tail + text;
      const found = searched.indexOf(LINE_PROMPT);
      if (found === -1) {
        this.append(text);
        if (this.collected.length > this.options.maxOutputBytes) this.overflow(this.collected.length);
        return '';
      }
      end = this.collected.length - this.tail.length + found + 2;
      promptAt = end;
    }
    if (end > this.options.maxOutputBytes) {
      this.overflow(end);
      return '';
    }
    const output = this.collected + text;
    this.collected = '';
    this.tail = '';
    this.phase = 'idle';
    this.sink.reply(decode(output.slice(0, end)));
    return output.slice(promptAt + HMP_PROMPT.length);
  }

  /** Whether `collected` followed by `text` starts with the prompt (decided by their first few characters). */
  private startsWithPrompt(text: string): boolean {
    if (this.collected.length >= HMP_PROMPT.length) return false;
    return (this.collected + text.slice(0, HMP_PROMPT.length)).startsWith(HMP_PROMPT);
  }

  private append(text: string): void {
    this.collected += text;
    this.tail = text.length >= LINE_PROMPT.length - 1 ? text.slice(-(LINE_PROMPT.length - 1)) : (this.tail + text).slice(-(LINE_PROMPT.length - 1));
  }

  private overflow(bytes: number): void {
    this.phase = 'closed';
    this.collected = '';
    this.sink.oversize(bytes, this.options.maxOutputBytes);
  }
}

function decode(latin1: string): string {
  return NON_ASCII.test(latin1) ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1;
}
