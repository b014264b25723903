/**
 * A real `nats-server` for a test file: the broker of the fleet specs.
 *
 *   const nats = await startNatsServer({ users: [...] });   // JetStream on, store in a temp dir
 *   try { ... connect({ servers: nats.url }) ... } finally { await nats.stop(); }
 *
 * The server listens on 127.0.0.1 on a port chosen free at start and kept
 * for the instance's whole life, so `restart()` (or `down()` then `up()`)
 * brings it back where clients reconnect to, with the same JetStream store:
 * streams, consumers and key-value buckets survive. `startDown: true`
 * reserves port and store without running the server (a peer that is
 * unreachable at start).
 *
 * The configuration is written as JSON, which nats-server's configuration
 * parser accepts. Users (optional) all live in the server's global account,
 * which has JetStream when it is on; without users the server needs no
 * authentication. Ready means: the server has logged "Server is ready",
 * which it does once JetStream has started and the client port listens.
 */

import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { spawnDaemon, findExecutable, DEFAULT_READY_TIMEOUT_MS, type ExitStatus, type SpawnedDaemon } from './daemon.js';
import { createTempDir, removeTempDir } from './temp-dir.js';

/** Publish or subscribe rights of a user, as nats-server's `permissions` block spells them. */
export interface NatsSubjectRights {
  /** Subjects (with `*` and `>` wildcards) the user may use; absent means all. */
  allow?: readonly string[];
  /** Subjects the user may not use, even when `allow` matches. */
  deny?: readonly string[];
}

/** One user of the global account. */
export interface NatsUser {
  user: string;
  password: string;
  /** Absent: the user may publish and subscribe anything. */
  permissions?: {
    publish?: NatsSubjectRights;
    subscribe?: NatsSubjectRights;
    /**
     * Lets the user publish a reply to the reply subject of any request it
     * received, whatever `publish` says (`allow_responses` of nats-server):
     * what a responder needs without being granted `_INBOX.>`.
     */
    allowResponses?: boolean;
  };
}

export interface NatsServerOptions {
  /** JetStream on (default true), its file store in the instance's temp dir. */
  jetStream?: boolean;
  /** Users of the global account; absent or empty: no authentication. */
  users?: readonly NatsUser[];
  /** Reserve port and store but do not start; `up()` starts it later. */
  startDown?: boolean;
  /** Largest message payload in bytes (nats-server default 1 MiB). */
  maxPayloadBytes?: number;
  /** Deadline for the server to accept a connection, per start; default 10 s. */
  readyTimeoutMs?: number;
}

/** A nats-server that can be taken down and brought back on the same port and store. */
export interface NatsServerInstance {
  /** `nats://127.0.0.1:PORT` (no credentials). */
  readonly url: string;
  readonly port: number;
  /** The instance's temp dir: configuration file and JetStream store. */
  readonly dir: string;
  /** The JetStream store directory (under `dir`). */
  readonly storeDir: string;
  /** Path of the configuration file the server runs with. */
  readonly configPath: string;
  /** True while a server process runs. */
  readonly running: boolean;
  /** The pid of the running server; undefined while down. */
  readonly pid: number | undefined;
  /**
   * `nats://USER:PASSWORD@127.0.0.1:PORT` for one of the configured users,
   * for command lines that read credentials from the URL. The @nats-io
   * client ignores user info in `servers`: give it `credentialsFor(user)`.
   * Refuses names and passwords outside `[A-Za-z0-9._~-]`, which a URL
   * would have to percent-encode.
   */
  urlFor(user: string): string;
  /** `{ user, pass }` of a configured user, as the client's connect options take them. */
  credentialsFor(user: string): { user: string; pass: string };
  /** The stderr of the current (or last) server process, for failure messages. */
  stderrText(): string;
  /** Starts the server (same port, same store) and resolves once it serves; no-op while running. */
  up(): Promise<void>;
  /** Stops the server (SIGTERM, then SIGKILL) and keeps port and store; no-op while down. */
  down(signal?: NodeJS.Signals): Promise<ExitStatus | undefined>;
  /** `down()` then `up()`. */
  restart(): Promise<void>;
  /** Stops the server and removes its dir (store included). Idempotent. */
  stop(): Promise<void>;
}

/** What nats-server logs once it serves clients (after JetStream, when on, has started). */
const READY_LINE = 'Server is ready';

