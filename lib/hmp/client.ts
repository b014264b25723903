/**
 * A human-monitor (HMP) session over one stream: banner, one command at a
 * time, close. It implements the same Monitor as the QMP client, so callers
 * need not care which socket they were given:
 *
 * - `hmp(line)` types the line and resolves with its output, CRLF → LF
 *   (lib/hmp/output.ts). Lines the line editor would misread are refused
 *   before anything is written (lib/hmp/command-line.ts).
 * - `execute()` runs the QMP commands that have an HMP twin
 *   (lib/hmp/commands.ts) and returns what QMP would; anything else is
 *   UnsupportedError naming the command.
 * - `events$` never emits: HMP prints no asynchronous output (docs/monitor-facts.md §3).
 *
 * One command at a time: the echo and the prompt are the only framing HMP
 * has, so a second line written before the prompt would interleave with the
 * first one's output. A request that times out or is aborted keeps its place
 * until QEMU's prompt comes back; its late output is dropped, never handed
 * to the next caller.
 *
 *   waiting (local) ──pump──▶ inFlight (one) ──prompt──▶ settled, pump again
 *
 * States: connecting → negotiating (banner read) → ready (first prompt) →
 * closed, as for QMP.
 */
import type { Duplex } from 'node:stream';
import { HmpError, GreetingTimeoutError, ProtocolError, UnsupportedError } from '../errors.js';
import { isDebugEnabled } from '../log.js';
import type { ExecuteOptions, HmpOptions, Monitor, MonitorOptions } from '../contract.js';
import { PendingRequest } from '../request.js';
import { EVIDENCE_CHARS, MonitorSession } from '../session/monitor-session.js';
import { hmpLineTakesFds, requestedFds } from '../session/fd-rules.js';
import type { FdPassing } from '../transport.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../qmp/framer.js';
import { checkHmpCommandLine } from './command-line.js';
import { closesMonitor, HMP_COMMANDS } from './commands.js';
import { hmpErrorText } from './error-text.js';
import { normaliseHmpOutput } from './output.js';
import { HmpReader } from './reader.js';

class HmpRequest extends PendingRequest<string> {
  commandLine = '';
  /** QEMU answers this line by closing the connection. */
  closes = false;
  /** File descriptors to send with the line. */
  fds: readonly number[] | undefined;
}

/**
 * The Monitor for a raw HMP socket. Built by connect() when the peer greets
 * with QEMU's banner; `start()` must finish before commands are accepted.
 */
export class HmpMonitor extends MonitorSession<HmpRequest> implements Monitor {
  readonly protocol = 'hmp' as const;
  readonly greeting = null;
  readonly capabilities: readonly string[] = [];
  readonly raw = null;
  readonly relay = null;
  /** QEMU's banner, CRLF kept: `QEMU 7.2.22 monitor - type 'help' for more information\r\n`. */
  banner = '';
  /** QEMU's version from the banner (`7.2.22`), or null if the banner had none. */
  version: string | null = null;

  private readonly reader: HmpReader;
  private inFlight: HmpRequest | undefined;
  /** Set while start() waits for the banner. */
  private startWaiter: { resolve(): void; reject(error: Error): void } | undefined;
  private seenAtStart = '';

  constructor(socket: Duplex, options: MonitorOptions, label: string, fdPassing?: FdPassing) {
    super(socket, options, label, 'monitor', fdPassing);
    this.reader = new HmpReader(
      {
        banner: (text) => this.onBanner(text),
        notBanner: (seen) =>
          this.failStart(
            new ProtocolError(
              `${label} is not a QEMU human monitor: expected a "QEMU " banner and a "(qemu) " prompt, got ${JSON.stringify(seen.slice(0, 80))}`,
              seen.slice(0, EVIDENCE_CHARS),
            ),
          ),
        reply: (output) => this.onReply(output),
        unexpected: (text) => this.reportProtocolError('output from the human monitor while no command was running', text),
        oversize: (bytes, limit) => this.failOversize('HMP output', bytes, limit),
      },
      { maxOutputBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES },
    );
  }

  /**
   * Reads the banner and first prompt (which may begin in `firstBytes`).
   * Resolves when ready; rejects with GreetingTimeoutError, ProtocolError
   * (not a human monitor) or ConnectionClosedError, and then the monitor is
   * closed.
   */
  start(firstBytes: Buffer, timeoutMs: number): Promise<void> {
    const bannerRead = new Promise<void>((resolve, reject) => (this.startWaiter = { resolve, reject }));
    return this.startSession(timeoutMs, firstBytes, () => bannerRead).finally(() => (this.startWaiter = undefined));
  }

  protected override startTimeoutError(timeoutMs: number): Error {
    return new GreetingTimeoutError(timeoutMs, this.seenAtStart);
  }

  protected override get closedDuringStartMessage(): string {
    return 'the monitor closed the connection before its banner';
  }

  protected override noOobMessage(command: string): string {
    return `${command}: out-of-band execution needs QMP; this is a human monitor (HMP)`;
  }

