/**
 * XDR (RFC 4506) as libvirt's RPC uses it (docs/monitor-facts.md §6): big-endian 4-byte
 * int/uint, 8-byte hyper/uhyper, bool, strings and variable opaques as a u32
 * length + bytes + zero padding to a multiple of 4, fixed opaques padded the
 * same way, optionals as a u32 0 (absent) or 1 followed by the value, and
 * variable arrays as a u32 count followed by the items.
 *
 * The reader accepts what libvirt's decoder (the C library's xdr_bool,
 * xdr_pointer and xdr_opaque) accepts: a bool or an optional's discriminant
 * is true / present for ANY non-zero word, not only 1 (go-libvirt writes the
 * "present" marker of CONNECT_OPEN's name as the bytes 01 00 00 00), and
 * padding bytes are skipped without being looked at. It is as strict as
 * libvirt where libvirt is strict: string, opaque and array lengths against
 * their limits, and every overrun. Strings must also be valid UTF-8 (a
 * JavaScript string cannot hold anything else). Every overrun or bad value
 * throws an XdrError; nothing else escapes. What the writer produces is
 * canonical: 0 / 1 and zero padding.
 */
import { TextDecoder } from 'node:util';
import { XdrError } from './errors.js';
import { RpcLimit } from './protocol.js';

/** Encoder and decoder of one XDR type. */
export interface XdrCodec<T> {
  encode(writer: XdrWriter, value: T): void;
  decode(reader: XdrReader): T;
}

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;
const HYPER_MIN = -(1n << 63n);
const HYPER_MAX = (1n << 63n) - 1n;
const UHYPER_MAX = (1n << 64n) - 1n;
const INITIAL_CAPACITY_BYTES = 256;
const EVIDENCE_BYTES = 16;

/** fatal: reject invalid UTF-8 instead of replacing it; ignoreBOM: keep a leading U+FEFF. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** String.prototype.isWellFormed (Node 20; ES2024, newer than this project's `lib`). */
type WellFormedCheck = { isWellFormed(): boolean };

function paddingOf(length: number): number {
  return (4 - (length & 3)) & 3;
}

export interface XdrWriterOptions {
  /** The writer refuses to grow past this many bytes. Default: libvirt's message limit, 32 MiB. */
  maxBytes?: number;
}

/** Growable big-endian XDR output buffer. */
export class XdrWriter {
  readonly maxBytes: number;
  private buffer = Buffer.alloc(INITIAL_CAPACITY_BYTES);
  private length = 0;

  constructor(options: XdrWriterOptions = {}) {
    this.maxBytes = options.maxBytes ?? RpcLimit.MESSAGE_BYTES;
  }

  /** Bytes written so far. */
  get byteLength(): number {
    return this.length;
  }

