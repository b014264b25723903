/**
 * Shared pieces of the fleet-bridge specs: a `serve` (in process) for real
 * QEMUs with `nats` configured, NATS clients, and collecting messages with
 * a deadline.
 */
import { connect as natsConnect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { NatsConfig } from '../../lib/nats/config.js';
import { DEFAULT_MAX_BUFFERED_EVENTS } from '../../lib/nats/config.js';
import type { MonitorConfig, ServeConfig } from '../../lib/proxy/config.js';
import { startServe, type ServeHandle } from '../../lib/proxy/daemon.js';
import type { NatsServerInstance } from '../helpers/nats-server.js';
import { rawQmp, type QemuInstance, type RawClient } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger } from '../proxy/harness.js';

export const HOST = 'hv-1';

export interface ServedVm {
  name: string;
  /** The QEMU whose main QMP socket serve takes, unless `upstream` names another socket. */
  qemu?: QemuInstance;
  upstream?: string;
}

export interface NatsServe {
  handle: ServeHandle;
  logger: RecordingLogger;
  /** Per VM, serve's downstream QMP socket. */
  qmpPaths: Map<string, string>;
  auditPath: string;
  stop(): Promise<void>;
}

/** Starts serve for `vms`, its bridge connected to `nats` as `user` (if given). */
export async function startNatsServe(
  nats: NatsServerInstance,
  vms: readonly ServedVm[],
  options: { user?: string; jetStream?: boolean; host?: string; maxBufferedEvents?: number; metrics?: boolean; watchdogSeconds?: number } = {},
): Promise<NatsServe> {
  const dir = createTempDir('nats-serve');
  const qmpPaths = new Map<string, string>();
  const monitors: MonitorConfig[] = vms.map((vm, index) => {
    const qmp = socketPathIn(dir, `vm${index}.qmp`);
    qmpPaths.set(vm.name, qmp);
    const upstream = vm.upstream ?? vm.qemu?.qmpPath;
    if (upstream === undefined) throw new Error(`${vm.name}: give qemu or upstream`);
    return { name: vm.name, upstream, qmp, socketMode: 0o600, maxClientBufferBytes: 8 * 1024 * 1024 };
  });
  const natsConfig: NatsConfig = { servers: [nats.url], host: options.host ?? HOST, maxBufferedEvents: options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS };
  if (options.user !== undefined) {
    const credentials = nats.credentialsFor(options.user);
    natsConfig.user = credentials.user;
    natsConfig.password = credentials.pass;
  }
  if (options.jetStream === true) {
    natsConfig.jetStream = { stream: 'QMPX_EVENTS', maxAgeSeconds: 3600, maxBytes: 64 * 1024 * 1024, duplicateWindowSeconds: 120 };
    natsConfig.runStateBucket = 'qmpx-run-state';
  }
  const auditPath = `${dir}/audit.ndjson`;
  const config: ServeConfig = { logLevel: 'info', audit: { path: auditPath, arguments: true }, monitors, nats: natsConfig };
  if (options.metrics === true) config.metrics = '127.0.0.1:0';
  if (options.watchdogSeconds !== undefined) config.watchdogSeconds = options.watchdogSeconds;
  const logger = new RecordingLogger();
  const handle = await startServe(config, { logger, shutdownGraceMs: 2000, proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 200 } } });
  return {
    handle,
    logger,
    qmpPaths,
    auditPath,
    stop: async () => {
      await handle.stop();
      await removeTempDir(dir);
    },
  };
}

/** A client of `nats`, as `user` when given. */
export function natsClient(nats: NatsServerInstance, user?: string): Promise<NatsConnection> {
  return natsConnect({ servers: nats.url, ...(user === undefined ? {} : nats.credentialsFor(user)) });
}

/** Messages of a subscription, kept as they arrive. */
export class Collected {
  readonly messages: Msg[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(readonly subscription: Subscription) {
    void (async () => {
      for await (const msg of subscription) {
        this.messages.push(msg);
        for (const waiter of this.waiters) waiter();
      }
    })();
  }

  /** Resolves once `count` messages are in; rejects after `timeoutMs` naming what came. */
  async waitFor(count: number, timeoutMs = 15_000): Promise<Msg[]> {
    if (this.messages.length >= count) return this.messages.slice(0, count);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.messages.length} of ${count} messages within ${timeoutMs} ms: ${this.messages.map((msg) => msg.subject).join(', ')}`));
      }, timeoutMs);
      const check = (): void => {
        if (this.messages.length < count) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
    return this.messages.slice(0, count);
  }
}

/** A negotiated QMP client on `path`. */
export async function negotiated(path: string): Promise<RawClient> {
  const client = await rawQmp(path);
  await client.waitForLines(1);
  await client.send('{"execute":"qmp_capabilities"}\n');
  await client.waitForLine((line) => line === '{"return": {}}');
  return client;
}

/**
 * Runs `command` on `client` and resolves with its reply line, after the
 * event lines `events` the command raises (e.g. STOP for `stop`).
 */
export async function runWithEvents(client: RawClient, command: string, events: string[], id: string): Promise<string[]> {
  const from = client.lines().length;
  await client.send(`{"execute":"${command}","id":"${id}"}\n`);
  await client.waitForLine((line) => line.includes(`"id": "${id}"`));
  for (const event of events) await client.waitForLine((line) => line.includes(`"event": "${event}"`) && client.lines().indexOf(line) >= from);
  return client.lines().slice(from);
}

/** The event lines among `lines` (QEMU's text, as serve's socket handed them on). */
export function eventLines(lines: readonly string[]): string[] {
  return lines.filter((line) => line.startsWith('{"timestamp"') && line.includes('"event"'));
}
