/**
 * Client bytes → the messages QEMU's QMP server would see.
 *
 * QEMU does not frame QMP input by lines or by JSON structure alone: a
 * lexer (qobject/json-lexer.c) turns bytes into tokens and, on a bad byte,
 * reports `stray '...'` and skips to a resynchronisation point; a streamer
 * (qobject/json-streamer.c) collects tokens until braces and brackets
 * balance, or one goes negative, or a limit of limits.ts is passed, and
 * hands each group to the parser (parser.ts). How many replies a client
 * gets for malformed input (zero, one, or hundreds: docs/monitor-facts.md
 * §2) is decided here, so a proxy that is to answer exactly like QEMU must
 * cut the stream exactly where QEMU would. This is a transcription of those
 * two state machines, push-driven and resumable across chunks: feeding
 * input whole or byte by byte gives the same messages.
 *
 *   START ─ " ' ─▶ STRING ─ \ ─▶ ESCAPE         any bad byte: emit `stray 'TOKEN'`,
 *     │    0-9 - ─▶ NUMBER states (lookahead)   then RECOVERY: skip to a control
 *     │    a-z ─▶ KEYWORD (lookahead)           char, 0xFE/0xFF or [ ] { } : ,
 *     └─ { } [ ] : , ─▶ token
 *
 * The lexer works on bytes (token texts are latin1 strings, one char per
 * byte); UTF-8 is validated later, by the parser, as in QEMU.
 *
 * Memory: an unfinished message is held as its token bytes once
 * (whitespace dropped) plus one type byte and one 32-bit end offset per
 * token, so at most 6 × maxMessageBytes of storage (reached with one-byte
 * tokens such as `[1,1,1,…`), however the message is cut into tokens.
 * QEMU's own per-message limits apply as well (token count and nesting,
 * with its error texts), and growth past a small allowance can be charged
 * to a process-wide budget.
 */
import { countOrNestingError, DEFAULT_MAX_CLIENT_MESSAGE_BYTES, MAX_TOKEN_COUNT } from './limits.js';
import { isJsonSpace, TokenType, type TokenGroup } from './tokens.js';

export interface StreamerSink {
  /** A token group, complete as far as QEMU's streamer is concerned (it may still fail to parse). */
  group(tokens: TokenGroup): void;
  /** An error QEMU reports without parsing: stray bytes, token count, nesting. `desc` holds raw bytes as latin1. */
  error(desc: string): void;
  /** The tokens of one message passed `maxMessageBytes`; the streamer is closed. */
  oversize(bytes: number, limit: number): void;
  /** Holding more of an unfinished message would pass the process-wide budget; the streamer is closed. */
  outOfBudget?(heldBytes: number): void;
}

/** Process-wide accounting the streamer charges its storage to; `resize` refuses growth by returning false. */
export interface StorageBudget {
  resize(previousBytes: number, nextBytes: number): boolean;
}

/** Storage a streamer keeps between messages; larger storage grown for one big message is given back after it. */
const INITIAL_BYTES = 256;
const INITIAL_TOKENS = 64;
/** Up to this many tokens a complete group gets plain arrays. */
const SMALL_GROUP_TOKENS = 64;

const enum State {
  Start,
  Recovery,
  DqString,
  DqEscape,
  SqString,
  SqEscape,
  Zero,
  Sign,
  Digits,
  Mantissa,
  MantissaDigits,
  ExpE,
  ExpSign,
  ExpDigits,
  Keyword,
}

/** The token type of each punctuation byte, 0 for any other byte. */
const PUNCTUATION = new Uint8Array(256);
PUNCTUATION[0x7b] = TokenType.LeftCurly;
PUNCTUATION[0x7d] = TokenType.RightCurly;
PUNCTUATION[0x5b] = TokenType.LeftSquare;
PUNCTUATION[0x5d] = TokenType.RightSquare;
PUNCTUATION[0x3a] = TokenType.Colon;
PUNCTUATION[0x2c] = TokenType.Comma;

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
/** Bytes a string may hold unescaped: QEMU's lexer takes 0x20..0xFD, leaving UTF-8 checks to the parser. */
const isStringByte = (c: number): boolean => c >= 0x20 && c <= 0xfd;

