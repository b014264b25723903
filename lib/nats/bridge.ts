/**
 * The fleet bridge of `qmpx serve --nats`: every VM's events out, commands
 * in, run states into a bucket (README, "Fleet (NATS)").
 *
 *   VM link ──events──▶ eventMessage ──▶ EventOutbox ──▶ publish (JetStream: with ack)
 *           ──status──▶ VmRunState ──▶ key-value bucket
 *   NATS ──qmpx.<host>.<vm>.{cmd,ro}.*──▶ answerCommand ──▶ the VM's link
 *
 * NATS never holds up the monitors: the bridge starts without waiting for
 * a connection, tries the first one again (with a capped backoff) for as
 * long as serve runs, and after that leaves reconnecting to the client
 * library (which also renews the subscriptions). Events wait in the
 * outbox meanwhile (event-outbox.ts).
 *
 * A VM's events and commands are handled from the moment its monitor has
 * answered `query-status` on a link: by then the VM has its final name
 * (query-name was asked first), and the run state starts from QEMU's word.
 * Events read before that wait for it, in order. A VM's command
 * subscriptions exist only while its monitor is connected, so with several
 * `serve` for one VM (a queue group) a request goes to one that can run it.
 */
import { readFile } from 'node:fs/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, credsAuthenticator, errors as natsErrors, headers as natsHeaders, type NatsConnection, type NodeConnectionOptions, type Subscription } from '@nats-io/transport-node';
import type { AuditSink } from '../audit-sink.js';
import type { QmpEventFrame } from '../contract.js';
import type { Logger } from '../log.js';
import { answerCommand } from './command-responder.js';
import type { NatsConfig } from './config.js';
import { eventMessage, timestampText, SameTimestampCounter, type EventMessage } from './event-message.js';
import { EventOutbox, UnpublishableEventError, type EventSender, type OutboxCounts } from './event-outbox.js';
import { ensureEventStream } from './event-stream.js';
import type { FleetLink, FleetVm } from './fleet-vm.js';
import { RUN_STATE_EVENTS, VmRunState, type RunStateStore } from './run-state.js';
import { vmClassWildcard } from './subjects.js';

/** Every serve answering a VM's commands is in this queue group: one of them answers each request. */
export const COMMAND_QUEUE_GROUP = 'qmpx';
/** Waits between first connection attempts: doubling from the first to the last. */
const FIRST_CONNECT_RETRY_MS = 250;
const MAX_CONNECT_RETRY_MS = 5000;
/** How long stop() waits for buffered events to go out. */
const STOP_FLUSH_MS = 2000;

export interface NatsBridgeStats extends OutboxCounts {
  connected: boolean;
}

export interface NatsBridge {
  stats(): NatsBridgeStats;
  /** Unsubscribes, sends what it can of the buffered events (briefly), closes the connection. */
  stop(): Promise<void>;
}

export interface NatsBridgeOptions {
  logger: Logger;
  audit: AuditSink;
}

/** Starts the bridge for `vms`; resolves at once (reading a credentials file aside), connected or not. */
export async function startNatsBridge(config: NatsConfig, vms: readonly FleetVm[], options: NatsBridgeOptions): Promise<NatsBridge> {
  const connectOptions = await connectionOptions(config);
  const bridge = new Bridge(config, connectOptions, options);
  vms.forEach((vm, index) => bridge.add(vm, index));
  bridge.start();
  return bridge;
}

/** The client's options: servers, authentication, TLS; reconnecting for ever once connected. */
async function connectionOptions(config: NatsConfig): Promise<NodeConnectionOptions> {
  const options: NodeConnectionOptions = {
    servers: config.servers,
    name: `qmpx serve ${config.host}`,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: false,
  };
  if (config.credentials !== undefined) options.authenticator = credsAuthenticator(await readFile(config.credentials));
  if (config.user !== undefined) {
    options.user = config.user;
    options.pass = config.password;
  }
  if (config.token !== undefined) options.token = config.token;
  if (config.tls !== undefined) {
    options.tls = {};
    if (config.tls.ca !== undefined) options.tls.caFile = config.tls.ca;
    if (config.tls.cert !== undefined) options.tls.certFile = config.tls.cert;
    if (config.tls.key !== undefined) options.tls.keyFile = config.tls.key;
  }
  return options;
}

