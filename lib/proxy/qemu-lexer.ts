/**
 * Downstream client bytes → the messages QEMU's QMP server would see.
 *
 * QEMU does not frame QMP input by lines or by JSON structure alone: a
 * lexer (qobject/json-lexer.c) turns bytes into tokens and, on a bad byte,
 * reports `stray '...'` and skips to a resynchronisation point; a streamer
 * (qobject/json-streamer.c) collects tokens until braces and brackets
 * balance, or one goes negative, or the nesting passes 1024, and hands each
 * group to the parser. How many replies a client gets for malformed input
 * (zero, one, or hundreds: FACTS §2) is decided here, so a proxy that is to
 * answer exactly like QEMU must cut the stream exactly where QEMU would.
 * This is a transcription of those two state machines, push-driven and
 * resumable across chunks: feeding input whole or byte by byte gives the
 * same messages.
 *
 *   START ─ " ' ─▶ STRING ─ \ ─▶ ESCAPE         any bad byte: emit `stray 'TOKEN'`,
 *     │    0-9 - ─▶ NUMBER states (lookahead)   then RECOVERY: skip to a control
 *     │    a-z ─▶ KEYWORD (lookahead)           char, 0xFE/0xFF or [ ] { } : ,
 *     └─ { } [ ] : , ─▶ token
 *
 * Bytes are handled as latin1 characters (one char per byte): the lexer
 * works on bytes, and UTF-8 is validated later, by the parser, as in QEMU.
 */

export const enum TokenType {
  LeftCurly = 1,
  RightCurly,
  LeftSquare,
  RightSquare,
  Colon,
  Comma,
  Integer,
  Float,
  Keyword,
  String,
}

/** One group of tokens the streamer hands to the parser; token texts are latin1 byte strings. */
export interface TokenGroup {
  types: TokenType[];
  texts: string[];
}

export interface StreamerSink {
  /** A token group, complete as far as QEMU's streamer is concerned (it may still fail to parse). */
  group(tokens: TokenGroup): void;
  /** An error QEMU reports without parsing: stray bytes, nesting. `desc` holds raw bytes as latin1. */
  error(desc: string): void;
  /** The tokens of one message passed `maxMessageBytes`; the streamer is closed. */
  oversize(bytes: number, limit: number): void;
}

/** QEMU's MAX_NESTING: brackets plus braces open at once. */
export const MAX_NESTING = 1024;
/** Token bytes one message may hold here (QEMU allows 64 MiB; a proxy disconnects sooner). */
export const DEFAULT_MAX_CLIENT_MESSAGE_BYTES = 1024 * 1024;

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

// Indexed by byte, 0 for anything else: a typed-array load, not a property lookup that misses for most bytes.
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

export class QemuJsonStreamer {
  private state = State.Start;
  /** The token being lexed (latin1). */
  private token = '';
  private braces = 0;
  private brackets = 0;
  private types: TokenType[] = [];
  private texts: string[] = [];
  private tokenBytes = 0;
  private closed = false;

  constructor(
    private readonly sink: StreamerSink,
    readonly maxMessageBytes = DEFAULT_MAX_CLIENT_MESSAGE_BYTES,
  ) {}

  /** True while part of a message or token is buffered. */
  get midMessage(): boolean {
    return this.types.length > 0 || this.token !== '' || this.state !== State.Start;
  }

