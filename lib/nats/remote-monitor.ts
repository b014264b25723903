/**
 * A VM's monitor reached over NATS, through the `qmpx serve --nats` that
 * serves it: the Monitor interface where a request-reply broker can offer
 * it.
 *
 *   execute / raw.send   request on qmpx.<host>.<vm>.cmd.<command> (or .ro. with readOnly)
 *   hmp                  on .human-monitor-command of that class, the line as the body (header Qmpx-Format: hmp)
 *   events$              subscription to qmpx.<host>.<vm>.evt.*, in the order the serve published
 *   state, closed        the NATS connection's: ready while it is open, closed when it ends
 *
 * What a broker cannot give: there is no greeting, banner or negotiated
 * capability (the serve negotiated with QEMU; greeting null, capabilities
 * []), no relay (the proxy's byte path), no exec-oob, and a request whose
 * reply does not come in time has an unknown outcome (OutcomeUnknownError),
 * never a failure. Events published while this client was disconnected are
 * not replayed here (the JetStream stream of the serve keeps them).
 */
import type { Observable } from 'rxjs';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { CloseInfo, ExecuteOptions, HmpOptions, Monitor, QmpReply, RawCommands, RawRequestOptions } from '../contract.js';
import { HmpError, InvalidArgumentError, ProtocolError, QmpError, StateError, UnsupportedError } from '../errors.js';
import { hmpErrorText } from '../hmp/error-text.js';
import { normaliseHmpOutput } from '../hmp/output.js';
import { defaultLogger, type Logger } from '../log.js';
import { stringifyJson } from '../qmp/json.js';
import { classify, parseMonitorJson, wireCommand, type QmpEvent } from '../qmp/wire.js';
import { BehaviorSubject, Subject } from '../rx.js';
import type { MonitorState } from '../state.js';
import { describeTarget, openNatsConnection, parseNatsTarget, type NatsCredentials, type NatsTarget } from './client-connection.js';
import { readFleetEvent } from './client-events.js';
import { resolveHost } from './client-discovery.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, HMP_COMMAND, requestReply, type RemoteReply, type VmAddress } from './client-request.js';
import { vmClassWildcard } from './subjects.js';

export interface NatsMonitorOptions extends NatsCredentials {
  /** Send every request on the read-only class (`.ro.`): the serve refuses what would change the VM. Default false. */
  readOnly?: boolean;
  /** Deadline of every request, in ms, unless the call gives its own. Default 10000. */
  commandTimeoutMs?: number;
  /** Deadline for connecting and finding the VM's host, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Where diagnostics go; pino-compatible. Default: warnings and errors to stderr. */
  logger?: Logger;
  /** The serves' run-state bucket, where the VM's host is looked up when the URL names none. Default qmpx-run-state. */
  runStateBucket?: string;
}

class NatsMonitor implements Monitor {
  readonly protocol = 'qmp' as const;
  readonly greeting = null;
  readonly banner = null;
  readonly capabilities: readonly string[] = [];
  readonly relay = null;
  /** File descriptors cannot cross a broker. */
  readonly fdPassing = false;
  readonly raw: RawCommands;
  readonly label: string;
  readonly closed: Promise<CloseInfo>;
  private readonly eventSubject = new Subject<QmpEvent>();
  private readonly stateSubject = new BehaviorSubject<MonitorState>('ready');
  private readonly protocolErrorSubject = new Subject<ProtocolError>();
  private readonly subscription: Subscription;
  private pending = 0;
  private closing = false;

  constructor(
    private readonly connection: NatsConnection,
    private readonly address: VmAddress,
    target: NatsTarget,
    private readonly options: NatsMonitorOptions,
    readonly logger: Logger,
  ) {
    this.label = describeTarget({ ...target, ...address });
    this.raw = { send: (command, argumentsJson, opts) => this.send(command, argumentsJson, opts) };
    this.subscription = connection.subscribe(vmClassWildcard(address.host, address.vm, 'evt'), {
      callback: (error, message) => {
        if (error !== null) {
          // A subscription the server refuses (no permission on the event subjects) ends here: say so once.
          logger.warn({ monitor: this.label, err: error.message }, 'no events from NATS for this VM');
          return;
        }
        const fleetEvent = readFleetEvent(message);
        if (fleetEvent === null) {
          this.protocolErrorSubject.next(new ProtocolError(`not a QMP event on ${message.subject}`, message.string()));
          return;
        }
        this.eventSubject.next(fleetEvent.event);
      },
    });
    this.closed = connection.closed().then((cause) => {
      this.stateSubject.next('closed');
      this.eventSubject.complete();
      this.protocolErrorSubject.complete();
      this.stateSubject.complete();
      return cause === undefined ? { expected: this.closing } : { expected: this.closing, cause };
    });
  }

