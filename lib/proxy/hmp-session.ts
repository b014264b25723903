/**
 * One downstream text-monitor (HMP) client: QEMU's banner and `(qemu) `
 * prompt, then each line it types run as a human-monitor command, with the
 * output and a fresh prompt sent back.
 *
 * Unlike QEMU's own HMP socket there is no line editor: no echo of the
 * typed line and no terminal escapes (docs/monitor-facts.md §3), so `socat` and scripts
 * read plain output. `\r`, `\n` and `\r\n` each end one line; an empty line
 * gets just a prompt; a line is cut at 4,095 bytes as QEMU's editor cuts it.
 * Lines typed ahead run in order, each output followed by its prompt; they
 * are cut from the input only as they can run (at most maxPendingCommands
 * running or waiting behind one), and no more input is read meanwhile.
 *
 * Over a QMP upstream each line goes through `human-monitor-command` (its
 * output kept byte for byte, CRLF line ends as QEMU prints them); over a
 * text-only upstream, through that monitor itself.
 */
import type { Socket } from 'node:net';
import { AbortError, QmpxError } from '../errors.js';
import { HMP_MAX_LINE_BYTES } from '../hmp/command-line.js';
import { HMP_PROMPT } from '../hmp/reader.js';
import { Fifo } from '../fifo.js';
import type { AuditOutcome } from './audit.js';
import { Outbound } from './outbound.js';
import { UPSTREAM_LOST_DESC } from './qmp-forwarding.js';
import type { StateMachine, Transitions } from '../state.js';
import {
  abortControllerForMany,
  allocateSessionId,
  downstreamOrigin,
  sessionStateMachine,
  type DownstreamSession,
  type SessionContext,
} from './session.js';
import type { UpstreamLink } from './upstream.js';

export type HmpSessionState = 'queued' | 'ready' | 'closed';

const NEXT_STATES: Transitions<HmpSessionState> = {
  queued: ['ready', 'closed'],
  ready: ['closed'],
  closed: [],
};

/** A line's place in the output order; `text` is set once its output is known. */
interface OutputSlot {
  text: string | undefined;
}

export class HmpSession implements DownstreamSession {
  readonly id = allocateSessionId();
  readonly protocol = 'hmp' as const;
  private readonly machine: StateMachine<HmpSessionState>;
  private linkValue: UpstreamLink | undefined;
  private readonly outbound: Outbound;
  /**
   * Input read and not yet cut into lines (latin1, one char per byte), from
   * `inputOffset` on. Lines are cut from it only as they can be run, and
   * the socket is not read while any of it is left: what a client has
   * typed ahead waits here, bounded by one read.
   */
  private input = '';
  private inputOffset = 0;
  /** Bytes of the line being typed, up to HMP_MAX_LINE_BYTES. */
  private partial = '';
  private lastWasCarriageReturn = false;
  /**
   * Lines running or answered but waiting behind an earlier one, in input
   * order; at most maxPendingCommands.
   */
  private readonly slots = new Fifo<OutputSlot>();
  private readingStopped = false;
  private outputBackpressure = false;
  private reading = false;
  /** The client shut down its side: answer the lines it sent, then close. */
  private inputEnded = false;
  private readonly abort = abortControllerForMany();
  readonly closed: Promise<void>;

