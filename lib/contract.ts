/**
 * What a monitor connection offers its users, whatever it speaks: the
 * Monitor, and the typed capabilities some monitors add (the raw command
 * path of QMP and the guest agent, the proxy's relay path of QMP). Types
 * only: callers depend on these, never on the classes that implement them.
 */
import type { Observable } from 'rxjs';
import type { ProtocolError } from './errors.js';
import type { Logger } from './log.js';
import type { RequestOrigin, RequestOutcome } from './request.js';
import type { MonitorState } from './state.js';
import type { QmpEvent, QmpGreeting, WireMessage } from './qmp/wire.js';
import type { CommandRest, CommandReturn, KnownCommand, UnknownCommand } from './qapi/typed.js';
import type { ValidateMode, ValidationOptions } from './qapi/validate.js';

export type { QmpEvent, QmpGreeting } from './qmp/wire.js';

export type MonitorProtocol = 'qmp' | 'hmp' | 'qga';

/** `validate` and `compat`: argument checks against QEMU's schema (lib/qapi/validate.ts). */
export interface MonitorOptions extends ValidationOptions {
  /** 'auto' (default): QMP or HMP, decided by the first bytes the monitor sends. */
  protocol?: 'auto' | MonitorProtocol;
  /** Deadline for connecting plus the greeting and negotiation, in ms. Default 5000. */
  greetingTimeoutMs?: number;
  /** Negotiate out-of-band execution when QEMU offers it. Default true. */
  oob?: boolean;
  /** Largest message accepted from the monitor, in bytes. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Default deadline for every command, in ms. Default: none. */
  commandTimeoutMs?: number;
  /** Put a qmpx id on every command, not just exec-oob (for reading wire traces). Default false. */
  wireIds?: boolean;
  /** In-band commands written before their replies arrive; the rest wait locally. Default 8. */
  maxInFlight?: number;
  /** Where diagnostics go; pino-compatible. Default: warnings and errors to stderr. */
  logger?: Logger;
  /**
   * Open the unix socket so that commands may carry file descriptors
   * (`fds`). Loads the FFI module (koffi) when connecting; reads and writes
   * stay Node's. Refused for TCP targets and provided sockets. Default false.
   */
  fdPassing?: boolean;
}

export interface ExecuteOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Send as `exec-oob`; only when OOB was negotiated. */
  oob?: boolean;
  /** Who is asking, for logs and audit. Default: the driver. */
  origin?: RequestOrigin;
  /** Overrides the connection's `validate` for this call. */
  validate?: ValidateMode;
  /**
   * File descriptors sent with this command's bytes (SCM_RIGHTS): only
   * with `getfd` and `add-fd`, on a connection opened with `fdPassing`.
   * They stay the caller's; the caller may close them once the request has
   * settled (see README, "File descriptors").
   */
  fds?: readonly number[];
}

/** Options of a command whose arguments are already JSON text. */
export type RawRequestOptions = ExecuteOptions;

export interface HmpOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Reject with HmpError when the output is the monitor's error text. Default false. */
  throwOnError?: boolean;
  origin?: RequestOrigin;
  /** File descriptors sent with the line, as `ExecuteOptions.fds` (a `getfd` line on a human-monitor socket). */
  fds?: readonly number[];
}

/** How a connection ended. */
export interface CloseInfo {
  /** True for close(), quit, SHUTDOWN, a shutdown of the guest or SIGTERM; false for an unexpected loss. */
  expected: boolean;
  /** What ended it, when it was not close(). */
  cause?: Error;
}

/** A reply exactly as QEMU (or the guest agent) sent it, return or error. */
export type QmpReply = Extract<WireMessage, { kind: 'return' | 'error' }>;

/** An event with the exact text QEMU sent, for consumers that forward bytes. */
export interface QmpEventFrame {
  event: QmpEvent;
  text: string;
}

