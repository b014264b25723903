/**
 * Downstream UNIX sockets, created so that nobody else can ever connect to
 * them unless the mode allows it, and accepted through the C library so
 * that each connection arrives as a bare fd with its peer's credentials.
 *
 * Node's `listen()` takes no mode and binds with the process umask, so a
 * socket chmod()ed after listen() is open to everyone for a moment. Instead
 * the socket is bound inside a fresh private directory (mkdtemp, 0700) next
 * to the final path, given its mode there, and rename()d into place: the
 * rename is atomic, and until it happens the socket is reachable only by its
 * owner. The directory sits beside the target so the rename never crosses a
 * filesystem.
 *
 *   path free ──────────────┐
 *   stale socket (refused) ─┴─▶ bind in DIR/.qmpxXXXXXX/s ─▶ chmod ─▶ rename to path
 *   live socket (accepts) ──▶ refused: another server owns it
 *   not a socket ───────────▶ refused: never clobber a file
 *
 * Accepting is lib/fd/listener.ts (accept4, close-on-exec, SO_PEERCRED,
 * EMFILE handled without spinning). A connection that never carries fds is
 * turned into Node's own `net.Socket` (`AcceptedConnection.socket()`); one
 * that may is read with recvmsg (`AcceptedConnection.fdStream()`).
 */