  /** A copy of everything written. */
  toBuffer(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.length));
  }

  /** Signed 32-bit integer. Throws XdrError out-of-range unless an integer in [-2^31, 2^31). */
  writeInt(value: number): void {
    this.checkInteger(value, INT32_MIN, INT32_MAX, 'int');
    this.reserve(4);
    this.buffer.writeInt32BE(value, this.length);
    this.length += 4;
  }

  /** Unsigned 32-bit integer. Throws XdrError out-of-range unless an integer in [0, 2^32). */
  writeUint(value: number): void {
    this.checkInteger(value, 0, UINT32_MAX, 'unsigned int');
    this.reserve(4);
    this.buffer.writeUInt32BE(value, this.length);
    this.length += 4;
  }

  /** Signed 64-bit integer; a number must be a safe integer. */
  writeHyper(value: bigint | number): void {
    const big = this.toBigInt(value, HYPER_MIN, HYPER_MAX, 'hyper');
    this.reserve(8);
    this.buffer.writeBigInt64BE(big, this.length);
    this.length += 8;
  }

  /** Unsigned 64-bit integer; a number must be a safe integer. */
  writeUhyper(value: bigint | number): void {
    const big = this.toBigInt(value, 0n, UHYPER_MAX, 'unsigned hyper');
    this.reserve(8);
    this.buffer.writeBigUInt64BE(big, this.length);
    this.length += 8;
  }

  writeBool(value: boolean): void {
    this.writeInt(value ? 1 : 0);
  }

  /**
   * UTF-8 string: u32 byte length, bytes, zero padding. Throws too-long past
   * `maxBytes` (4 MiB), and out-of-range for a string with a lone surrogate,
   * which UTF-8 cannot carry (it would silently become U+FFFD).
   */
  writeString(value: string, maxBytes: number = RpcLimit.STRING_BYTES): void {
    if (!(value as unknown as WellFormedCheck).isWellFormed()) {
      throw new XdrError('string holds a lone UTF-16 surrogate, which UTF-8 cannot encode', 'out-of-range', this.length);
    }
    const byteLength = Buffer.byteLength(value, 'utf8');
    if (byteLength > maxBytes) {
      throw new XdrError(`string of ${byteLength} bytes exceeds the maximum of ${maxBytes}`, 'too-long', this.length);
    }
    this.writeUint(byteLength);
    this.reserve(byteLength + paddingOf(byteLength));
    this.buffer.write(value, this.length, byteLength, 'utf8');
    this.length += byteLength;
    this.writeZeroPadding(byteLength);
  }

  /** `opaque x[length]`: exactly `length` bytes, zero padding, no length word. */
  writeOpaqueFixed(bytes: Uint8Array, length: number): void {
    if (bytes.length !== length) {
      throw new XdrError(`fixed opaque needs ${length} bytes, got ${bytes.length}`, 'out-of-range', this.length);
    }
    this.writeBytes(bytes);
  }

  /** `opaque x<maxBytes>`: u32 length, bytes, zero padding. */
  writeOpaque(bytes: Uint8Array, maxBytes: number): void {
    if (bytes.length > maxBytes) {
      throw new XdrError(`opaque of ${bytes.length} bytes exceeds the maximum of ${maxBytes}`, 'too-long', this.length);
    }
    this.writeUint(bytes.length);
    this.writeBytes(bytes);
  }

  /** `T *x`: 0 for null, else 1 and the value. */
  writeOptional<T>(value: T | null, writeValue: (writer: XdrWriter, value: T) => void): void {
    if (value === null) {
      this.writeUint(0);
      return;
    }
    this.writeUint(1);
    writeValue(this, value);
  }

  /** `T x<maxItems>`: u32 count, then each item. */
  writeArray<T>(items: readonly T[], maxItems: number, writeItem: (writer: XdrWriter, item: T) => void): void {
    if (items.length > maxItems) {
      throw new XdrError(`array of ${items.length} items exceeds the maximum of ${maxItems}`, 'too-long', this.length);
    }
    this.writeUint(items.length);
    for (const item of items) writeItem(this, item);
  }

  private writeBytes(bytes: Uint8Array): void {
    this.reserve(bytes.length + paddingOf(bytes.length));
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
    this.writeZeroPadding(bytes.length);
  }

  private writeZeroPadding(dataLength: number): void {
    const padding = paddingOf(dataLength);
    this.buffer.fill(0, this.length, this.length + padding);
    this.length += padding;
  }

  private reserve(extraBytes: number): void {
    const needed = this.length + extraBytes;
    if (needed > this.maxBytes) {
      throw new XdrError(`output would reach ${needed} bytes, over the limit of ${this.maxBytes}`, 'too-large', this.length);
    }
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.alloc(Math.min(capacity, this.maxBytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  private checkInteger(value: number, min: number, max: number, typeName: string): void {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new XdrError(`${String(value)} is not a valid XDR ${typeName}`, 'out-of-range', this.length);
    }
  }

  private toBigInt(value: bigint | number, min: bigint, max: bigint, typeName: string): bigint {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new XdrError(`${String(value)} is not a safe integer for XDR ${typeName}`, 'out-of-range', this.length);
    }
    const big = BigInt(value);
    if (big < min || big > max) {
      throw new XdrError(`${big} is not a valid XDR ${typeName}`, 'out-of-range', this.length);
    }
    return big;
  }
}

/** Bounds-checked big-endian XDR reader over `bytes[start, end)`. */
export class XdrReader {
  private position: number;
  private readonly end: number;
  private readonly view: Buffer;

