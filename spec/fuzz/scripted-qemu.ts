/**
 * An in-memory QMP peer for the fuzz targets: a Duplex to hand to
 * QmpMonitor, on whose other side a script answers every command it
 * receives, in the order received (exec-oob ones at once, as QEMU may).
 * What it writes goes out on a later turn, in the chunks the caller asks
 * for, with whatever the caller wants between replies.
 */
import { Duplex } from 'node:stream';
import { QmpMonitor } from '../../lib/qmp/client.js';
import { silentLogger } from '../../lib/log.js';
import type { UpstreamLink } from '../../lib/proxy/upstream.js';
import { capturedGreeting } from './grammar.js';

/** One command line the peer received, as it parsed it. */
export interface ReceivedCommand {
  line: string;
  execute: string | undefined;
  oob: boolean;
  id: unknown;
  hasId: boolean;
  arguments: unknown;
}

/** The client's end of the in-memory connection. */
class MemorySocket extends Duplex {
  constructor(private readonly peerReceives: (text: string) => void) {
    super();
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.peerReceives(chunk.toString('utf8'));
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }
}

export interface ScriptedQemuOptions {
  /** The text (without line end) that answers `command`, the `seq`-th command received (from 1). */
  reply(command: ReceivedCommand, seq: number, peer: ScriptedQemu): string;
  /** Bytes written before each reply (noise, events); default none. */
  before?(): Buffer;
  /** How the bytes of one turn are cut into chunks; default one chunk. */
  chunks?(bytes: Buffer): Uint8Array[];
  /** Called after a turn's bytes were handed over and the client wrote nothing new in response. */
  idle?(peer: ScriptedQemu): void;
}

export class ScriptedQemu {
  readonly socket: MemorySocket;
  /** Commands received, in order. */
  readonly received: ReceivedCommand[] = [];
  private partialLine = '';
  private outgoing: Buffer[] = [];
  private flushScheduled = false;
  private ended = false;

  constructor(private readonly options: ScriptedQemuOptions) {
    this.socket = new MemorySocket((text) => this.receive(text));
  }

  /** Writes bytes to the client on a later turn. */
  write(bytes: Buffer | string): void {
    if (this.ended) return;
    this.outgoing.push(typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Ends the stream after what was written (QEMU closing its side). */
  end(): void {
    if (this.ended) return;
    this.flush();
    this.ended = true;
    this.socket.push(null);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.ended || this.outgoing.length === 0) return;
    const bytes = Buffer.concat(this.outgoing);
    this.outgoing = [];
    for (const chunk of this.options.chunks?.(bytes) ?? [bytes]) if (chunk.length > 0) this.socket.push(Buffer.from(chunk));
    // The client reads a pushed chunk at once and writes what it releases at once: nothing new now means idle.
    if (!this.flushScheduled) this.options.idle?.(this);
  }

  private receive(text: string): void {
    const lines = (this.partialLine + text).split('\n');
    this.partialLine = lines.pop()!;
    for (const line of lines) {
      if (line.trim() === '') continue;
      const command = parseCommand(line);
      this.received.push(command);
      const before = this.options.before?.();
      if (before !== undefined && before.length > 0) this.write(before);
      this.write(`${this.options.reply(command, this.received.length, this)}\r\n`);
    }
  }
}

function parseCommand(line: string): ReceivedCommand {
  const value = JSON.parse(line) as Record<string, unknown>;
  const oob = typeof value['exec-oob'] === 'string';
  return {
    line,
    execute: (oob ? value['exec-oob'] : value.execute) as string | undefined,
    oob,
    id: value.id,
    hasId: 'id' in value,
    arguments: value.arguments,
  };
}

/** `{"return": VALUE}` with the command's id when it had one, as QEMU prints it. */
export function returnText(command: ReceivedCommand, valueJson: string): string {
  return command.hasId ? `{"return": ${valueJson}, "id": ${JSON.stringify(command.id)}}` : `{"return": ${valueJson}}`;
}

/**
 * A QmpMonitor negotiated over a fresh ScriptedQemu that greets with the
 * captured greeting (oob offered), answers qmp_capabilities, and answers
 * every later command with `reply`.
 */
export async function scriptedMonitor(options: ScriptedQemuOptions & { maxInFlight?: number }): Promise<{ monitor: QmpMonitor; qemu: ScriptedQemu }> {
  const qemu: ScriptedQemu = new ScriptedQemu({
    ...options,
    reply: (command, seq, peer) => (seq === 1 ? returnText(command, '{}') : options.reply(command, seq, peer)),
    before: (): Buffer => (qemu.received.length <= 1 ? Buffer.alloc(0) : (options.before?.() ?? Buffer.alloc(0))),
  });
  const monitor = new QmpMonitor(qemu.socket, { logger: silentLogger, maxInFlight: options.maxInFlight ?? 8 }, 'fuzz');
  await monitor.start(Buffer.from(`${capturedGreeting}\r\n`), 5000);
  return { monitor, qemu };
}

let generation = 0;

/** An upstream link on `monitor`, as the proxy hands one to its sessions. */
export function linkFor(monitor: QmpMonitor): UpstreamLink {
  return { generation: ++generation, monitor, qmp: monitor, closed: monitor.closed };
}
