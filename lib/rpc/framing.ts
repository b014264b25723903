/**
 * Byte stream ⇄ RPC messages (libvirt's virnetmessage.c).
 *
 *   ┌────────────┬──────┬──────┬──────┬──────┬────────┬────────┬───────────────┬─────────┐
 *   │ length u32 │ prog │ vers │ proc │ type │ serial │ status │ [nfds u32]    │ body    │
 *   └────────────┴──────┴──────┴──────┴──────┴────────┴────────┴───────────────┴─────────┘
 *    counts all    u32    u32    int    int     u32      int     only for types
 *    of the bytes                                                CALL_WITH_FDS /
 *                                                                REPLY_WITH_FDS
 *
 * Everything is big-endian (docs/monitor-facts.md §6). The fd count is framing, not body:
 * libvirt reads it right after the header (virNetMessageDecodeNumFDs) before
 * any dispatch, so it is split off here and `body` is the procedure's XDR
 * alone (mitm-fds: `... 00000004 00000008 00000000 | 00000001 | <args>`).
 *
 * Decoding is push-driven and resumable: push() chunks of any size, then
 * take complete messages with next(). The same messages come out whatever
 * the chunking. After a *_WITH_FDS message the one placeholder byte per fd
 * that libvirt sends along with the fd is skipped (see
 * `skipFdPlaceholderBytes`). Connection-level faults (length < 28, length over the
 * 32 MiB limit, a bad fd count) throw FrameError; the decoder then stays
 * failed and rethrows it, since the stream can no longer be split.
 */
import type { MemoryBudget } from '../net/memory-budget.js';
import { FrameError, XdrError } from './errors.js';
import { HEADER_BYTES, LENGTH_WORD_BYTES, MessageType, RpcLimit } from './protocol.js';

/** The six header words. proc, type and status are signed in the protocol (`int` / enums). */
export interface RpcHeader {
  prog: number;
  vers: number;
  proc: number;
  type: number;
  serial: number;
  status: number;
}

/** One framed message: its header, the fds it announces (0 unless *_WITH_FDS) and its XDR body. */
export interface RpcMessage {
  header: RpcHeader;
  fdCount: number;
  body: Buffer;
}

/** The smallest legal length word: itself plus the header. */
export const MIN_FRAME_BYTES = LENGTH_WORD_BYTES + HEADER_BYTES;
const FD_COUNT_BYTES = 4;
const EMPTY = Buffer.alloc(0);

/** Whether a message of this type carries an fd count before its body. */
export function carriesFdCount(type: number): boolean {
  return type === MessageType.CALL_WITH_FDS || type === MessageType.REPLY_WITH_FDS;
}

/**
 * Builds one complete message. `fdCount` is written only for *_WITH_FDS
 * types (and must be 0 otherwise). Throws XdrError (out-of-range) for a
 * header word outside its XDR type, or too-large when header + body would
 * pass the 32 MiB message limit.
 */
export function encodeMessage(header: RpcHeader, body: Uint8Array = EMPTY, fdCount = 0): Buffer {
  const withFds = carriesFdCount(header.type);
  if (!withFds && fdCount !== 0) {
    throw new XdrError(`message type ${header.type} cannot carry ${fdCount} fds`, 'out-of-range', 0);
  }
  if (withFds && !(Number.isInteger(fdCount) && fdCount >= 0 && fdCount <= RpcLimit.FDS_PER_MESSAGE)) {
    throw new XdrError(`fd count ${fdCount} is outside 0..${RpcLimit.FDS_PER_MESSAGE}`, 'out-of-range', 0);
  }
  const payloadBytes = HEADER_BYTES + (withFds ? FD_COUNT_BYTES : 0) + body.length;
  if (payloadBytes > RpcLimit.MESSAGE_BYTES) {
    throw new XdrError(`message of ${payloadBytes} bytes exceeds the limit of ${RpcLimit.MESSAGE_BYTES}`, 'too-large', 0);
  }
  const frame = Buffer.allocUnsafe(LENGTH_WORD_BYTES + payloadBytes);
  let offset = frame.writeUInt32BE(LENGTH_WORD_BYTES + payloadBytes, 0);
  offset = writeWord(frame, offset, header.prog, false, 'prog');
  offset = writeWord(frame, offset, header.vers, false, 'vers');
  offset = writeWord(frame, offset, header.proc, true, 'proc');
  offset = writeWord(frame, offset, header.type, true, 'type');
  offset = writeWord(frame, offset, header.serial, false, 'serial');
  offset = writeWord(frame, offset, header.status, true, 'status');
  if (withFds) offset = frame.writeUInt32BE(fdCount, offset);
  frame.set(body, offset);
  return frame;
}