/** One VM's state in the bridge. */
interface BridgedVm {
  vm: FleetVm;
  key: string;
  runState: VmRunState;
  /** The link whose commands are answered now (its query-status came back), if any. */
  ready: FleetLink | undefined;
  subscriptions: Subscription[];
}

class Bridge implements NatsBridge {
  private connection: NatsConnection | undefined;
  private readonly outbox: EventOutbox;
  private readonly vms: BridgedVm[] = [];
  private runStateStore: RunStateStore | undefined;
  private readonly stopping = new AbortController();
  private connectTimer: NodeJS.Timeout | undefined;
  private connectRetryMs = FIRST_CONNECT_RETRY_MS;
  private connected = false;

  constructor(
    private readonly config: NatsConfig,
    private readonly connectOptions: NodeConnectionOptions,
    private readonly options: NatsBridgeOptions,
  ) {
    this.outbox = new EventOutbox((message) => this.send(message), config.maxBufferedEvents, options.logger);
  }

  stats(): NatsBridgeStats {
    return { ...this.outbox.stats(), connected: this.connected };
  }

  add(vm: FleetVm, index: number): void {
    const bridged: BridgedVm = {
      vm,
      key: String(index),
      runState: new VmRunState(this.config.host, () => vm.name, this.options.logger),
      ready: undefined,
      subscriptions: [],
    };
    this.vms.push(bridged);
    vm.upstream.onLink((link) => this.attachLink(bridged, link));
    const current = vm.upstream.current;
    if (current !== undefined) this.attachLink(bridged, current);
  }