/** Commands whose arguments are already serialised JSON, answered with the reply as sent (QMP and guest agent). */
export interface RawCommands {
  /**
   * Sends `command` with `argumentsJson` kept as given (number tokens survive
   * exactly) and resolves with the reply, error replies included. Rejects
   * with UnsupportedError, StateError, TimeoutError, AbortError or
   * ConnectionClosedError.
   */
  send(command: string, argumentsJson: string | undefined, opts?: RawRequestOptions): Promise<QmpReply>;
}

/** A QMP monitor seen from a proxy that relays it byte for byte: the Monitor, and its wire texts. */
export interface QmpRelay extends Monitor, RawCommands {
  readonly protocol: 'qmp';
  /** The greeting exactly as QEMU sent it (without its line end), for proxies that greet downstream. */
  readonly greetingText: string | null;
  /** Events with their exact wire text, in wire order. */
  readonly eventFrames$: Observable<QmpEventFrame>;
  /**
   * send() with the outcome given to `onSettled` as it happens, in wire
   * order with the events around it; a success reply may come as QEMU's
   * text, parsed only when its `message` is read.
   */
  sendWithCallback(
    command: string,
    argumentsJson: string | undefined,
    opts: RawRequestOptions,
    onSettled: (outcome: RequestOutcome<QmpReply>) => void,
  ): void;
}

export interface Monitor {
  readonly protocol: MonitorProtocol;
  /** Names the monitor in logs and errors (its socket, usually). */
  readonly label: string;
  /** Where this monitor's diagnostics go. */
  readonly logger: Logger;
  /** The QMP greeting; null on hmp and qga. */
  readonly greeting: QmpGreeting | null;
  /** The human monitor's banner line as QEMU sent it (CRLF kept); null on qmp and qga. */
  readonly banner: string | null;
  /** Capabilities negotiated; [] on hmp and qga. */
  readonly capabilities: readonly string[];
  /** Whether commands may carry file descriptors (`fds`): connected with `fdPassing` over a unix socket; never on qga. */
  readonly fdPassing: boolean;
  /** The run state now. */
  readonly state: MonitorState;
  /** Requests not yet settled. */
  readonly pendingCount: number;
  /** Every event, in wire order; hot; completes on close. Never emits on hmp. */
  readonly events$: Observable<QmpEvent>;
  /** connecting → negotiating → ready → closed; replays the current state. */
  readonly state$: Observable<MonitorState>;
  /** Messages from the monitor that settled nothing or broke the protocol. */
  readonly protocolErrors$: Observable<ProtocolError>;
  /** Settles once the connection has ended. */
  readonly closed: Promise<CloseInfo>;
  /** The raw command path (QMP and guest agent); null on hmp. */
  readonly raw: RawCommands | null;
  /** The relay path a proxy forwards through (QMP); null on hmp and qga. */
  readonly relay: QmpRelay | null;
  /** Runs a command; resolves with its `return` value, rejects with QmpError on an error reply. */
  execute<C extends KnownCommand>(command: C, ...rest: CommandRest<C, ExecuteOptions>): Promise<CommandReturn<C>>;
  execute<T = unknown, C extends string = string>(command: UnknownCommand<C>, args?: object, opts?: ExecuteOptions): Promise<T>;
  /** Runs a human-monitor command line and resolves with its text output. */
  hmp(commandLine: string, opts?: HmpOptions): Promise<string>;
  /** Ends the connection; pending requests reject with ConnectionClosedError. Idempotent. */
  close(): Promise<void>;
}

/** A guest agent (qemu-ga): a Monitor with the raw command path and on-demand resynchronisation. */
export interface GuestAgent extends Monitor, RawCommands {
  readonly protocol: 'qga';
  readonly raw: RawCommands;
  /** Resynchronises now, after the commands already queued (the agent in the guest may have restarted). */
  resync(opts?: RawRequestOptions): Promise<void>;
}