import { lstatSync, type Stats } from 'node:fs';
import { chmod, mkdtemp, rename, rmdir, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { QmpxError } from '../errors.js';
import type { FdStream, FdStreamOptions } from '../fd/stream.js';
import type { PeerCredentials } from '../fd/listener.js';
import type { Logger } from '../log.js';

export type { PeerCredentials } from '../fd/listener.js';

type FdModules = {
  listener: typeof import('../fd/listener.js');
  stream: typeof import('../fd/stream.js');
  libc: typeof import('../fd/libc.js');
};
let fdModules: Promise<FdModules> | undefined;

/** lib/fd loads koffi: done once, the first time a socket is bound. */
function loadFdModules(): Promise<FdModules> {
  fdModules ??= Promise.all([import('../fd/listener.js'), import('../fd/stream.js'), import('../fd/libc.js')]).then(([listener, stream, libc]) => ({
    listener,
    stream,
    libc,
  }));
  return fdModules;
}

/**
 * One accepted connection, not yet given to a reader. Exactly one of
 * socket(), fdStream() or close() takes the fd.
 */
export class AcceptedConnection {
  private taken = false;

  constructor(
    /** The connection's fd, for logs; owned by whatever socket(), fdStream() or close() made of it. */
    readonly fd: number,
    /** The connecting process (SO_PEERCRED); undefined when the kernel could not tell. */
    readonly peer: PeerCredentials | undefined,
    private readonly modules: FdModules,
  ) {}

  /** Node's socket over the fd: Node reads and writes; fds the peer sends are discarded by the kernel. */
  socket(options: { allowHalfOpen?: boolean } = {}): net.Socket {
    this.take();
    return new net.Socket({ fd: this.fd, readable: true, writable: true, allowHalfOpen: options.allowHalfOpen ?? false });
  }

  /** Input read with recvmsg so the fds the peer sends are kept (lib/fd/stream.ts); paused until resume(). */
  fdStream(options: FdStreamOptions): FdStream {
    this.take();
    return new this.modules.stream.FdStream(this.fd, options);
  }

  /** Refuses the connection: the peer sees EOF. */
  close(): void {
    this.take();
    this.modules.libc.closeAll([this.fd]);
  }

  private take(): void {
    if (this.taken) throw new Error(`connection fd ${this.fd} was already handed over`);
    this.taken = true;
  }
}

/** Where accepted connections go: a function, or a net.Server (told through its 'connection' event, as Node's own accept would). */
export type ConnectionTarget = ((connection: AcceptedConnection) => void) | net.Server;

/** Linux `sockaddr_un.sun_path` holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
/** mkdtemp() adds six characters to it. */
const PRIVATE_DIR_PREFIX = '.qmpx';
/** How long probing an existing socket may take before it counts as live but hung. */
const PROBE_TIMEOUT_MS = 2000;

/** A socket path qmpx is listening on. */
export interface BoundSocket {
  readonly path: string;
  /**
   * Stops accepting and removes the socket file if it is still ours (a
   * later server may have replaced it). Open connections are not touched;
   * resolves without waiting for them.
   */
  close(): Promise<void>;
}

/**
 * Listens on `path` with permission bits `mode`, replacing a stale socket
 * file, and hands every accepted connection to `target`. Rejects with
 * QmpxError when a live server owns the path, the path is not a socket, or
 * binding fails.
 */
export async function listenPrivately(target: ConnectionTarget, path: string, mode: number, logger: Logger): Promise<BoundSocket> {
  await checkExisting(path, logger);
  const problem = socketPathProblem(path);
  if (problem !== undefined) throw new QmpxError(`socket ${problem}`);
  const modules = await loadFdModules();
  const deliver =
    typeof target === 'function' ? target : (connection: AcceptedConnection) => target.emit('connection', connection.socket());
  let outOfFdsLogged = 0;
  const handlers = {
    accepted: (fd: number, peer: PeerCredentials | undefined) => deliver(new AcceptedConnection(fd, peer, modules)),
    outOfFds: (code: string, shed: number) => {
      // Said at most once a second: a flood of connections would otherwise flood the log.
      const now = Date.now();
      if (now - outOfFdsLogged < 1000) return;
      outOfFdsLogged = now;
      logger.warn({ socket: path, code, refused: shed }, 'out of file descriptors: new connections are closed unserved');
    },
  };
  const privateDir = await mkdtemp(join(dirname(path), PRIVATE_DIR_PREFIX));
  const bindPath = join(privateDir, 's');
  let listener: InstanceType<FdModules['listener']['FdListener']> | undefined;
  try {
    try {
      listener = new modules.listener.FdListener(bindPath, handlers);
    } catch (error) {
      throw new QmpxError(`cannot listen on ${path}: ${(error as Error).message}`, { cause: error });
    }
    await chmod(bindPath, mode);
    await rename(bindPath, path);
  } catch (error) {
    listener?.close();
    await unlink(bindPath).catch(() => undefined);
    throw error instanceof QmpxError ? error : new QmpxError(`cannot create socket ${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    await rmdir(privateDir).catch(() => undefined);
  }
  const identity = await stat(path);
  const bound = listener;
  return {
    path,
    async close(): Promise<void> {
      bound.close();
      const current = await stat(path).catch(() => undefined);
      if (current && current.ino === identity.ino && current.dev === identity.dev) await unlink(path).catch(() => undefined);
    },
  };
}

/** Throws unless `path` is free or a socket nobody listens on. */
async function checkExisting(path: string, logger: Logger): Promise<void> {
  // Synchronous for throwIfNoEntry: a path that is free, the usual case, makes no error object.
  let existing: Stats | undefined;
  try {
    existing = lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    throw new QmpxError(`cannot check ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (existing === undefined) return;
  if (!existing.isSocket()) throw new QmpxError(`${path} exists and is not a socket; refusing to replace it`);
  const verdict = await probe(path);
  if (verdict === 'live') throw new QmpxError(`${path} is in use: another server is listening on it`);
  logger.info({ socket: path }, 'replacing stale socket');
}

/** 'live' when something accepts connections on `path`, 'stale' when the file is a dead socket. */
function probe(path: string): Promise<'live' | 'stale'> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('live');
    }, PROBE_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('live');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') resolve('stale');
      else reject(new QmpxError(`cannot check ${path}: ${error.message}`, { cause: error }));
    });
  });
}

/**
 * Why `path` cannot serve as a socket, or undefined when it can: clients
 * connect to the final path, and it is first bound inside the private
 * directory beside it; both must fit `sun_path`.
 */
export function socketPathProblem(path: string): string | undefined {
  const finalBytes = Buffer.byteLength(path);
  if (finalBytes > MAX_SOCKET_PATH_BYTES) {
    return `path ${path} is ${finalBytes} bytes, longer than the ${MAX_SOCKET_PATH_BYTES} a UNIX socket address holds: no client could connect; use a shorter path`;
  }
  const bindBytes = Buffer.byteLength(join(dirname(path), `${PRIVATE_DIR_PREFIX}XXXXXX`, 's'));
  if (bindBytes > MAX_SOCKET_PATH_BYTES) {
    return `path ${path} is bound first as ${join(dirname(path), `${PRIVATE_DIR_PREFIX}XXXXXX`, 's')} (${bindBytes} bytes), longer than the ${MAX_SOCKET_PATH_BYTES} a UNIX socket address holds; use a shorter directory`;
  }
  return undefined;
}
