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
import type { Observable } from 'rxjs';
import { Subject } from '../rx.js';
import { ConnectionClosedError, GreetingTimeoutError, HmpError, ProtocolError, StateError, UnsupportedError } from '../errors.js';
import { defaultLogger, isDebugEnabled, type Logger } from '../log.js';
import type { CloseInfo, ExecuteOptions, HmpOptions, Monitor, MonitorOptions } from '../monitor.js';
import { DRIVER_ORIGIN, PendingRequest } from '../request.js';
import { MonitorStateMachine, type MonitorState } from '../state.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../qmp/framer.js';
import type { QmpEvent } from '../qmp/wire.js';
import { checkHmpCommandLine } from './command-line.js';
import { closesMonitor, HMP_COMMANDS } from './commands.js';
import { hmpErrorText } from './error-text.js';
import { normaliseHmpOutput } from './output.js';
import { HmpReader } from './reader.js';

/** How much of what arrived a failed start quotes. */
const EVIDENCE_CHARS = 200;

class HmpRequest extends PendingRequest<string> {
  commandLine = '';
  /** QEMU answers this line by closing the connection. */
  closes = false;
}

/**
 * The Monitor for a raw HMP socket. Built by connect() when the peer greets
 * with QEMU's banner; `start()` must finish before commands are accepted.
 */
export class HmpMonitor implements Monitor {
  readonly protocol = 'hmp' as const;
  readonly greeting = null;
  readonly capabilities: readonly string[] = [];
  /** QEMU's banner, CRLF kept: `QEMU 7.2.22 monitor - type 'help' for more information\r\n`. */
  banner = '';
  /** QEMU's version from the banner (`7.2.22`), or null if the banner had none. */
  version: string | null = null;

  private readonly eventsSubject = new Subject<QmpEvent>();
  readonly events$: Observable<QmpEvent> = this.eventsSubject.asObservable();
  private readonly protocolErrorsSubject = new Subject<ProtocolError>();
  readonly protocolErrors$ = this.protocolErrorsSubject.asObservable();
  private readonly stateMachine: MonitorStateMachine;
  readonly state$: Observable<MonitorState>;
  readonly closed: Promise<CloseInfo>;

  private readonly logger: Logger;
  private readonly reader: HmpReader;
  private readonly commandTimeoutMs: number | undefined;
  private waiting: HmpRequest[] = [];
  private waitingHead = 0;
  private inFlight: HmpRequest | undefined;
  private closeExpected = false;
  private closedByCaller = false;
  private resolveClosed!: (info: CloseInfo) => void;
  /** Set while start() waits for the banner. */
  private startWaiter: { resolve(): void; reject(error: Error): void } | undefined;
  private seenAtStart = '';

