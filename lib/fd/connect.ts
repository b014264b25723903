/**
 * A unix-socket connection that can attach file descriptors to what it
 * writes. The socket is made and connected here (lib/fd/libc.ts), so its fd
 * number is known, and then handed to Node as an ordinary `net.Socket`:
 * reads and writes go through Node as on any connection. Only a message
 * that carries fds is written with sendmsg on the same fd, by whoever holds
 * the FdSender, after Node has handed over everything queued before it
 * (lib/session/fd-writer.ts).
 *
 * This module loads no native code itself: the FFI module is imported when
 * a connection is opened, so a program that never asks for fd passing never
 * loads it.
 */
import net from 'node:net';
import { ConnectionClosedError, UnsupportedError } from '../errors.js';

/** Writes bytes with file descriptors attached on one connection. */
export interface FdSender {
  /**
   * Sends `bytes` with `fds` attached (SCM_RIGHTS) straight to the kernel,
   * past Node's write queue, which the caller has let drain first. Returns
   * how many bytes the kernel took (the caller writes the rest without
   * fds), or -1 when it took nothing because the socket would block.
   * Throws ConnectionClosedError once the connection is closed, or the
   * system call's error (a SystemCallError with `code`, such as EBADF).
   * The fds stay the caller's: the kernel duplicates them into the message.
   */
  sendWithFds(bytes: Uint8Array, fds: readonly number[]): number;
}

export interface FdSocket {
  socket: net.Socket;
  sender: FdSender;
}

/**
 * Connects to the unix socket at `path`. Rejects with UnsupportedError
 * where fds cannot be passed here (the platform, or the FFI module
 * failing to load), or with the system call's error (ENOENT, ECONNREFUSED…).
 */
export async function connectFdSocket(path: string): Promise<FdSocket> {
  let libc: typeof import('./libc.js');
  try {
    libc = await import('./libc.js');
  } catch (error) {
    throw new UnsupportedError(
      `fdPassing: the FFI module (koffi) that sends file descriptors could not be loaded on ${process.platform} ${process.arch}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  libc.assertSupportedPlatform();
  const fd = libc.unixSocket();
  try {
    libc.connectUnix(fd, path);
  } catch (error) {
    libc.close(fd);
    throw error;
  }
  const socket = new net.Socket({ fd, readable: true, writable: true });
  const sender: FdSender = {
    sendWithFds(bytes, fds) {
      // Node closes the fd when the socket is destroyed; the number may then name something else.
      if (socket.destroyed) throw new ConnectionClosedError('the connection is closed');
      return libc.sendWithFds(fd, bytes, fds);
    },
  };
  return { socket, sender };
}