  start(): void {
    void this.connectOnce();
  }

  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    clearTimeout(this.connectTimer);
    for (const bridged of this.vms) this.unsubscribe(bridged);
    await this.outbox.close(STOP_FLUSH_MS);
    const connection = this.connection;
    this.connection = undefined;
    if (connection !== undefined && !connection.isClosed()) await connection.close();
  }

  /** One attempt at the first connection; on failure another after a backoff, until stop(). */
  private async connectOnce(): Promise<void> {
    const { logger } = this.options;
    let connection: NatsConnection;
    try {
      connection = await connect(this.connectOptions);
    } catch (error) {
      if (this.stopping.signal.aborted) return;
      logger.warn({ servers: this.config.servers, err: (error as Error).message, retryInMs: this.connectRetryMs }, 'cannot connect to NATS; serving the local sockets meanwhile');
      this.connectTimer = setTimeout(() => void this.connectOnce(), this.connectRetryMs);
      this.connectRetryMs = Math.min(this.connectRetryMs * 2, MAX_CONNECT_RETRY_MS);
      return;
    }
    if (this.stopping.signal.aborted) {
      await connection.close();
      return;
    }
    this.connection = connection;
    this.connectRetryMs = FIRST_CONNECT_RETRY_MS;
    logger.info({ server: connection.getServer(), host: this.config.host }, 'connected to NATS');
    void this.watchStatus(connection);
    await this.prepare(connection);
    this.setConnected(true);
    for (const bridged of this.vms) if (bridged.ready !== undefined) this.subscribe(bridged, bridged.ready);
    void connection.closed().then((error) => this.onClosed(connection, error));
  }

  /** Stream and bucket: made (or found) once per connection; failures are logged and do not stop the rest. */
  private async prepare(connection: NatsConnection): Promise<void> {
    const { logger } = this.options;
    if (this.config.jetStream !== undefined) {
      try {
        await ensureEventStream(await jetstreamManager(connection), this.config.jetStream, logger);
      } catch (error) {
        logger.error({ stream: this.config.jetStream.stream, err: (error as Error).message }, 'cannot create the NATS event stream; events wait until they can be stored');
      }
    }
    const bucket = this.config.runStateBucket;
    if (bucket !== undefined) {
      try {
        const kvm = new Kvm(connection);
        const kv = await kvm.create(bucket, { history: 1 }).catch(() => kvm.open(bucket));
        this.runStateStore = (key, value) => kv.put(key, value);
        logger.info({ bucket }, 'run states go to the NATS key-value bucket');
        for (const bridged of this.vms) bridged.runState.attach(this.runStateStore);
      } catch (error) {
        logger.error({ bucket, err: (error as Error).message }, 'cannot open the NATS run-state bucket; run states are not published');
      }
    }
  }

  private async watchStatus(connection: NatsConnection): Promise<void> {
    const { logger } = this.options;
    for await (const status of connection.status()) {
      switch (status.type) {
        case 'disconnect':
          logger.warn({ server: status.server }, 'NATS connection lost; the client library reconnects');
          this.setConnected(false);
          break;
        case 'reconnect':
          logger.info({ server: status.server }, 'NATS connection back');
          this.setConnected(true);
          // A server that came back with an empty store has lost the stream and the bucket: made again (waiting events are retried meanwhile).
          void this.prepare(connection);
          break;
        case 'error':
          logger.warn({ err: status.error.message }, 'NATS reports an error');
          break;
        default:
          break;
      }
    }
  }

  /** The connection ended for good (not by stop()): back to first connection attempts. */
  private onClosed(connection: NatsConnection, error: Error | void): void {
    if (this.stopping.signal.aborted || this.connection !== connection) return;
    this.options.logger.error({ err: error instanceof Error ? error.message : undefined }, 'NATS connection closed; connecting again');
    this.connection = undefined;
    this.setConnected(false);
    for (const bridged of this.vms) bridged.subscriptions = [];
    void this.connectOnce();
  }

  private setConnected(connected: boolean): void {
    this.connected = connected;
    this.outbox.setConnected(connected);
  }

  private send: EventSender = async (message: EventMessage) => {
    const connection = this.connection;
    if (connection === undefined) throw new Error('not connected to NATS');
    const headers = natsHeaders();
    for (const [name, value] of message.headers) headers.set(name, value);
    try {
      if (this.config.jetStream === undefined) connection.publish(message.subject, message.body, { headers });
      else await jetstream(connection).publish(message.subject, message.body, { headers, msgID: message.messageId });
    } catch (error) {
      // The client refuses a message past the server's max_payload before sending anything: no retry can help.
      if (error instanceof natsErrors.InvalidArgumentError) throw new UnpublishableEventError(error.message, { cause: error });
      throw error;
    }
  };

  /** A new link of a VM: its status first, then its events and commands. */
  private attachLink(bridged: BridgedVm, link: FleetLink): void {
    if (this.stopping.signal.aborted) return;
    const counter = new SameTimestampCounter();
    const early: QmpEventFrame[] = [];
    let ready = false;
    const publish = (frame: QmpEventFrame): void => {
      const { event } = frame;
      const message = eventMessage(this.config.host, bridged.vm.name, event.event, event.timestamp, frame.text, counter.next(timestampText(event.timestamp)));
      this.outbox.enqueue(bridged.key, message);
      if (RUN_STATE_EVENTS.has(event.event)) void bridged.runState.refresh(link, event.event, event.timestamp);
    };
    const events = link.qmp?.eventFrames$.subscribe((frame) => (ready ? publish(frame) : early.push(frame)));
    void bridged.runState.refresh(link, 'connect').then(() => {
      if (this.stopping.signal.aborted || bridged.vm.upstream.current !== link) return;
      ready = true;
      for (const frame of early.splice(0)) publish(frame);
      bridged.ready = link;
      this.subscribe(bridged, link);
    });
    void link.closed.then(() => {
      events?.unsubscribe();
      if (bridged.ready === link) {
        bridged.ready = undefined;
        this.unsubscribe(bridged);
      }
      bridged.runState.monitorDown();
    });
  }

  private subscribe(bridged: BridgedVm, link: FleetLink): void {
    const connection = this.connection;
    if (connection === undefined || !this.connected || bridged.subscriptions.length > 0 || bridged.ready !== link) return;
    const { vm } = bridged;
    const responder = { host: this.config.host, audit: this.options.audit, logger: this.options.logger, signal: this.stopping.signal };
    const subjects = (['cmd', 'ro'] as const).map((kind) => vmClassWildcard(this.config.host, vm.name, kind));
    for (const subject of subjects) {
      bridged.subscriptions.push(
        connection.subscribe(subject, {
          queue: COMMAND_QUEUE_GROUP,
          callback: (error, msg) => {
            if (error === null) answerCommand(vm, msg, responder);
          },
        }),
      );
    }
    this.options.logger.info({ monitor: vm.name, subjects, queue: COMMAND_QUEUE_GROUP }, 'answering NATS requests');
  }

  private unsubscribe(bridged: BridgedVm): void {
    for (const subscription of bridged.subscriptions.splice(0)) subscription.unsubscribe();
  }
}
