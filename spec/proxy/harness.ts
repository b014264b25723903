/**
 * Proxy specs' common setup: a `serve` started in-process on some upstream
 * (a real QEMU by default, or a fake peer), its downstream sockets in a
 * private temp dir, and a logger that keeps what it was told.
 *
 *   const proxied = await serveQemu({ hmp: true });
 *   const client = await rawQmp(proxied.qmpPath);
 *   ...
 *   await proxied.stop();
 */
import type { Logger } from '../../lib/log.js';
import type { MonitorConfig, ServeConfig } from '../../lib/proxy/config.js';
import { startServe, type ServeHandle, type StartServeOptions } from '../../lib/proxy/daemon.js';
import type { MonitorProxy } from '../../lib/proxy/monitor-proxy.js';
import { rawQmp, startQemu, type QemuInstance, type QemuOptions, type RawClient } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

/** A Logger that records every entry; `waitFor` resolves when a matching one arrives. */
export class RecordingLogger implements Logger {
  readonly entries: LogEntry[] = [];
  private readonly waiters = new Set<() => boolean>();
  debug = (fields: object, message: string): void => this.add('debug', fields, message);
  info = (fields: object, message: string): void => this.add('info', fields, message);
  warn = (fields: object, message: string): void => this.add('warn', fields, message);
  error = (fields: object, message: string): void => this.add('error', fields, message);
  isLevelEnabled = (): boolean => true;

  /** Resolves with the first entry, past or future, whose message contains `text`; rejects after `timeoutMs`. */
  waitFor(text: string, timeoutMs = 10_000): Promise<LogEntry> {
    return this.waitForEntry((entry) => entry.message.includes(text), `log entry containing ${JSON.stringify(text)}`, timeoutMs);
  }

  /** Resolves with the first entry, past or future, that `matches`; rejects after `timeoutMs`, naming `what`. */
  waitForEntry(matches: (entry: LogEntry) => boolean, what: string, timeoutMs = 10_000): Promise<LogEntry> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no ${what} within ${timeoutMs} ms; got: ${this.entries.map((e) => e.message).join(' | ')}`));
      }, timeoutMs);
      const check = (): boolean => {
        const entry = this.entries.find(matches);
        if (entry === undefined) return false;
        clearTimeout(timer);
        resolve(entry);
        return true;
      };
      if (!check()) this.waiters.add(check);
    });
  }

  private add(level: LogEntry['level'], fields: object, message: string): void {
    this.entries.push({ level, fields: fields as Record<string, unknown>, message });
    for (const waiter of this.waiters) if (waiter()) this.waiters.delete(waiter);
  }
}

export interface ServeOptions {
  hmp?: boolean;
  readOnly?: boolean;
  readOnlyDeny?: string[];
  name?: string;
  maxClientBufferBytes?: number;
  socketMode?: number;
  audit?: { path: string; arguments: boolean };
  /** The QMP socket takes the fds clients send (MonitorConfig.acceptFds). */
  acceptFds?: boolean;
  serve?: Partial<StartServeOptions>;
}

export interface Served {
  readonly dir: string;
  readonly qmpPath: string;
  readonly hmpPath: string;
  readonly readOnlyPath: string;
  readonly handle: ServeHandle;
  readonly proxy: MonitorProxy;
  readonly logger: RecordingLogger;
  /** A raw client on the proxy's QMP socket that has read the greeting and negotiated. */
  negotiatedClient(path?: string): Promise<RawClient>;
  stop(): Promise<void>;
}

/** Serves `upstream` (a socket path) with sockets in a fresh temp dir. */
export async function serveUpstream(upstream: string, options: ServeOptions = {}): Promise<Served> {
  const dir = createTempDir('proxy');
  const qmpPath = socketPathIn(dir, 'qmp.sock');
  const hmpPath = socketPathIn(dir, 'hmp.sock');
  const readOnlyPath = socketPathIn(dir, 'ro.sock');
  const monitor: MonitorConfig = {
    name: options.name,
    upstream,
    qmp: qmpPath,
    hmp: options.hmp ? hmpPath : undefined,
    readOnly: options.readOnly ? readOnlyPath : undefined,
    readOnlyDeny: options.readOnlyDeny,
    socketMode: options.socketMode ?? 0o600,
    maxClientBufferBytes: options.maxClientBufferBytes ?? 8 * 1024 * 1024,
    acceptFds: options.acceptFds,
  };
  const config: ServeConfig = { logLevel: 'debug', monitors: [monitor], audit: options.audit };
  const logger = new RecordingLogger();
  let handle: ServeHandle;
  try {
    handle = await startServe(config, {
      logger,
      shutdownGraceMs: 2000,
      ...options.serve,
      proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 200 }, ...options.serve?.proxy },
    });
  } catch (error) {
    await removeTempDir(dir);
    throw error;
  }
  return {
    dir,
    qmpPath,
    hmpPath,
    readOnlyPath,
    handle,
    proxy: handle.proxies[0]!,
    logger,
    async negotiatedClient(path = qmpPath): Promise<RawClient> {
      const client = await rawQmp(path);
      await client.waitForLines(1);
      await client.send('{"execute":"qmp_capabilities"}\n');
      await client.waitForLines(2);
      return client;
    },
    async stop(): Promise<void> {
      await handle.stop();
      await removeTempDir(dir);
    },
  };
}

export interface ServedQemu extends Served {
  readonly qemu: QemuInstance;
}

/** A real guest-less QEMU and a proxy in front of its main QMP socket. */
export async function serveQemu(options: ServeOptions & { qemu?: QemuOptions } = {}): Promise<ServedQemu> {
  const qemu = await startQemu(options.qemu);
  try {
    const served = await serveUpstream(qemu.qmpPath, options);
    return {
      ...served,
      qemu,
      async stop(): Promise<void> {
        await served.stop();
        await qemu.stop();
      },
    };
  } catch (error) {
    await qemu.stop();
    throw error;
  }
}

/**
 * Sends `input` and then a marker command with id `marker`; resolves with
 * the lines received after `from` up to, not including, the marker's reply.
 * QEMU answers in order, so everything `input` caused has arrived by then.
 */
export async function exchange(client: RawClient, input: string | Buffer, marker: string): Promise<string[]> {
  const from = client.lines().length;
  await client.send(input);
  await client.send(`\n{"execute":"query-status","id":"${marker}"}\n`);
  await client.waitForLine((line) => line.includes(`"id": "${marker}"`));
  const lines = client.lines().slice(from);
  const end = lines.findIndex((line) => line.includes(`"id": "${marker}"`));
  return lines.slice(0, end);
}

/** Resolves once `condition()` holds, checking after each macrotask; rejects after `timeoutMs` with `what`. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