/** A complete message's tokens: their bytes in one string, a type and an end offset each. */
class PackedTokenGroup implements TokenGroup {
  constructor(
    readonly types: ArrayLike<TokenType>,
    private readonly ends: ArrayLike<number>,
    private readonly bytes: string,
  ) {}

  text(index: number): string {
    return this.bytes.slice(index === 0 ? 0 : this.ends[index - 1], this.ends[index]);
  }
}

export class QemuJsonStreamer {
  private state = State.Start;
  private braces = 0;
  private brackets = 0;
  /** Token bytes of the message so far, the token being lexed last (from tokenStart). */
  private bytes = Buffer.allocUnsafe(INITIAL_BYTES);
  private length = 0;
  private tokenStart = 0;
  private types = new Uint8Array(INITIAL_TOKENS);
  private ends = new Uint32Array(INITIAL_TOKENS);
  private count = 0;
  /** Bytes of storage charged to the budget's accounting (all of it, the allowance included). */
  private heldBytes = 0;
  private closed = false;

  /**
   * `maxMessageBytes`: token bytes one message may hold (past it: oversize,
   * closed). `budget`: charged for storage grown past its per-holder
   * allowance; when it refuses, outOfBudget, closed.
   */
  constructor(
    private readonly sink: StreamerSink,
    readonly maxMessageBytes = DEFAULT_MAX_CLIENT_MESSAGE_BYTES,
    private readonly budget?: StorageBudget,
  ) {
    this.heldBytes = this.storageBytes();
    budget?.resize(0, this.heldBytes);
  }

  /** True while part of a message or token is buffered. */
  get midMessage(): boolean {
    return this.length > 0 || this.state !== State.Start;
  }

  /** Token bytes of the unfinished message so far. */
  get unfinishedBytes(): number {
    return this.length;
  }

  /** Heap bytes held for the unfinished message (its storage's capacity). */
  get storageHeldBytes(): number {
    return this.heldBytes;
  }

  /** Feeds a chunk of client bytes; emits everything it completes. Ignored once closed. */
  push(chunk: Buffer | string): void {
    const input = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    const length = input.length;
    let i = 0;
    while (i < length && !this.closed) {
      const state = this.state;
      // Inside a string, a run of bytes that end nothing is taken whole.
      if (state === State.DqString || state === State.SqString) {
        const quote = state === State.DqString ? 0x22 : 0x27;
        let end = i;
        while (end < length) {
          const c = input[end]!;
          if (c === quote || c === 0x5c || !isStringByte(c)) break;
          end++;
        }
        if (end > i) {
          if (!this.reserve(end - i)) return;
          if (end - i < 32) {
            for (let at = i; at < end; at++) this.bytes[this.length++] = input[at]!;
          } else {
            this.length += input.copy(this.bytes, this.length, i, end);
          }
          i = end;
          continue;
        }
      }
      if (this.feed(input[i]!)) i++;
    }
  }