/**
 * Writes the configuration, reserves a free port and (unless `startDown`)
 * starts nats-server. Rejects when the binary is missing (naming the Debian
 * package), when the server exits during start (with its stderr), or after
 * `readyTimeoutMs`.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerInstance> {
  const binary = findExecutable('nats-server', 'nats-server');
  const dir = createTempDir('nats');
  try {
    const port = await reserveFreePort();
    const instance = new NatsServer(binary, dir, port, options);
    if (options.startDown !== true) await instance.up();
    return instance;
  } catch (error) {
    await removeTempDir(dir);
    throw error;
  }
}

class NatsServer implements NatsServerInstance {
  readonly url: string;
  readonly storeDir: string;
  readonly configPath: string;
  private daemon: SpawnedDaemon | undefined;
  private lastStderr = '';
  private stopped = false;
  private readonly passwords = new Map<string, string>();

  constructor(
    private readonly binary: string,
    readonly dir: string,
    readonly port: number,
    private readonly options: NatsServerOptions,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
    this.storeDir = join(dir, 'store');
    this.configPath = join(dir, 'nats-server.json');
    for (const user of options.users ?? []) this.passwords.set(user.user, user.password);
    writeFileSync(this.configPath, JSON.stringify(this.configuration(), null, 2));
  }

  get running(): boolean {
    return this.daemon?.running ?? false;
  }

  get pid(): number | undefined {
    return this.running ? this.daemon?.pid : undefined;
  }

  urlFor(user: string): string {
    const { pass } = this.credentialsFor(user);
    const plain = /^[A-Za-z0-9._~-]+$/;
    if (!plain.test(user) || !plain.test(pass)) {
      throw new Error(`NATS user ${JSON.stringify(user)} has characters a URL would need to encode; use credentialsFor`);
    }
    return `nats://${user}:${pass}@127.0.0.1:${this.port}`;
  }

  credentialsFor(user: string): { user: string; pass: string } {
    const password = this.passwords.get(user);
    if (password === undefined) throw new Error(`no NATS user ${JSON.stringify(user)} in this server's configuration`);
    return { user, pass: password };
  }

  stderrText(): string {
    return this.daemon?.stderrText() ?? this.lastStderr;
  }

  async up(): Promise<void> {
    if (this.stopped) throw new Error('this nats-server instance was stopped; start a new one');
    if (this.running) return;
    // Each process gets its own working dir (removed when it stops); port and store stay in `dir`.
    const workDir = createTempDir('nats-run');
    const daemon = await spawnDaemon('nats-server', this.binary, ['-c', this.configPath], workDir);
    this.daemon = daemon;
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
    try {
      await daemon.waitForStderr(READY_LINE, deadline);
    } catch (error) {
      await this.down('SIGKILL');
      throw error;
    }
  }

  async down(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus | undefined> {
    const daemon = this.daemon;
    if (daemon === undefined) return undefined;
    const status = await daemon.stop(signal);
    this.lastStderr = daemon.stderrText();
    this.daemon = undefined;
    return status;
  }

  async restart(): Promise<void> {
    await this.down();
    await this.up();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.down();
    } finally {
      await removeTempDir(this.dir);
    }
  }

  private configuration(): Record<string, unknown> {
    const configuration: Record<string, unknown> = { host: '127.0.0.1', port: this.port };
    if (this.options.maxPayloadBytes !== undefined) configuration.max_payload = this.options.maxPayloadBytes;
    if (this.options.jetStream ?? true) {
      configuration.jetstream = { store_dir: this.storeDir, max_memory_store: 64 * 1024 * 1024, max_file_store: 1024 * 1024 * 1024 };
    }
    const users = this.options.users ?? [];
    if (users.length > 0) configuration.authorization = { users: users.map(userConfiguration) };
    return configuration;
  }
}

function userConfiguration(user: NatsUser): Record<string, unknown> {
  const entry: Record<string, unknown> = { user: user.user, password: user.password };
  const permissions = user.permissions;
  if (permissions === undefined) return entry;
  const block: Record<string, unknown> = {};
  if (permissions.publish !== undefined) block.publish = rightsConfiguration(permissions.publish);
  if (permissions.subscribe !== undefined) block.subscribe = rightsConfiguration(permissions.subscribe);
  if (permissions.allowResponses === true) block.allow_responses = true;
  entry.permissions = block;
  return entry;
}

function rightsConfiguration(rights: NatsSubjectRights): Record<string, unknown> {
  const block: Record<string, unknown> = {};
  if (rights.allow !== undefined) block.allow = [...rights.allow];
  if (rights.deny !== undefined) block.deny = [...rights.deny];
  return block;
}

/** A port nothing listens on now: bind port 0 on loopback, read the port, close. */
function reserveFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('loopback listener has no port'));
        else resolve(address.port);
      });
    });
  });
}