function writeWord(frame: Buffer, offset: number, value: number, signed: boolean, field: string): number {
  const [min, max] = signed ? [-0x8000_0000, 0x7fff_ffff] : [0, 0xffff_ffff];
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new XdrError(`header ${field} ${String(value)} is not a valid ${signed ? 'int' : 'unsigned int'}`, 'out-of-range', offset);
  }
  return signed ? frame.writeInt32BE(value, offset) : frame.writeUInt32BE(value, offset);
}

export interface FrameDecoderOptions {
  /**
   * Largest header + body accepted (the length word minus its own 4 bytes).
   * Default and ceiling: libvirt's VIR_NET_MESSAGE_MAX, 32 MiB.
   */
  maxMessageBytes?: number;
  /**
   * libvirt sends each fd of a *_WITH_FDS message as one placeholder data
   * byte carrying SCM_RIGHTS, right after the message (virNetSocketSendFD;
   * mitm-fds: "passed 1 fd(s)", the message, "skipped 1 fd dummy byte(s):
   * 00"). A transport that cannot take fds out of band (Node's net.Socket)
   * still delivers those bytes in the stream, so by default the decoder
   * skips `fdCount` bytes after such a message, whatever their value (as
   * libvirt's recvfd() ignores it). Set false for a transport that consumes
   * them together with the fds.
   */
  skipFdPlaceholderBytes?: boolean;
  /**
   * Process-wide pool the decoder's storage is charged to (past the
   * budget's per-holder allowance). When it refuses growth the decoder
   * fails with FrameError input-overflow.
   */
  budget?: MemoryBudget;
}

/** Storage kept between messages; a larger one is released once it empties. */
const RETAINED_STORAGE_BYTES = 64 * 1024;

/**
 * Push-driven, resumable splitter of a byte stream into RpcMessages.
 * Received bytes are copied into one contiguous store, and each message is
 * copied out of it, so a message never pins a socket chunk or the store and
 * a stream of one-byte chunks costs no more than one large chunk.
 */
