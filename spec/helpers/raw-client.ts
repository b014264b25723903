/**
 * A minimal raw-socket client for specs that must see wire bytes directly:
 * what QEMU (or qemu-ga, or a fake peer, or the qmpx proxy) really sends,
 * byte for byte, with no framing or parsing in between.
 *
 *   const raw = await rawQmp(qemu.qmpPath);
 *   const [greeting] = await raw.waitForLines(1);
 *   await raw.send('{"execute":"qmp_capabilities"}\n');
 *   await raw.waitForLines(2);
 *   assert.ok(raw.bytes().toString('latin1').endsWith('{"return": {}}\r\n'));
 *   await raw.close();
 *
 * Every wait has a deadline (default 10 s) so a peer that never answers fails
 * the test with what it did send, instead of hanging until the runner's
 * per-file deadline.
 */

import { connect, type Socket } from 'node:net';

const DEFAULT_WAIT_TIMEOUT_MS = 10_000;
/** How much of the received text a failed wait quotes. */
const EVIDENCE_CHARS = 600;
const LF = 0x0a;
const CR = 0x0d;

/** Options for `rawQmp`. */
export interface RawClientOptions {
  /** Deadline for the connection itself; default 10 s. */
  connectTimeoutMs?: number;
}

/** A connected raw client; everything it receives is kept. */
export interface RawClient {
  readonly socket: Socket;
  /** True once the connection has closed (either side). */
  readonly closed: boolean;
  /** Every byte received so far. */
  bytes(): Buffer;
  /** Every byte received so far, decoded as UTF-8. */
  text(): string;
  /** The complete lines received so far, each without its `\n` or `\r\n`. */
  lines(): readonly string[];
  /**
   * Writes `data`: strings and bytes verbatim (add the newline yourself),
   * anything else as `JSON.stringify(data) + '\n'`. Resolves once written.
   */
  send(data: string | Uint8Array | object): Promise<void>;
  /** Resolves with the first `count` complete lines once that many have arrived. */
  waitForLines(count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with the first complete line, past or future, that satisfies `predicate`. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /**
   * Resolves with the text from `fromIndex` (default 0) on, once it contains
   * `needle` (e.g. HMP's `(qemu) ` prompt).
   */
  waitForText(needle: string | RegExp, timeoutMs?: number, fromIndex?: number): Promise<string>;
  /** Resolves once the peer has closed the connection. */
  waitForClose(timeoutMs?: number): Promise<void>;
  /** Ends our side and resolves once the connection is closed (destroying it after the deadline). */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Connects to a UNIX socket at `path`. Works for any line protocol (QMP,
 * qemu-ga, HMP). Rejects if the connection fails or takes too long.
 */
export async function rawQmp(path: string, options: RawClientOptions = {}): Promise<RawClient> {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const socket = connect(path);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`rawQmp: connecting to ${path} took longer than ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  return new RawSocketClient(path, socket);
}

class RawSocketClient implements RawClient {
  private readonly chunks: Buffer[] = [];
  private receivedBytes: Buffer | undefined = Buffer.alloc(0);
  private readonly completeLines: string[] = [];
  /** Bytes after the last LF; kept as bytes so a split UTF-8 sequence decodes whole. */
  private partialLine: Buffer = Buffer.alloc(0);
  private isClosed = false;
  private socketError: Error | undefined;
  /** Re-checked after every chunk and on close; each returns true when it is satisfied. */
  private readonly waiters = new Set<() => boolean>();

  constructor(
    private readonly path: string,
    readonly socket: Socket,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    // ECONNRESET and EPIPE are normal when a peer exits (docs/monitor-facts.md §2); keep them as evidence.
    socket.on('error', (error) => {
      this.socketError = error;
    });
    socket.on('close', () => {
      this.isClosed = true;
      this.checkWaiters();
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  bytes(): Buffer {
    this.receivedBytes ??= Buffer.concat(this.chunks);
    return this.receivedBytes;
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  lines(): readonly string[] {
    return this.completeLines;
  }

  send(data: string | Uint8Array | object): Promise<void> {
    const wire = typeof data === 'string' || data instanceof Uint8Array ? data : `${JSON.stringify(data)}\n`;
    return new Promise((resolve, reject) => {
      this.socket.write(wire, (error) => (error ? reject(error) : resolve()));
    });
  }

  waitForLines(count: number, timeoutMs?: number): Promise<string[]> {
    return this.waitFor(
      `${count} line(s)`,
      () => (this.completeLines.length >= count ? this.completeLines.slice(0, count) : undefined),
      timeoutMs,
    );
  }

  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string> {
    let searchedLines = 0;
    return this.waitFor(
      'a matching line',
      () => {
        for (; searchedLines < this.completeLines.length; searchedLines++) {
          const line = this.completeLines[searchedLines];
          if (line !== undefined && predicate(line)) return line;
        }
        return undefined;
      },
      timeoutMs,
    );
  }

  waitForText(needle: string | RegExp, timeoutMs?: number, fromIndex = 0): Promise<string> {
    return this.waitFor(
      `text ${String(needle)}`,
      () => {
        const text = this.text().slice(fromIndex);
        const found = typeof needle === 'string' ? text.includes(needle) : needle.test(text);
        return found ? text : undefined;
      },
      timeoutMs,
    );
  }

  waitForClose(timeoutMs?: number): Promise<void> {
    return this.waitFor('the peer to close', () => (this.isClosed ? true : undefined), timeoutMs, true).then(
      () => undefined,
    );
  }

  async close(timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    if (this.isClosed) return;
    this.socket.end();
    try {
      await this.waitForClose(timeoutMs);
    } catch {
      this.socket.destroy();
    }
  }

  private receive(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.receivedBytes = undefined;
    let lineStart = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, lineStart)) {
      const line = Buffer.concat([this.partialLine, chunk.subarray(lineStart, lf)]);
      this.partialLine = Buffer.alloc(0);
      const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
      this.completeLines.push(line.toString('utf8', 0, end));
      lineStart = lf + 1;
    }
    this.partialLine = Buffer.concat([this.partialLine, chunk.subarray(lineStart)]);
    this.checkWaiters();
  }

  private checkWaiters(): void {
    for (const waiter of this.waiters) if (waiter()) this.waiters.delete(waiter);
  }

  /**
   * Resolves with `probe()`'s first defined result, checked now and after
   * every chunk. Rejects on the deadline, or when the connection closes first
   * (unless waiting for exactly that), quoting what was received.
   */
  private waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS, closeIsTheGoal = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (reason: string): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        const error = this.socketError ? ` (socket error: ${this.socketError.message})` : '';
        reject(new Error(`rawQmp ${this.path}: waiting for ${what}: ${reason}${error}; received so far: ${this.evidence()}`));
      };
      const waiter = (): boolean => {
        const value = probe();
        if (value !== undefined) {
          clearTimeout(timer);
          resolve(value);
          return true;
        }
        if (this.isClosed && !closeIsTheGoal) {
          fail('the connection closed');
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      if (!waiter()) this.waiters.add(waiter);
    });
  }

  private evidence(): string {
    const text = this.text();
    const tail = text.length > EVIDENCE_CHARS ? `...${text.slice(-EVIDENCE_CHARS)}` : text;
    return JSON.stringify(tail);
  }
}
