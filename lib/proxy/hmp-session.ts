/**
 * One downstream text-monitor (HMP) client: QEMU's banner and `(qemu) `
 * prompt, then each line it types run as a human-monitor command, with the
 * output and a fresh prompt sent back.
 *
 * Unlike QEMU's own HMP socket there is no line editor: no echo of the
 * typed line and no terminal escapes (FACTS §3), so `socat` and scripts
 * read plain output. `\r`, `\n` and `\r\n` each end one line; an empty line
 * gets just a prompt; a line is cut at 4,095 bytes as QEMU's editor cuts it.
 * Lines typed ahead run in order, each output followed by its prompt.
 *
 * Over a QMP upstream each line goes through `human-monitor-command` (its
 * output kept byte for byte, CRLF line ends as QEMU prints them); over a
 * text-only upstream, through that monitor itself.
 */
import type { Socket } from 'node:net';
import { AbortError, QmpxError } from '../errors.js';
import { HmpMonitor } from '../hmp/client.js';
import { HMP_MAX_LINE_BYTES } from '../hmp/command-line.js';
import { HMP_PROMPT } from '../hmp/reader.js';
import type { AuditOutcome } from './audit.js';
import { Outbound } from './outbound.js';
import { UPSTREAM_LOST_DESC } from './qmp-session.js';
import { abortControllerForMany, allocateSessionId, downstreamOrigin, type DownstreamSession, type SessionContext } from './session.js';
import type { UpstreamLink } from './upstream.js';

export type HmpSessionState = 'queued' | 'ready' | 'closed';

export class HmpSession implements DownstreamSession {
  readonly id = allocateSessionId();
  private state: HmpSessionState = 'queued';
  private linkValue: UpstreamLink | undefined;
  private readonly outbound: Outbound;
  /** Bytes of the line being typed (latin1, one char per byte). */
  private partial = '';
  private lastWasCarriageReturn = false;
  private lines: string[] = [];
  private slots: Array<{ text: string | undefined }> = [];
  private running = 0;
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
    socket.pause();
    this.outbound = new Outbound(socket, {
      maxBufferedBytes: context.maxBufferedBytes,
      onOverflow: (bytes) =>
        context.logger.warn(
          { monitor: context.monitorName(), socket: context.endpoint, client: this.id, bufferedBytes: bytes },
          'client is not reading; disconnected (outbound buffer full)',
        ),
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
        this.state = 'closed';
        this.lines = [];
        this.abort.abort();
        resolve();
      }),
    );
    this.updateReading();
  }

  get link(): UpstreamLink | undefined {
    return this.linkValue;
  }

  get pendingCount(): number {
    return this.running + this.lines.length;
  }

  greet(link: UpstreamLink): void {
    if (this.state !== 'queued') return;
    this.linkValue = link;
    this.state = 'ready';
    this.outbound.write(`${bannerFor(link)}${HMP_PROMPT}`);
    this.runLines();
  }

  /** HMP prints no asynchronous output (FACTS §3). */
  deliverEvent(): void {}

  upstreamLost(): void {
    if (this.state === 'closed') return;
    // Lines already running get an error in their place before the end, as QMP clients get error replies.
    for (const slot of this.slots) slot.text ??= `Error: ${UPSTREAM_LOST_DESC}\r\n${HMP_PROMPT}`;
    this.flush();
    this.state = 'closed';
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
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes.charCodeAt(i);
      if (c === 0x0a && this.lastWasCarriageReturn) {
        this.lastWasCarriageReturn = false;
        continue;
      }
      this.lastWasCarriageReturn = c === 0x0d;
      if (c === 0x0d || c === 0x0a) {
        this.lines.push(Buffer.from(this.partial, 'latin1').toString('utf8'));
        this.partial = '';
      } else if (this.partial.length < HMP_MAX_LINE_BYTES) {
        this.partial += bytes[i];
      }
    }
    this.runLines();
  }

  private runLines(): void {
    while (this.state === 'ready' && !this.outputBackpressure && this.lines.length > 0 && this.running < this.context.maxPendingCommands) {
      const line = this.lines.shift()!;
      const slot: { text: string | undefined } = { text: undefined };
      this.slots.push(slot);
      if (line.trim() === '') {
        slot.text = HMP_PROMPT;
        continue;
      }
      this.running++;
      this.run(line).then(
        (output) => this.settle(slot, `${output}${HMP_PROMPT}`),
        (error: unknown) => {
          if (error instanceof AbortError) return;
          this.settle(slot, `${error instanceof QmpxError ? error.message : String(error)}\r\n${HMP_PROMPT}`);
        },
      );
    }
    this.flush();
    this.updateReading();
    if (this.inputEnded && this.state === 'ready' && this.lines.length === 0 && this.running === 0 && this.slots.length === 0) {
      this.outbound.end();
    }
  }

  /** Runs one line upstream; resolves with its output, CRLF line ends as QEMU prints them. */
  private async run(line: string): Promise<string> {
    const link = this.linkValue!;
    const options = { origin: downstreamOrigin(this.id, this.context.endpoint), signal: this.abort.signal };
    try {
      let output: string;
      if (link.qmp !== null) {
        const reply = await link.qmp.send('human-monitor-command', JSON.stringify({ 'command-line': line }), options);
        if (reply.kind === 'error') {
          this.audit(line, 'error', reply.message.error.class);
          return `Error: ${reply.message.error.desc}\r\n`;
        }
        output = typeof reply.message.return === 'string' ? reply.message.return : '';
      } else {
        const text = await (link.monitor as HmpMonitor).hmp(line, options);
        output = text === '' ? '' : `${text.replace(/\r?\n/g, '\r\n')}${text.endsWith('\n') ? '' : '\r\n'}`;
      }
      this.audit(line, 'ok');
      return output;
    } catch (error) {
      this.audit(line, error instanceof AbortError ? 'dropped' : 'lost');
      throw error;
    }
  }

  private audit(line: string, outcome: AuditOutcome, errorClass?: string): void {
    const { audit } = this.context;
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

  private settle(slot: { text: string | undefined }, text: string): void {
    this.running--;
    slot.text = text;
    this.flush();
    this.runLines();
  }

  private flush(): void {
    while (this.slots.length > 0 && this.slots[0]!.text !== undefined) this.outbound.write(this.slots.shift()!.text!);
  }

  private updateReading(): void {
    // Read even while queued (typed lines wait), so that a client leaving is noticed.
    const read = this.state !== 'closed' && !this.readingStopped && !this.outputBackpressure && this.lines.length === 0;
    if (read === this.reading) return;
    this.reading = read;
    if (read) this.socket.resume();
    else this.socket.pause();
  }
}

/** QEMU's HMP banner line: the upstream's own, or built from the QMP greeting's version. */
export function bannerFor(link: UpstreamLink): string {
  if (link.monitor instanceof HmpMonitor && link.monitor.banner !== '') return link.monitor.banner;
  const version = link.qmp?.greeting?.QMP.version.qemu;
  const text = version ? `${version.major}.${version.minor}.${version.micro}` : 'unknown';
  return `QEMU ${text} monitor - type 'help' for more information\r\n`;
}