export class FrameDecoder {
  readonly maxMessageBytes: number;
  readonly skipFdPlaceholderBytes: boolean;
  /** fd placeholder bytes still to drop before the next length word. */
  private placeholderBytesToSkip = 0;
  /** Set once the stream proved unusable; every later call rethrows it. */
  private failure: FrameError | null = null;
  /** Unconsumed input is storage[start, end). */
  private storage: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  private readonly budget: MemoryBudget | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxMessageBytes = Math.min(options.maxMessageBytes ?? RpcLimit.MESSAGE_BYTES, RpcLimit.MESSAGE_BYTES);
    this.skipFdPlaceholderBytes = options.skipFdPlaceholderBytes ?? true;
    this.budget = options.budget;
  }

  /** Bytes of storage held (its capacity), for the budget and tests. */
  get storageBytes(): number {
    return this.storage.length;
  }

  /** Gives the storage back (the connection ended); later input starts from empty storage. */
  release(): void {
    this.replaceStorage(Buffer.alloc(0));
    this.start = 0;
    this.end = 0;
  }

  /** Bytes received and not yet returned in a message. */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  /** Bytes of a first message not yet complete (0 when nothing is buffered or the first message is whole). */
  get partialFrameBytes(): number {
    const buffered = this.bufferedBytes;
    if (buffered === 0 || this.placeholderBytesToSkip > 0) return 0;
    if (buffered < LENGTH_WORD_BYTES) return buffered;
    return buffered < this.storage.readUInt32BE(this.start) ? buffered : 0;
  }

  /** True once a FrameError has been thrown; every later call rethrows it. */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** Appends received bytes (copied: the caller may reuse the chunk). */
  push(chunk: Uint8Array): void {
    this.throwIfFailed();
    if (chunk.length === 0) return;
    this.reserve(chunk.length);
    this.storage.set(chunk, this.end);
    this.end += chunk.length;
  }

  /**
   * The next complete message, or null when more bytes are needed. Throws
   * FrameError as soon as the length word (or the fd count) shows the stream
   * is unusable, even before the rest of the message has arrived.
   */
  next(): RpcMessage | null {
    this.throwIfFailed();
    if (this.placeholderBytesToSkip > 0) {
      const skipped = Math.min(this.placeholderBytesToSkip, this.bufferedBytes);
      this.start += skipped;
      this.placeholderBytesToSkip -= skipped;
      if (this.start === this.end) this.reset();
      if (this.placeholderBytesToSkip > 0) return null;
    }
    if (this.bufferedBytes < LENGTH_WORD_BYTES) return null;
    const frameBytes = this.storage.readUInt32BE(this.start);
    if (frameBytes < MIN_FRAME_BYTES) {
      this.fail(new FrameError(`message length ${frameBytes} is below the minimum of ${MIN_FRAME_BYTES}`, 'too-short', String(frameBytes)));
    }
    if (frameBytes - LENGTH_WORD_BYTES > this.maxMessageBytes) {
      this.fail(
        new FrameError(
          `message length ${frameBytes} exceeds the limit of ${this.maxMessageBytes} bytes plus the length word`,
          'too-long',
          String(frameBytes),
        ),
      );
    }
    if (this.bufferedBytes < frameBytes) return null;
    const frame = Buffer.from(this.storage.subarray(this.start, this.start + frameBytes));
    this.start += frameBytes;
    if (this.start === this.end) this.reset();
    return this.parse(frame);
  }

  /**
   * Skips the placeholder bytes of the last *_WITH_FDS message that are
   * buffered now; returns how many are still to come. The fds of that
   * message arrive with those bytes, so once this is 0 they all have.
   */
  skipPlaceholderBytes(): number {
    this.throwIfFailed();
    const skipped = Math.min(this.placeholderBytesToSkip, this.bufferedBytes);
    this.start += skipped;
    this.placeholderBytesToSkip -= skipped;
    if (this.start === this.end) this.reset();
    return this.placeholderBytesToSkip;
  }

  /**
   * Pushes `chunk` and returns every message now complete. A FrameError met
   * after some messages does not lose them: they are returned, the decoder
   * stays failed, and the next call throws the error.
   */
  decode(chunk: Uint8Array): RpcMessage[] {
    this.push(chunk);
    const messages: RpcMessage[] = [];
    try {
      for (let message = this.next(); message; message = this.next()) messages.push(message);
    } catch (error) {
      if (messages.length === 0) throw error;
    }
    return messages;
  }

  private parse(frame: Buffer): RpcMessage {
    const header: RpcHeader = {
      prog: frame.readUInt32BE(4),
      vers: frame.readUInt32BE(8),
      proc: frame.readInt32BE(12),
      type: frame.readInt32BE(16),
      serial: frame.readUInt32BE(20),
      status: frame.readInt32BE(24),
    };
    if (!carriesFdCount(header.type)) return { header, fdCount: 0, body: frame.subarray(MIN_FRAME_BYTES) };
    if (frame.length < MIN_FRAME_BYTES + FD_COUNT_BYTES) {
      this.fail(new FrameError('message with fds ends before its fd count', 'bad-fd-count', frame.toString('hex')));
    }
    const fdCount = frame.readUInt32BE(MIN_FRAME_BYTES);
    if (fdCount > RpcLimit.FDS_PER_MESSAGE) {
      this.fail(new FrameError(`message announces ${fdCount} fds, over the maximum of ${RpcLimit.FDS_PER_MESSAGE}`, 'bad-fd-count', String(fdCount)));
    }
    if (this.skipFdPlaceholderBytes) this.placeholderBytesToSkip = fdCount;
    return { header, fdCount, body: frame.subarray(MIN_FRAME_BYTES + FD_COUNT_BYTES) };
  }

  /** Makes room for `extraBytes` more at `end`: compacts, or moves to a larger store. */
  private reserve(extraBytes: number): void {
    if (this.end + extraBytes <= this.storage.length) return;
    const live = this.end - this.start;
    if (live + extraBytes <= this.storage.length) {
      this.storage.copyWithin(0, this.start, this.end);
    } else {
      const grownBytes = Math.max(live + extraBytes, this.storage.length * 2, 4096);
      if (this.budget !== undefined && !this.budget.resize(this.storage.length, grownBytes)) {
        this.fail(
          new FrameError(
            `holding ${live + extraBytes} bytes of unfinished input would pass the process-wide limit of ${this.budget.limitBytes} bytes`,
            'input-overflow',
          ),
        );
      }
      const grown = Buffer.allocUnsafe(grownBytes);
      this.storage.copy(grown, 0, this.start, this.end);
      this.storage = grown;
    }
    this.start = 0;
    this.end = live;
  }

  private reset(): void {
    this.start = 0;
    this.end = 0;
    if (this.storage.length > RETAINED_STORAGE_BYTES) this.replaceStorage(Buffer.alloc(0));
  }

  private fail(error: FrameError): never {
    this.failure = error;
    this.placeholderBytesToSkip = 0;
    this.replaceStorage(Buffer.alloc(0));
    this.start = 0;
    this.end = 0;
    throw error;
  }

  private replaceStorage(storage: Buffer): void {
    this.budget?.resize(this.storage.length, storage.length);
    this.storage = storage;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