  constructor(
    private readonly socket: Duplex,
    options: MonitorOptions,
    /** Names the monitor in logs and errors. */
    readonly label: string,
  ) {
    this.logger = options.logger ?? defaultLogger;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.stateMachine = new MonitorStateMachine(this.logger, label);
    this.state$ = this.stateMachine.state$;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
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
        oversize: (bytes, limit) => {
          const error = new ProtocolError(`HMP output of ${bytes}+ bytes exceeds maxMessageBytes (${limit}); connection closed`);
          this.reportProtocolError(error.message, '', error);
          this.finish({ expected: false, cause: error });
        },
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
  async start(firstBytes: Buffer, timeoutMs: number): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new GreetingTimeoutError(timeoutMs, this.seenAtStart)), timeoutMs);
      this.startWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
    this.attach(firstBytes);
    try {
      await ready;
    } catch (error) {
      this.finish({ expected: false, cause: error as Error });
      throw error;
    } finally {
      this.startWaiter = undefined;
    }
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
    if (opts.oob) throw new UnsupportedError(`${command}: out-of-band execution needs QMP; this is a human monitor (HMP)`);
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
      throw new UnsupportedError(`${command}: arguments must be a JSON object, got ${Array.isArray(args) ? 'an array' : typeof args}`);
    }
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

  close(): Promise<void> {
    if (this.stateMachine.current !== 'closed') {
      this.closedByCaller = true;
      this.finish({ expected: true }, new ConnectionClosedError('the monitor connection was closed by the caller'));
    }
    return this.closed.then(() => undefined);
  }

  /** Requests not yet settled (for tests and diagnostics). */
  get pendingCount(): number {
    let count = this.inFlight !== undefined && !this.inFlight.settled ? 1 : 0;
    for (let i = this.waitingHead; i < this.waiting.length; i++) if (!this.waiting[i]!.settled) count++;
    return count;
  }

  /** Queues a checked command line; resolves with its raw output (CRLF kept). */
  private run(commandLine: string, opts: HmpOptions, command: string): Promise<string> {
    const request = new HmpRequest(command, opts.origin ?? DRIVER_ORIGIN, opts, this.commandTimeoutMs);
    const state = this.stateMachine.current;
    if (state === 'closed') {
      request.reject(new ConnectionClosedError(`${command}: the monitor connection is closed`));
    } else if (state !== 'ready') {
      request.reject(new StateError(`${command}: the monitor is not ready (${state})`, state));
    } else {
      request.commandLine = commandLine;
      request.closes = closesMonitor(commandLine);
      this.waiting.push(request);
      this.pump();
    }
    return request.promise;
  }

  private pump(): void {
    while (this.inFlight === undefined && this.waitingHead < this.waiting.length) {
      const request = this.waiting[this.waitingHead++]!;
      if (request.settled) continue; // timed out or aborted before it was written: never sent
      this.inFlight = request;
      if (request.closes) this.closeExpected = true;
      this.reader.expectReply(request.commandLine === '');
      this.socket.write(`${request.commandLine}\n`);
    }
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }

  private attach(firstBytes: Buffer): void {
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('end', () => this.finish({ expected: this.closeExpected }));
    this.socket.on('error', (error: NodeJS.ErrnoException) => {
      const expected = this.closeExpected && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
      this.finish(expected ? { expected } : { expected, cause: error });
    });
    this.socket.on('close', () => this.finish({ expected: this.closeExpected }));
    if (firstBytes.length > 0) this.onData(firstBytes);
    this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    if (this.startWaiter !== undefined && this.seenAtStart.length < EVIDENCE_CHARS) {
      this.seenAtStart += chunk.toString('latin1', 0, EVIDENCE_CHARS - this.seenAtStart.length);
    }
    this.reader.push(chunk);
  }

  private onBanner(banner: string): void {
    this.banner = banner;
    this.version = /^QEMU (\S+) monitor/.exec(banner)?.[1] ?? null;
    this.stateMachine.transition('negotiating', 'banner received');
    this.stateMachine.transition('ready', 'prompt received');
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

  private reportProtocolError(message: string, evidence: string, error = new ProtocolError(message, evidence)): void {
    this.logger.warn({ monitor: this.label, evidence: evidence.slice(0, EVIDENCE_CHARS) }, message);
    this.protocolErrorsSubject.next(error);
  }

  /** Ends the session once: settles every request, completes every stream. */
  private finish(info: CloseInfo, pendingError?: Error): void {
    if (this.stateMachine.current === 'closed') return;
    const partial = this.reader.end();
    if (partial !== '' && !this.inFlight?.closes) {
      this.reportProtocolError('connection ended in the middle of HMP output; partial output discarded', partial);
    }
    const expected = info.expected || this.closedByCaller;
    const error =
      pendingError ??
      new ConnectionClosedError(
        expected ? 'the monitor closed the connection' : `the monitor connection was lost${info.cause ? `: ${info.cause.message}` : ''}`,
        { cause: info.cause },
      );
    const written = this.inFlight;
    const pending = [...(written ? [written] : []), ...this.waiting.slice(this.waitingHead)];
    this.inFlight = undefined;
    this.waiting = [];
    this.waitingHead = 0;
    this.stateMachine.transition('closed', info.cause?.message ?? (expected ? 'closed' : 'connection lost'));
    for (const request of pending) {
      // quit is answered by the close itself (docs/monitor-facts.md §3: echo, then EOF).
      if (request === written && request.closes && !this.closedByCaller) request.resolve('');
      else request.reject(error);
    }
    this.startWaiter?.reject(new ConnectionClosedError('the monitor closed the connection before its banner', { cause: info.cause }));
    this.eventsSubject.complete();
    this.protocolErrorsSubject.complete();
    this.socket.destroy();
    this.resolveClosed(info.cause && !expected ? { expected, cause: info.cause } : { expected });
  }
}