  /** Feeds a chunk of client bytes; emits everything it completes. Ignored once closed. */
  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    const length = text.length;
    let i = 0;
    while (i < length && !this.closed) {
      const state = this.state;
      // Strings are most of the input: copy runs of ordinary bytes at once.
      if (state === State.DqString || state === State.SqString) {
        const quote = state === State.DqString ? 0x22 : 0x27;
        let end = i;
        while (end < length) {
          const c = text.charCodeAt(end);
          if (c === quote || c === 0x5c || !isStringByte(c)) break;
          end++;
        }
        // A whole string in this chunk is one slice: no concatenation to flatten later.
        if (
          end < length &&
          text.charCodeAt(end) === quote &&
          this.token.length === 1 &&
          i > 0 &&
          text.charCodeAt(i - 1) === quote &&
          this.tokenBytes + 1 + end - i <= this.maxMessageBytes
        ) {
          this.emitToken(TokenType.String, text.slice(i - 1, end + 1));
          i = end + 1;
          continue;
        }
        if (end > i) {
          this.token += text.slice(i, end);
          if (this.tokenBytes + this.token.length > this.maxMessageBytes) return this.overflow(this.tokenBytes + this.token.length);
          i = end;
          continue;
        }
      }
      if (this.feed(text.charCodeAt(i), text[i]!)) i++;
    }
  }

  /** Stops; later input is ignored. */
  close(): void {
    this.closed = true;
  }

  /** Runs one lexer step; returns whether `char` was consumed (false: look at it again in the new state). */
  private feed(c: number, char: string): boolean {
    switch (this.state) {
      case State.Start: {
        const punctuation = PUNCTUATION[c]!;
        if (punctuation !== 0) {
          this.emitToken(punctuation as TokenType, char);
        } else if (c === 0x22) {
          this.begin(State.DqString, char);
        } else if (c === 0x27) {
          this.begin(State.SqString, char);
        } else if (c === 0x30) {
          this.begin(State.Zero, char);
        } else if (c >= 0x31 && c <= 0x39) {
          this.begin(State.Digits, char);
        } else if (c === 0x2d) {
          this.begin(State.Sign, char);
        } else if (c >= 0x61 && c <= 0x7a) {
          this.begin(State.Keyword, char);
        } else if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) {
          this.lexError(char);
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
          this.token += char;
          this.emitToken(TokenType.String, this.token);
        } else if (c === 0x5c) {
          this.extend(this.state === State.DqString ? State.DqEscape : State.SqEscape, char);
        } else if (isStringByte(c)) {
          this.token += char;
        } else {
          this.lexError(this.token + char);
        }
        return true;
      }
      case State.DqEscape:
      case State.SqEscape:
        if (isStringByte(c)) this.extend(this.state === State.DqEscape ? State.DqString : State.SqString, char);
        else this.lexError(this.token + char);
        return true;
      case State.Zero:
        if (isDigit(c)) return this.lexError(this.token + char);
        if (c === 0x2e) return this.extend(State.Mantissa, char);
        return this.lookahead(TokenType.Integer);
      case State.Sign:
        if (c === 0x30) return this.extend(State.Zero, char);
        if (c >= 0x31 && c <= 0x39) return this.extend(State.Digits, char);
        return this.lexError(this.token + char);
      case State.Digits:
        if (isDigit(c)) return this.extend(State.Digits, char);
        if (c === 0x65 || c === 0x45) return this.extend(State.ExpE, char);
        if (c === 0x2e) return this.extend(State.Mantissa, char);
        return this.lookahead(TokenType.Integer);
      case State.Mantissa:
        if (isDigit(c)) return this.extend(State.MantissaDigits, char);
        return this.lexError(this.token + char);
      case State.MantissaDigits:
        if (isDigit(c)) return this.extend(State.MantissaDigits, char);
        if (c === 0x65 || c === 0x45) return this.extend(State.ExpE, char);
        return this.lookahead(TokenType.Float);
      case State.ExpE:
        if (c === 0x2d || c === 0x2b) return this.extend(State.ExpSign, char);
        if (isDigit(c)) return this.extend(State.ExpDigits, char);
        return this.lexError(this.token + char);
      case State.ExpSign:
        if (isDigit(c)) return this.extend(State.ExpDigits, char);
        return this.lexError(this.token + char);
      case State.ExpDigits:
        if (isDigit(c)) return this.extend(State.ExpDigits, char);
        return this.lookahead(TokenType.Float);
      case State.Keyword:
        if (c >= 0x61 && c <= 0x7a) return this.extend(State.Keyword, char);
        return this.lookahead(TokenType.Keyword);
    }
  }

  private begin(state: State, char: string): void {
    this.state = state;
    this.token = char;
  }

  private extend(state: State, char: string): true {
    this.state = state;
    this.token += char;
    if (this.tokenBytes + this.token.length > this.maxMessageBytes) this.overflow(this.tokenBytes + this.token.length);
    return true;
  }

  /** The token ended just before this character, which is looked at again from START. */
  private lookahead(type: TokenType): false {
    this.emitToken(type, this.token);
    return false;
  }

  /** A byte no token can take: QEMU reports the token so far plus that byte, then recovers. */
  private lexError(tokenText: string): true {
    this.token = '';
    this.state = State.Recovery;
    this.resetMessage();
    this.sink.error(`JSON parse error, stray '${tokenText}'`);
    return true;
  }

  /** json_message_process_token() for a complete token. */
  private emitToken(type: TokenType, text: string): void {
    this.token = '';
    this.state = State.Start;
    if (type === TokenType.LeftCurly) this.braces++;
    else if (type === TokenType.RightCurly) this.braces--;
    else if (type === TokenType.LeftSquare) this.brackets++;
    else if (type === TokenType.RightSquare) this.brackets--;
    if (this.tokenBytes + text.length + 1 > this.maxMessageBytes) {
      this.overflow(this.tokenBytes + text.length);
      return;
    }
    if (this.braces + this.brackets > MAX_NESTING) {
      this.resetMessage();
      this.sink.error('JSON nesting depth limit exceeded');
      return;
    }
    this.types.push(type);
    this.texts.push(text);
    this.tokenBytes += text.length;
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    const group = { types: this.types, texts: this.texts };
    this.types = [];
    this.texts = [];
    this.resetMessage();
    this.sink.group(group);
  }

  private resetMessage(): void {
    this.braces = 0;
    this.brackets = 0;
    this.tokenBytes = 0;
    if (this.types.length > 0) {
      this.types = [];
      this.texts = [];
    }
  }

  private overflow(bytes: number): void {
    this.closed = true;
    this.resetMessage();
    this.token = '';
    this.sink.oversize(bytes, this.maxMessageBytes);
  }
}