  /** Stops; later input is ignored, and the storage is given back to the budget. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseStorage();
  }

  /** Runs one lexer step; returns whether byte `c` was consumed (false: look at it again in the new state). */
  private feed(c: number): boolean {
    switch (this.state) {
      case State.Start: {
        const punctuation = PUNCTUATION[c]!;
        if (punctuation !== 0) {
          if (this.append(c)) this.emitToken(punctuation as TokenType);
        } else if (c === 0x22) {
          this.begin(State.DqString, c);
        } else if (c === 0x27) {
          this.begin(State.SqString, c);
        } else if (c === 0x30) {
          this.begin(State.Zero, c);
        } else if (c >= 0x31 && c <= 0x39) {
          this.begin(State.Digits, c);
        } else if (c === 0x2d) {
          this.begin(State.Sign, c);
        } else if (c >= 0x61 && c <= 0x7a) {
          this.begin(State.Keyword, c);
        } else if (!isJsonSpace(c)) {
          this.lexError(c);
        }
        return true;
      }
      case State.Recovery:
        // QEMU resynchronises on structural characters ({ } [ ] : ,), control characters other than TAB, and 0xFE/0xFF.
        if (PUNCTUATION[c] !== 0 || (c < 0x20 && c !== 0x09) || c >= 0xfe) {
          this.state = State.Start;
          return false;
        }
        return true;
      case State.DqString:
      case State.SqString: {
        const quote = this.state === State.DqString ? 0x22 : 0x27;
        if (c === quote) {
          if (this.append(c)) this.emitToken(TokenType.String);
        } else if (c === 0x5c) {
          this.extend(this.state === State.DqString ? State.DqEscape : State.SqEscape, c);
        } else if (isStringByte(c)) {
          this.append(c);
        } else {
          this.lexError(c);
        }
        return true;
      }
      case State.DqEscape:
      case State.SqEscape:
        if (isStringByte(c)) this.extend(this.state === State.DqEscape ? State.DqString : State.SqString, c);
        else this.lexError(c);
        return true;
      case State.Zero:
        if (isDigit(c)) return this.lexError(c);
        if (c === 0x2e) return this.extend(State.Mantissa, c);
        return this.lookahead(TokenType.Integer);
      case State.Sign:
        if (c === 0x30) return this.extend(State.Zero, c);
        if (c >= 0x31 && c <= 0x39) return this.extend(State.Digits, c);
        return this.lexError(c);
      case State.Digits:
        if (isDigit(c)) return this.extend(State.Digits, c);
        if (c === 0x65 || c === 0x45) return this.extend(State.ExpE, c);
        if (c === 0x2e) return this.extend(State.Mantissa, c);
        return this.lookahead(TokenType.Integer);
      case State.Mantissa:
        if (isDigit(c)) return this.extend(State.MantissaDigits, c);
        return this.lexError(c);
      case State.MantissaDigits:
        if (isDigit(c)) return this.extend(State.MantissaDigits, c);
        if (c === 0x65 || c === 0x45) return this.extend(State.ExpE, c);
        return this.lookahead(TokenType.Float);
      case State.ExpE:
        if (c === 0x2d || c === 0x2b) return this.extend(State.ExpSign, c);
        if (isDigit(c)) return this.extend(State.ExpDigits, c);
        return this.lexError(c);
      case State.ExpSign:
        if (isDigit(c)) return this.extend(State.ExpDigits, c);
        return this.lexError(c);
      case State.ExpDigits:
        if (isDigit(c)) return this.extend(State.ExpDigits, c);
        return this.lookahead(TokenType.Float);
      case State.Keyword:
        if (c >= 0x61 && c <= 0x7a) return this.extend(State.Keyword, c);
        return this.lookahead(TokenType.Keyword);
    }
  }

  private begin(state: State, c: number): void {
    this.state = state;
    this.append(c);
  }

  private extend(state: State, c: number): true {
    this.state = state;
    this.append(c);
    return true;
  }

  /** Adds one byte to the token being lexed; false (and closed) when the message limit or the budget refuses it. */
  private append(c: number): boolean {
    if (!this.reserve(1)) return false;
    this.bytes[this.length++] = c;
    return true;
  }

  /** Makes room for `more` token bytes; false once the stream was closed for the message limit or the budget. */
  private reserve(more: number): boolean {
    const needed = this.length + more;
    if (needed > this.maxMessageBytes) {
      this.overflow(needed);
      return false;
    }
    if (needed <= this.bytes.length) return true;
    const grown = Buffer.allocUnsafe(Math.min(Math.max(needed, this.bytes.length * 2), this.maxMessageBytes));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
    return this.charge();
  }

  /** The token ended just before this byte, which is looked at again from START. */
  private lookahead(type: TokenType): false {
    this.emitToken(type);
    return false;
  }

  /** A byte no token can take: QEMU reports the token so far plus that byte, then recovers. */
  private lexError(c: number): true {
    const tokenText = this.bytes.toString('latin1', this.tokenStart, this.length) + String.fromCharCode(c);
    this.state = State.Recovery;
    this.resetMessage();
    this.sink.error(`JSON parse error, stray '${tokenText}'`);
    return true;
  }