  get state(): MonitorState {
    return this.stateSubject.value;
  }

  get state$(): Observable<MonitorState> {
    return this.stateSubject.asObservable();
  }

  get events$(): Observable<QmpEvent> {
    return this.eventSubject.asObservable();
  }

  get protocolErrors$(): Observable<ProtocolError> {
    return this.protocolErrorSubject.asObservable();
  }

  get pendingCount(): number {
    return this.pending;
  }

  async execute<T = unknown>(command: string, args?: object, opts: ExecuteOptions = {}): Promise<T> {
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
      throw new InvalidArgumentError(`${command}: arguments must be an object`);
    }
    const reply = await this.send(command, args === undefined ? undefined : stringifyJson(args), opts);
    if (reply.kind === 'error') throw new QmpError(reply.message.error.class, reply.message.error.desc, command);
    return reply.message.return as T;
  }

  async hmp(commandLine: string, opts: HmpOptions = {}): Promise<string> {
    if (commandLine.trim() === '') throw new InvalidArgumentError('an empty HMP command line');
    const reply = await this.request(HMP_COMMAND, commandLine, true, opts);
    if (reply.errorCode !== undefined) {
      const refusal = readReply(reply.body);
      if (refusal.kind === 'error') throw new QmpError(refusal.message.error.class, refusal.message.error.desc, HMP_COMMAND);
      throw new ProtocolError(`an answer of qmpx (${reply.errorCode}) that is not an error reply`, reply.body);
    }
    const output = normaliseHmpOutput(reply.body);
    if (opts.throwOnError && hmpErrorText(output) !== null) throw new HmpError(commandLine, output);
    return output;
  }

  async close(): Promise<void> {
    if (this.closing) {
      await this.closed;
      return;
    }
    this.closing = true;
    this.subscription.unsubscribe();
    await this.connection.close();
    await this.closed;
  }

  private async send(command: string, argumentsJson: string | undefined, opts: RawRequestOptions = {}): Promise<QmpReply> {
    if (opts.oob) throw new UnsupportedError(`${command}: exec-oob is not available over NATS`);
    const reply = await this.request(command, wireCommand(command, argumentsJson, false).trimEnd(), false, opts);
    return readReply(reply.body);
  }

  private async request(command: string, body: string, hmp: boolean, opts: RawRequestOptions): Promise<RemoteReply> {
    if (opts.fds !== undefined && opts.fds.length > 0) throw new UnsupportedError(`${command}: file descriptors cannot travel over NATS`);
    if (this.state !== 'ready') throw new StateError(`${command}: the NATS connection is ${this.state}`, this.state);
    this.pending++;
    try {
      const reply = await requestReply(this.connection, this.address, {
        kind: this.options.readOnly ? 'ro' : 'cmd',
        command,
        body,
        hmp,
        timeoutMs: opts.timeoutMs ?? this.options.commandTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
      return reply;
    } finally {
      this.pending--;
    }
  }
}

/** A reply body as QEMU's reply (or qmpx's refusal in QEMU's shape). Throws ProtocolError for anything else. */
function readReply(text: string): QmpReply {
  const classified = classify(text, parseMonitorJson(text));
  if (classified.kind === 'return' || classified.kind === 'error') return classified;
  throw new ProtocolError(`a reply over NATS that is not a QMP reply: ${classified.kind === 'invalid' ? classified.reason : classified.kind}`, text);
}

/**
 * Connects to a VM's monitor over NATS: `nats://[USER:PASS@]SERVER[:PORT]/VM`
 * or `.../HOST/VM`. Without a host, the host that serves a VM of that name
 * is looked up (lib/nats/client-discovery.ts). Rejects with
 * InvalidArgumentError (bad URL, no VM), QmpxError (cannot connect), or
 * NoResponderError (no serve has that VM).
 */
export async function connectNats(url: string, options: NatsMonitorOptions = {}): Promise<Monitor> {
  const target = parseNatsTarget(url);
  if (target.vm === undefined) throw new InvalidArgumentError(`name the VM: nats://SERVER/VM or nats://SERVER/HOST/VM, got ${JSON.stringify(url)}`);
  const logger = options.logger ?? defaultLogger;
  const connection = await openNatsConnection(target, options);
  try {
    const host = target.host ?? (await resolveHost(connection, target.vm, options.connectTimeoutMs ?? 5000, options.runStateBucket));
    return new NatsMonitor(connection, { host, vm: target.vm }, target, options, logger);
  } catch (error) {
    await connection.close();
    throw error;
  }
}

export { OutcomeUnknownError, NoResponderError, PermissionDeniedError } from './remote-errors.js';
