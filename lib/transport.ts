/**
 * Where a monitor lives and how to reach it: target parsing, connecting, and
 * reading the first bytes that tell QMP from HMP.
 */
import type net from 'node:net';
import { ConnectionClosedError, GreetingTimeoutError, QmpxError, UnsupportedError } from './errors.js';
import type { FdSender } from './fd/connect.js';

export type { FdSender } from './fd/connect.js';

export type ConnectOptions = { path: string } | { host: string; port: number } | { socket: net.Socket };

/**
 * Parses `'/path/sock'`, `'unix:/path/sock'` or `'tcp:HOST:PORT'` (IPv6
 * hosts in brackets: `tcp:[::1]:4444`). Throws QmpxError on anything else.
 */
export function parseTarget(target: string | ConnectOptions): ConnectOptions {
  if (typeof target !== 'string') return target;
  if (target.startsWith('unix:')) {
    const path = target.slice('unix:'.length);
    if (path === '') throw new QmpxError(`invalid monitor address ${JSON.stringify(target)}: empty path`);
    return { path };
  }
  if (target.startsWith('tcp:')) {
    const match = /^tcp:(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(target);
    const port = match ? Number(match[3]) : NaN;
    if (!match || port < 1 || port > 65535) {
      throw new QmpxError(`invalid monitor address ${JSON.stringify(target)}: expected tcp:HOST:PORT`);
    }
    return { host: (match[1] ?? match[2])!, port };
  }
  if (target === '') throw new QmpxError('invalid monitor address: empty');
  return { path: target };
}

/** A human-readable form of a target, for messages and logs. */
export function describeTarget(target: ConnectOptions): string {
  if ('socket' in target) return 'provided socket';
  if ('path' in target) return target.path;
  return `tcp:${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
}

let netModule: Promise<typeof net> | undefined;

/**
 * Opens a stream connection. Rejects with ConnectionClosedError (cause: the
 * system error) if the address refuses, or GreetingTimeoutError if connecting
 * itself outlasts the deadline.
 */
export function openSocket(target: ConnectOptions, deadlineMs: number): Promise<net.Socket> {
  if ('socket' in target) return Promise.resolve(target.socket);
  // node:net (and the stream modules under it) is loaded by the first connection, not by import('qmpx'); imported once.
  netModule ??= import('node:net').then((module) => module.default);
  return netModule.then(
    (net) =>
      new Promise((resolve, reject) => {
        const socket = 'path' in target ? net.createConnection(target.path) : net.createConnection(target.port, target.host);
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new GreetingTimeoutError(deadlineMs));
        }, deadlineMs);
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.removeAllListeners('error');
          resolve(socket);
        });
        socket.once('error', (error) => {
          clearTimeout(timer);
          reject(new ConnectionClosedError(`cannot connect to ${describeTarget(target)}: ${error.message}`, { cause: error }));
        });
      }),
  );
}

/** Whether a connection can carry file descriptors: its sender, or why not (for the refusal's message). */
export type FdPassing = { readonly sender: FdSender } | { readonly sender: null; readonly reason: string };

/** A connection opened without the `fdPassing` option. */
export const FD_PASSING_NOT_ASKED: FdPassing = { sender: null, reason: 'the connection was opened without { fdPassing: true }' };

/**
 * Opens a connection as openSocket() does; with `fdPassing`, one that can
 * carry file descriptors (lib/fd/connect.ts), which only a unix socket
 * path can: UnsupportedError for TCP and provided sockets, before anything
 * is opened.
 */
export async function openConnection(target: ConnectOptions, deadlineMs: number, fdPassing: boolean): Promise<{ socket: net.Socket; fdPassing: FdPassing }> {
  if (!fdPassing) return { socket: await openSocket(target, deadlineMs), fdPassing: noFdPassing(target) };
  if (!('path' in target)) {
    throw new UnsupportedError(
      'socket' in target
        ? 'fdPassing: a socket given to connect() cannot carry file descriptors; give its path instead'
        : `fdPassing: file descriptors travel only over a unix socket (SCM_RIGHTS), not ${describeTarget(target)}`,
    );
  }
  const { connectFdSocket } = await import('./fd/connect.js');
  try {
    const { socket, sender } = await connectFdSocket(target.path);
    return { socket, fdPassing: { sender } };
  } catch (error) {
    if (error instanceof QmpxError) throw error;
    throw new ConnectionClosedError(`cannot connect to ${describeTarget(target)}: ${(error as Error).message}`, { cause: error });
  }
}

function noFdPassing(target: ConnectOptions): FdPassing {
  if ('path' in target) return FD_PASSING_NOT_ASKED;
  if ('socket' in target) return { sender: null, reason: 'a socket given to connect() cannot carry them' };
  return { sender: null, reason: 'a TCP connection cannot carry them (they travel only over a unix socket)' };
}

/**
 * Waits for the peer's first bytes. QEMU greets at once on accept, so silence
 * means another client holds the monitor (docs/monitor-facts.md §2). Resolves with what
 * arrived; the socket is left paused with no data listener.
 */
export function readFirstBytes(socket: net.Socket, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.pause();
    };
    const onData = (chunk: Buffer): void => {
      cleanup();
      resolve(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new ConnectionClosedError('the monitor closed the connection before greeting'));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new ConnectionClosedError(`the monitor connection failed before greeting: ${error.message}`, { cause: error }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new GreetingTimeoutError(timeoutMs));
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
  });
}