  /**
   * Runs one of the QMP commands mapped to HMP (lib/hmp/commands.ts) and
   * resolves with the value QMP would return. Rejects with UnsupportedError
   * (any other command, `oob`, or a line HMP cannot take), QmpError (HMP
   * printed an error), ProtocolError (unreadable output), TimeoutError,
   * AbortError or ConnectionClosedError.
   */
  async execute<T = unknown>(command: string, args?: object, opts: ExecuteOptions = {}): Promise<T> {
    const mapped = HMP_COMMANDS.get(command);
    if (mapped === undefined) {
      throw new UnsupportedError(
        `${command}: not available on a human monitor (HMP); execute() there supports ${[...HMP_COMMANDS.keys()].join(', ')}, and hmp() runs any command line`,
      );
    }
    if (opts.oob) throw new UnsupportedError(this.noOobMessage(command));
    this.checkArguments(command, args);
    const commandLine = mapped.commandLine(command, (args ?? {}) as Record<string, unknown>);
    checkHmpCommandLine(commandLine);
    const output = await this.run(commandLine, opts, command);
    return mapped.parse(command, output, { version: this.version }) as T;
  }

  /**
   * Types `commandLine` and resolves with its output, each `\r\n` turned
   * into `\n`. HMP's error text is returned as it is, unless `throwOnError`
   * makes it an HmpError. `quit` resolves with '' once QEMU has closed the
   * connection. Rejects with UnsupportedError (control characters, TAB, ESC,
   * newlines, over HMP_MAX_LINE_BYTES; nothing sent), TimeoutError,
   * AbortError or ConnectionClosedError.
   */
  async hmp(commandLine: string, opts: HmpOptions = {}): Promise<string> {
    checkHmpCommandLine(commandLine);
    const output = normaliseHmpOutput(await this.run(commandLine, opts, commandLine));
    if (opts.throwOnError && hmpErrorText(output) !== null) throw new HmpError(commandLine, output);
    return output;
  }

  /** Queues a checked command line; resolves with its raw output (CRLF kept). */
  private run(commandLine: string, opts: HmpOptions, command: string): Promise<string> {
    const request = new HmpRequest(command, this.originOf(opts), opts, this.commandTimeoutMs);
    const fds = requestedFds(opts.fds);
    request.fds = fds;
    request.commandLine = commandLine;
    request.closes = closesMonitor(commandLine);
    // With fds, the line itself says whether it takes them (`getfd NAME`), whatever execute() was asked.
    return this.admit(request, opts, fds === undefined ? command : commandLine);
  }

  protected override pump(): void {
    if (this.inFlight !== undefined) return;
    const request = this.waiting.takeUnsettled(); // one timed out or aborted before it was written is never sent
    if (request === undefined) return;
    this.inFlight = request;
    if (request.closes) this.closeExpected = true;
    this.reader.expectReply(request.commandLine === '');
    if (request.fds === undefined) {
      this.socket.write(`${request.commandLine}\n`);
      return;
    }
    const fds = request.fds;
    this.fdWriter!.write(
      `${request.commandLine}\n`,
      () => (request.settled ? [] : fds),
      (error) => {
        if (error !== undefined) request.reject(error);
      },
    );
  }

  protected override takesFds(commandLine: string): boolean {
    return hmpLineTakesFds(commandLine);
  }

  protected override get fdCommandsText(): string {
    return 'on the human monitor only a getfd line takes them';
  }

  protected override writtenPendingCount(): number {
    return this.inFlight !== undefined && !this.inFlight.settled ? 1 : 0;
  }

  protected override takeWritten(): HmpRequest[] {
    const written = this.inFlight;
    this.inFlight = undefined;
    return written ? [written] : [];
  }

  protected override settleOnClose(request: HmpRequest, error: Error, written: boolean): void {
    // quit is answered by the close itself (docs/monitor-facts.md §3: echo, then EOF).
    if (written && request.closes && !this.closedByCaller) request.resolve('');
    else request.reject(error);
  }

  protected override onData(chunk: Buffer): void {
    if (this.startWaiter !== undefined && this.seenAtStart.length < EVIDENCE_CHARS) {
      this.seenAtStart += chunk.toString('latin1', 0, EVIDENCE_CHARS - this.seenAtStart.length);
    }
    this.reader.push(chunk);
  }

  protected override endInput(): void {
    const partial = this.reader.end();
    if (partial !== '' && !this.inFlight?.closes) {
      this.reportProtocolError('connection ended in the middle of HMP output; partial output discarded', partial);
    }
  }

  private onBanner(banner: string): void {
    this.banner = banner;
    this.version = /^QEMU (\S+) monitor/.exec(banner)?.[1] ?? null;
    this.stateMachine.transition('negotiating', 'banner received');
    this.startWaiter?.resolve();
  }

  private failStart(error: Error): void {
    if (this.startWaiter !== undefined) this.startWaiter.reject(error);
    else this.finish({ expected: false, cause: error });
  }

  private onReply(output: string): void {
    const request = this.inFlight;
    this.inFlight = undefined;
    if (request === undefined) {
      this.reportProtocolError('output from the human monitor while no command was running', output);
    } else if (!request.resolve(output) && isDebugEnabled(this.logger)) {
      this.logger.debug({ monitor: this.label, command: request.command }, 'late output of a settled command dropped');
    }
    this.pump();
  }
}