  /** json_message_process_token() for the complete token at tokenStart..length. */
  private emitToken(type: TokenType): void {
    if (this.closed) return;
    this.state = State.Start;
    if (type === TokenType.LeftCurly) this.braces++;
    else if (type === TokenType.RightCurly) this.braces--;
    else if (type === TokenType.LeftSquare) this.brackets++;
    else if (type === TokenType.RightSquare) this.brackets--;
    // QEMU's checks, in its order: size (here a disconnect), count, nesting; a refused token is dropped with the message.
    if (this.length + 1 > this.maxMessageBytes) return this.overflow(this.length);
    const refusal = countOrNestingError(this.count, this.braces + this.brackets);
    if (refusal !== null) return this.refuseMessage(refusal);
    if (this.count === this.types.length && !this.growTokens()) return;
    this.types[this.count] = type;
    this.ends[this.count] = this.length;
    this.count++;
    this.tokenStart = this.length;
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    const group = this.takeGroup();
    this.resetMessage();
    this.sink.group(group);
  }

  /** The complete message as a group that owns its data (plain arrays up to SMALL_GROUP_TOKENS tokens, typed arrays beyond). */
  private takeGroup(): PackedTokenGroup {
    const count = this.count;
    const text = this.bytes.toString('latin1', 0, this.length);
    if (count > SMALL_GROUP_TOKENS) return new PackedTokenGroup(this.types.slice(0, count), this.ends.slice(0, count), text);
    const types: TokenType[] = new Array<TokenType>(count);
    const ends: number[] = new Array<number>(count);
    for (let index = 0; index < count; index++) {
      types[index] = this.types[index]!;
      ends[index] = this.ends[index]!;
    }
    return new PackedTokenGroup(types, ends, text);
  }

  private growTokens(): boolean {
    // A message cannot hold more tokens than bytes: with the byte buffer, storage stays within 6 × maxMessageBytes.
    const capacity = Math.min(this.types.length * 2, MAX_TOKEN_COUNT, Math.max(this.maxMessageBytes, INITIAL_TOKENS));
    const types = new Uint8Array(capacity);
    types.set(this.types);
    const ends = new Uint32Array(capacity);
    ends.set(this.ends);
    this.types = types;
    this.ends = ends;
    return this.charge();
  }

  private refuseMessage(desc: string): void {
    this.resetMessage();
    this.sink.error(desc);
  }

  private resetMessage(): void {
    this.braces = 0;
    this.brackets = 0;
    this.length = 0;
    this.tokenStart = 0;
    this.count = 0;
    if (this.bytes.length > INITIAL_BYTES * 16 || this.types.length > INITIAL_TOKENS * 16) {
      this.bytes = Buffer.allocUnsafe(INITIAL_BYTES);
      this.types = new Uint8Array(INITIAL_TOKENS);
      this.ends = new Uint32Array(INITIAL_TOKENS);
      this.charge();
    }
  }

  private storageBytes(): number {
    return this.bytes.length + this.types.byteLength + this.ends.byteLength;
  }

  /** Tells the budget the storage's new size; false (and closed) when it refuses growth. */
  private charge(): boolean {
    const next = this.storageBytes();
    if (this.budget === undefined || this.budget.resize(this.heldBytes, next)) {
      this.heldBytes = next;
      return true;
    }
    const held = this.heldBytes;
    this.closed = true;
    this.releaseStorage();
    this.sink.outOfBudget?.(held);
    return false;
  }

  private releaseStorage(): void {
    this.budget?.resize(this.heldBytes, 0);
    this.heldBytes = 0;
    this.state = State.Start;
    this.braces = 0;
    this.brackets = 0;
    this.length = 0;
    this.tokenStart = 0;
    this.count = 0;
    this.bytes = Buffer.alloc(0);
    this.types = new Uint8Array(0);
    this.ends = new Uint32Array(0);
  }

  private overflow(bytes: number): void {
    this.closed = true;
    this.releaseStorage();
    this.sink.oversize(bytes, this.maxMessageBytes);
  }
}