  constructor(
    readonly socket: Socket,
    private readonly context: SessionContext,
  ) {
    this.machine = sessionStateMachine('HMP', 'queued', NEXT_STATES, context, this.id);
    socket.pause();
    this.outbound = new Outbound(socket, {
      maxBufferedBytes: context.maxBufferedBytes,
      onOverflow: (bytes) => {
        context.logger.warn(
          { monitor: context.monitorName(), socket: context.endpoint, client: this.id, bufferedBytes: bytes },
          'client is not reading; disconnected (outbound buffer full)',
        );
        context.observer?.slowConsumerDisconnected();
      },
      onBackpressure: (paused) => {
        this.outputBackpressure = paused;
        if (paused) this.updateReading();
        else this.runLines();
      },
    });
    socket.on('data', (chunk: Buffer) => this.onInput(chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      if (this.state === 'queued') return this.destroy();
      this.inputEnded = true;
      this.runLines();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.machine.tryTransition('closed', 'client connection closed');
        this.input = '';
        this.inputOffset = 0;
        this.abort.abort();
        resolve();
      }),
    );
    this.updateReading();
  }

  get link(): UpstreamLink | undefined {
    return this.linkValue;
  }

  private get state(): HmpSessionState {
    return this.machine.current;
  }

  /** Lines running or waiting for an earlier one, plus one for input not yet cut into lines. */
  get pendingCount(): number {
    return this.slots.length + (this.inputOffset < this.input.length ? 1 : 0);
  }

  greet(link: UpstreamLink): void {
    if (this.state !== 'queued') return;
    this.linkValue = link;
    this.machine.transition('ready', 'greeted');
    this.outbound.write(`${bannerFor(link)}${HMP_PROMPT}`);
    this.runLines();
  }

  /** HMP prints no asynchronous output (docs/monitor-facts.md §3). */
  deliverEvent(): void {}

  upstreamLost(): void {
    if (this.state === 'closed') return;
    // Lines already running get an error in their place before the end, as QMP clients get error replies.
    for (let slot = this.slots.shift(); slot !== undefined; slot = this.slots.shift()) {
      this.outbound.write(slot.text ?? `Error: ${UPSTREAM_LOST_DESC}\r\n${HMP_PROMPT}`);
    }
    this.machine.transition('closed', 'upstream lost');
    this.outbound.end();
  }

  stopReading(): void {
    this.readingStopped = true;
    this.updateReading();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onInput(bytes: string): void {
    this.input = this.inputOffset < this.input.length ? this.input.slice(this.inputOffset) + bytes : bytes;
    this.inputOffset = 0;
    this.runLines();
  }

  /**
   * Cuts the next complete line from the input (decoded as UTF-8), or
   * returns undefined once the input holds none; an unfinished line is kept
   * in `partial`.
   */
  private nextLine(): string | undefined {
    const { input } = this;
    let start = this.inputOffset;
    if (this.lastWasCarriageReturn && start < input.length) {
      this.lastWasCarriageReturn = false;
      if (input.charCodeAt(start) === 0x0a) start++;
    }
    for (let i = start; i < input.length; i++) {
      const c = input.charCodeAt(i);
      if (c !== 0x0d && c !== 0x0a) continue;
      this.lastWasCarriageReturn = c === 0x0d;
      this.inputOffset = i + 1;
      const line = this.keep(input, start, i);
      this.partial = '';
      return line === '' ? line : Buffer.from(line, 'latin1').toString('utf8');
    }
    this.partial = this.keep(input, start, input.length);
    this.input = '';
    this.inputOffset = 0;
    return undefined;
  }

  /** `partial` followed by input[start, end), cut at HMP_MAX_LINE_BYTES as QEMU's line editor cuts it. */
  private keep(input: string, start: number, end: number): string {
    const room = HMP_MAX_LINE_BYTES - this.partial.length;
    return room <= 0 ? this.partial : this.partial + input.slice(start, Math.min(end, start + room));
  }

  private runLines(): void {
    while (this.state === 'ready' && !this.outputBackpressure && this.slots.length < this.context.maxPendingCommands) {
      const line = this.nextLine();
      if (line === undefined) break;
      if (line.trim() === '') {
        this.answer(HMP_PROMPT);
        continue;
      }
      const slot: OutputSlot = { text: undefined };
      this.slots.push(slot);
      this.run(line).then(
        (output) => this.settle(slot, `${output}${HMP_PROMPT}`),
        (error: unknown) => {
          if (error instanceof AbortError) return;
          this.settle(slot, `${error instanceof QmpxError ? error.message : String(error)}\r\n${HMP_PROMPT}`);
        },
      );
    }
    this.updateReading();
    if (this.inputEnded && this.state === 'ready' && this.inputOffset >= this.input.length && this.slots.length === 0) {
      this.outbound.end();
    }
  }

  /** Runs one line upstream; resolves with its output, CRLF line ends as QEMU prints them. */
  private async run(line: string): Promise<string> {
    const link = this.linkValue!;
    const options = { origin: downstreamOrigin(this.id, this.context.endpoint), signal: this.abort.signal };
    const startedAt = this.context.observer === undefined ? undefined : performance.now();
    if (startedAt !== undefined) this.context.observer?.commandSent('human-monitor-command', startedAt);
    try {
      let output: string;
      if (link.qmp !== null) {
        const reply = await link.qmp.send('human-monitor-command', JSON.stringify({ 'command-line': line }), options);
        if (reply.kind === 'error') {
          this.audit(line, 'error', reply.message.error.class, startedAt);
          return `Error: ${reply.message.error.desc}\r\n`;
        }
        output = typeof reply.message.return === 'string' ? reply.message.return : '';
      } else {
        const text = await link.monitor.hmp(line, options);
        output = text === '' ? '' : `${text.replace(/\r?\n/g, '\r\n')}${text.endsWith('\n') ? '' : '\r\n'}`;
      }
      this.audit(line, 'ok', undefined, startedAt);
      return output;
    } catch (error) {
      this.audit(line, error instanceof AbortError ? 'dropped' : 'lost', undefined, startedAt);
      throw error;
    }
  }

  private audit(line: string, outcome: AuditOutcome, errorClass?: string, startedAt?: number): void {
    const { audit } = this.context;
    this.context.observer?.commandSettled('human-monitor-command', outcome, startedAt);
    audit.record({
      monitor: this.context.monitorName(),
      socket: this.context.endpoint,
      client: this.id,
      command: 'human-monitor-command',
      outcome,
      errorClass,
      argumentsJson: audit.recordsArguments ? JSON.stringify({ 'command-line': line }) : undefined,
    });
  }

  /** Writes `text` now, or keeps its place behind lines still running. */
  private answer(text: string): void {
    if (this.slots.length === 0) this.outbound.write(text);
    else this.slots.push({ text });
  }

  private settle(slot: OutputSlot, text: string): void {
    slot.text = text;
    for (let next = this.slots.peek(); next?.text !== undefined; next = this.slots.peek()) {
      this.slots.shift();
      this.outbound.write(next.text);
    }
    this.runLines();
  }

  private updateReading(): void {
    // Read even while queued (typed lines wait), so that a client leaving is noticed.
    const read = this.state !== 'closed' && !this.readingStopped && !this.outputBackpressure && this.inputOffset >= this.input.length;
    if (read === this.reading) return;
    this.reading = read;
    if (read) this.socket.resume();
    else this.socket.pause();
  }
}

/** QEMU's HMP banner line: the upstream's own, or built from the QMP greeting's version. */
export function bannerFor(link: UpstreamLink): string {
  const banner = link.monitor.banner;
  if (banner !== null && banner !== '') return banner;
  const version = link.monitor.greeting?.QMP.version.qemu;
  const text = version ? `${version.major}.${version.minor}.${version.micro}` : 'unknown';
  return `QEMU ${text} monitor - type 'help' for more information\r\n`;
}
