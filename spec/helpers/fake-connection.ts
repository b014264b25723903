/**
 * One client connection of the fake peer (fake-peer.ts): records every byte,
 * splits the input into lines and parses each as the command a QMP client
 * sends, and writes with backpressure accounting for floods. It knows
 * nothing about scripts.
 */

import type { Socket } from 'node:net';
import { parse as parseLosslessJson } from 'lossless-json';
import { formatLikeQemu } from './qemu-json.js';

/** Deadline for `waitingForDrain()` unless the caller gives one. */
const DEFAULT_WAIT_TIMEOUT_MS = 10_000;
const LF = 0x0a;
const CR = 0x0d;
/** The guest agent's flush / resync byte (docs/monitor-facts.md §4). */
const AGENT_FLUSH_BYTE = 0xff;

/** One line the client sent, as recorded and as offered to the script. */
export interface ReceivedLine {
  /** Index of the connection it came on (`peer.connections[index]`). */
  readonly connection: number;
  /** The line's bytes without the `\n` (or `\r\n`). */
  readonly bytes: Buffer;
  /** The line decoded as UTF-8. */
  readonly text: string;
  /**
   * `JSON.parse` of the line, `undefined` if it is not JSON. Leading 0xFF
   * bytes (a guest-agent client's flush) are skipped for parsing.
   */
  readonly json: unknown;
  /** The command name from `execute` or `exec-oob`. */
  readonly execute: string | undefined;
  /** True when the command came as `exec-oob` (and without `execute`). */
  readonly oob: boolean;
  /** The `arguments` member, if any. */
  readonly arguments: unknown;
  /** Whether the command had an `id` member (even `"id": null`). */
  readonly hasId: boolean;
  /** The `id` as `JSON.parse` sees it (lossy beyond 2^53; see `echoedId`). */
  readonly id: unknown;
  /** The `id` formatted as QEMU would echo it, number tokens kept exactly. */
  readonly echoedId: string | undefined;
}

/** One accepted client connection and everything it sent. */
export class FakeConnection {
  /** Complete lines received, in order. */
  readonly lines: ReceivedLine[] = [];
  /** How many bytes the peer has written to this connection. */
  sentBytes = 0;
  /** How many times a flood paused for the client to drain its backlog. */
  drainWaits = 0;
  private readonly chunks: Buffer[] = [];
  private partialLine: Buffer = Buffer.alloc(0);
  private isClosed = false;
  private isWaitingForDrain = false;
  private readonly drainWaitListeners: (() => void)[] = [];

  constructor(
    /** Position in `peer.connections`, counting from 0. */
    readonly index: number,
    readonly socket: Socket,
    private readonly onLine: (line: ReceivedLine) => void,
    private readonly onClose: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.flushPartialLine());
    // EPIPE / ECONNRESET when the client goes away mid-write are part of the
    // scenarios this peer exists for; the script sees them as a close.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.isClosed = true;
      for (const listener of this.drainWaitListeners.splice(0)) listener();
      this.onClose();
    });
  }

  /** True once the connection has closed (either side). */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Every byte received on this connection. */
  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /**
   * Resolves once a flood on this connection is stopped waiting for 'drain'
   * (the client is not keeping up): at once if one is waiting now, else the
   * next time one starts to. Also resolves when the connection closes;
   * rejects after `timeoutMs`. Lets a test observe backpressure without sleeping.
   */
  waitingForDrain(timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    if (this.isClosed || this.isWaitingForDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`fake peer: no flood on connection #${this.index} waited for drain within ${timeoutMs} ms`));
      }, timeoutMs);
      this.drainWaitListeners.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Writes bytes now, outside the script (the script's own steps use this
   * too). Returns `write()`'s backpressure verdict; a closed connection
   * drops the bytes and returns true.
   */
  write(wire: string | Uint8Array): boolean {
    if (this.isClosed) return true;
    this.sentBytes += typeof wire === 'string' ? Buffer.byteLength(wire) : wire.byteLength;
    return this.socket.write(wire);
  }

  /** Resolves on 'drain' or close; counts the wait and tells `waitingForDrain()` callers. */
  async drained(): Promise<void> {
    if (this.isClosed) return;
    this.drainWaits++;
    this.isWaitingForDrain = true;
    for (const listener of this.drainWaitListeners.splice(0)) listener();
    await new Promise<void>((resolve) => {
      const settle = (): void => {
        this.socket.off('drain', settle);
        this.socket.off('close', settle);
        resolve();
      };
      this.socket.on('drain', settle);
      this.socket.on('close', settle);
    });
    this.isWaitingForDrain = false;
  }

  private receive(chunk: Buffer): void {
    this.chunks.push(chunk);
    let lineStart = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, lineStart)) {
      const line = Buffer.concat([this.partialLine, chunk.subarray(lineStart, lf)]);
      this.partialLine = Buffer.alloc(0);
      this.acceptLine(line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, -1) : line);
      lineStart = lf + 1;
    }
    this.partialLine = Buffer.concat([this.partialLine, chunk.subarray(lineStart)]);
  }

  /** A command sent without a final newline still counts once the client ends the stream. */
  private flushPartialLine(): void {
    const line = this.partialLine;
    this.partialLine = Buffer.alloc(0);
    if (line.length > 0) this.acceptLine(line);
  }

  private acceptLine(bytes: Buffer): void {
    const text = bytes.toString('utf8');
    if (text.trim() === '') return; // QEMU ignores whitespace between objects
    const line = parseReceivedLine(this.index, bytes, text);
    this.lines.push(line);
    this.onLine(line);
  }
}

function parseReceivedLine(connection: number, bytes: Buffer, text: string): ReceivedLine {
  let flushBytes = 0;
  while (bytes[flushBytes] === AGENT_FLUSH_BYTE) flushBytes++;
  const jsonText = bytes.subarray(flushBytes).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(jsonText);
  } catch {
    json = undefined;
  }
  const members = isPlainObject(json) ? json : {};
  const execute = typeof members.execute === 'string' ? members.execute : undefined;
  const execOob = typeof members['exec-oob'] === 'string' ? members['exec-oob'] : undefined;
  const hasId = 'id' in members;
  return {
    connection,
    bytes,
    text,
    json,
    execute: execute ?? execOob,
    oob: execOob !== undefined && !('execute' in members),
    arguments: members.arguments,
    hasId,
    id: members.id,
    echoedId: hasId ? losslessId(jsonText, members.id) : undefined,
  };
}

/** The id re-serialised from a lossless parse, so `9007199254740993` stays exact, as QEMU keeps it. */
function losslessId(jsonText: string, fallback: unknown): string {
  try {
    const parsed = parseLosslessJson(jsonText) as Record<string, unknown>;
    return formatLikeQemu(parsed.id);
  } catch {
    return formatLikeQemu(fallback);
  }
}

/** A JSON object literal or parse result (not an array, not a class instance such as RawJson). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) && Object.getPrototypeOf(value) === Object.prototype;
}