  /** Throws RangeError unless 0 <= start <= end <= bytes.length. */
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= bytes.length)) {
      throw new RangeError(`invalid XDR reader range [${start}, ${end}) over ${bytes.length} bytes`);
    }
    this.view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.position = start;
    this.end = end;
  }

  /** Offset of the next byte to read. */
  get offset(): number {
    return this.position;
  }

  /** Bytes left before the end. */
  get remaining(): number {
    return this.end - this.position;
  }

  readInt(): number {
    const at = this.take(4);
    return this.view.readInt32BE(at);
  }

  readUint(): number {
    const at = this.take(4);
    return this.view.readUInt32BE(at);
  }

  readHyper(): bigint {
    const at = this.take(8);
    return this.view.readBigInt64BE(at);
  }

  readUhyper(): bigint {
    const at = this.take(8);
    return this.view.readBigUInt64BE(at);
  }

  /** Any non-zero word is true, as xdr_bool decodes it. */
  readBool(): boolean {
    return this.readUint() !== 0;
  }

  /** Throws too-long past `maxBytes` (4 MiB by default), bad-utf8, bad-padding, overrun. */
  readString(maxBytes: number = RpcLimit.STRING_BYTES): string {
    const lengthAt = this.position;
    const byteLength = this.readUint();
    if (byteLength > maxBytes) {
      this.fail(`string declares ${byteLength} bytes, over the maximum of ${maxBytes}`, 'too-long', lengthAt);
    }
    const at = this.take(byteLength);
    this.skipPadding(byteLength);
    try {
      return utf8.decode(this.view.subarray(at, at + byteLength));
    } catch (error) {
      return this.fail('string is not valid UTF-8', 'bad-utf8', at, error);
    }
  }

  /** `opaque x[length]`, as a copy. */
  readOpaqueFixed(length: number): Buffer {
    const at = this.take(length);
    this.skipPadding(length);
    return Buffer.from(this.view.subarray(at, at + length));
  }

  /** `opaque x<maxBytes>`, as a copy. */
  readOpaque(maxBytes: number): Buffer {
    const lengthAt = this.position;
    const length = this.readUint();
    if (length > maxBytes) {
      this.fail(`opaque declares ${length} bytes, over the maximum of ${maxBytes}`, 'too-long', lengthAt);
    }
    return this.readOpaqueFixed(length);
  }

  /** `T *x`: null when the discriminant is 0, the value after any other (xdr_pointer reads it with xdr_bool). */
  readOptional<T>(readValue: (reader: XdrReader) => T): T | null {
    return this.readUint() !== 0 ? readValue(this) : null;
  }

  /** `T x<maxItems>`. */
  readArray<T>(maxItems: number, readItem: (reader: XdrReader) => T): T[] {
    const countAt = this.position;
    const count = this.readUint();
    if (count > maxItems) {
      this.fail(`array declares ${count} items, over the maximum of ${maxItems}`, 'too-many-items', countAt);
    }
    const items: T[] = [];
    for (let index = 0; index < count; index++) items.push(readItem(this));
    return items;
  }

  /** Throws XdrError trailing-bytes if any bytes are left. */
  expectEnd(): void {
    if (this.position !== this.end) {
      this.fail(`${this.end - this.position} unexpected trailing bytes`, 'trailing-bytes', this.position);
    }
  }

  /** Claims `length` bytes and returns where they start. */
  private take(length: number): number {
    if (length > this.end - this.position) {
      this.fail(`need ${length} bytes, only ${this.end - this.position} left`, 'overrun', this.position);
    }
    const at = this.position;
    this.position += length;
    return at;
  }

  /** The padding must be there; its bytes are not checked (xdr_opaque reads them into a scratch buffer). */
  private skipPadding(dataLength: number): void {
    this.take(paddingOf(dataLength));
  }

  private fail(message: string, reason: XdrError['reason'], offset: number, cause?: unknown): never {
    const evidence = this.view.subarray(offset, Math.min(this.end, offset + EVIDENCE_BYTES)).toString('hex');
    throw new XdrError(`${message} at offset ${offset}`, reason, offset, evidence, cause === undefined ? undefined : { cause });
  }
}

/** Encodes `value` with `codec` into a fresh buffer. */
export function encodeXdr<T>(codec: XdrCodec<T>, value: T, options?: XdrWriterOptions): Buffer {
  const writer = new XdrWriter(options);
  codec.encode(writer, value);
  return writer.toBuffer();
}

/**
 * Decodes one `codec` value from all of `bytes`. With `allowTrailing` bytes
 * after the value are ignored (what libvirt's virNetMessageDecodePayload
 * does); without, they throw XdrError.
 */
export function decodeXdr<T>(codec: XdrCodec<T>, bytes: Uint8Array, options: { allowTrailing?: boolean } = {}): T {
  const reader = new XdrReader(bytes);
  const value = codec.decode(reader);
  if (!options.allowTrailing) reader.expectEnd();
  return value;
}
