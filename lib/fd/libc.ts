/**
 * The C library calls that file-descriptor passing needs and Node does not
 * offer: SCM_RIGHTS ancillary data (sendmsg/recvmsg), unix sockets made from
 * a file descriptor qmpx owns, and readiness from libuv's own poll handle so
 * reads happen on the main thread without a second event loop.
 *
 * Bound through koffi (a maintained FFI with prebuilt binaries for every
 * platform Node runs on). Loading koffi costs start-up time, so import this
 * module lazily (`await import(...)`) and only where fds are asked for; a
 * connection that never carries fds never loads it. Linux x86-64 and arm64
 * layouts (64-bit size_t, 16-byte cmsghdr); other platforms are refused by
 * `assertSupportedPlatform`.
 */
import koffi from 'koffi';
import { UnsupportedError } from '../errors.js';

export function assertSupportedPlatform(): void {
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
    throw new UnsupportedError(`file descriptor passing is implemented for Linux x86-64 and arm64, not ${process.platform} ${process.arch}`);
  }
}

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CTRUNC = 0x8;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const SHUT_RDWR = 2;
export const EAGAIN = 11;
export const EINTR = 4;
export const EINPROGRESS = 115;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const SO_PEERCRED = 17;
/** Room of a cmsghdr before its data: cmsg_len (size_t) and two ints. */
const CMSG_HEADER = 16;
/** The most fds one message may carry here; the kernel's own cap is 253. */
export const MAX_FDS_PER_MESSAGE = 253;

const libc = koffi.load('libc.so.6');
koffi.struct('qmpx_iovec', { iov_base: 'void *', iov_len: 'size_t' });
koffi.struct('qmpx_msghdr', {
  msg_name: 'void *',
  msg_namelen: 'uint32_t',
  msg_iov: 'qmpx_iovec *',
  msg_iovlen: 'size_t',
  msg_control: 'void *',
  msg_controllen: 'size_t',
  msg_flags: 'int',
});

const cSocket = libc.func('int socket(int domain, int type, int protocol)');
const cConnect = libc.func('int connect(int fd, const void *addr, uint32_t len)');
const cBind = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const cListen = libc.func('int listen(int fd, int backlog)');
const cAccept4 = libc.func('int accept4(int fd, void *addr, void *len, int flags)');
const cClose = libc.func('int close(int fd)');
const cShutdown = libc.func('int shutdown(int fd, int how)');
const cDup = libc.func('int fcntl(int fd, int cmd, int arg)');
const cGetsockopt = libc.func('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *len)');
const cSendmsg = libc.func('intptr_t sendmsg(int fd, const qmpx_msghdr *msg, int flags)');
const cRecvmsg = libc.func('intptr_t recvmsg(int fd, _Inout_ qmpx_msghdr *msg, int flags)');

/** A system call failed: `code` is errno's name where known, `errno` its number. */
export class SystemCallError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call} failed: ${errnoName(errno)}`);
    this.name = 'SystemCallError';
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

const errnoNames = new Map<number, string>(Object.entries(koffi.os.errno).map(([name, number]) => [number, name]));
function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

function check(call: string, result: number): number {
  if (result < 0) throw new SystemCallError(call, koffi.errno());
  return result;
}

/** A `struct sockaddr_un` for `path`; the kernel's limit is 107 bytes plus NUL. */
function unixAddress(path: string): { address: Buffer; length: number } {
  const bytes = Buffer.byteLength(path);
  if (bytes > 107) throw new UnsupportedError(`unix socket path longer than 107 bytes: ${path}`);
  const address = Buffer.alloc(110);
  address.writeUInt16LE(AF_UNIX, 0);
  address.write(path, 2);
  return { address, length: 2 + bytes + 1 };
}

/** A non-blocking, close-on-exec unix stream socket. */
export function unixSocket(): number {
  return check('socket', cSocket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

/**
 * Connects `fd` to `path`. A unix socket connects at once or fails; EAGAIN
 * (the listener's backlog is full) is reported as a failure like any other.
 */
export function connectUnix(fd: number, path: string): void {
  const { address, length } = unixAddress(path);
  check('connect', cConnect(fd, address, length));
}

export function bindUnix(fd: number, path: string): void {
  const { address, length } = unixAddress(path);
  check('bind', cBind(fd, address, length));
}

export function listen(fd: number, backlog: number): void {
  check('listen', cListen(fd, backlog));
}

/** The next pending connection as a non-blocking, close-on-exec fd, or -1 when none is waiting. */
export function accept(fd: number): number {
  const result = cAccept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (result >= 0) return result;
  const errno = koffi.errno();
  if (errno === EAGAIN || errno === EINTR) return -1;
  throw new SystemCallError('accept4', errno);
}

export function close(fd: number): void {
  check('close', cClose(fd));
}

/** Closes fds that qmpx owns, ignoring ones already closed. */
export function closeAll(fds: Iterable<number>): void {
  for (const fd of fds) cClose(fd);
}

export function shutdown(fd: number): void {
  cShutdown(fd, SHUT_RDWR);
}

/** A close-on-exec duplicate of `fd` (F_DUPFD_CLOEXEC). */
export function duplicate(fd: number): number {
  return check('fcntl(F_DUPFD_CLOEXEC)', cDup(fd, 1030, 0));
}

/** The peer's pid, uid and gid of a connected unix socket (SO_PEERCRED). */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  const value = Buffer.alloc(12);
  const length = [12];
  check('getsockopt(SO_PEERCRED)', cGetsockopt(fd, SOL_SOCKET, SO_PEERCRED, value, length));
  return { pid: value.readInt32LE(0), uid: value.readUInt32LE(4), gid: value.readUInt32LE(8) };
}

function rightsControl(fds: readonly number[]): { control: Buffer | null; length: number } {
  if (fds.length === 0) return { control: null, length: 0 };
  const dataLength = CMSG_HEADER + 4 * fds.length;
  const length = (dataLength + 7) & ~7;
  const control = Buffer.alloc(length);
  control.writeBigUInt64LE(BigInt(dataLength), 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  fds.forEach((fd, index) => control.writeInt32LE(fd, CMSG_HEADER + 4 * index));
  return { control, length };
}

/**
 * Sends `bytes` on `fd` with `fds` attached as SCM_RIGHTS (the kernel hands
 * them over with the first byte). Returns how many bytes went out (possibly
 * fewer than asked: the caller writes the rest without fds), or -1 when the
 * socket would block and nothing was sent. The caller keeps its fds: the
 * kernel duplicated them into the message, so they may be closed on return.
 */
export function sendWithFds(fd: number, bytes: Uint8Array, fds: readonly number[]): number {
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new UnsupportedError(`at most ${MAX_FDS_PER_MESSAGE} fds per message, not ${fds.length}`);
  const { control, length } = rightsControl(fds);
  const message = {
    msg_name: null,
    msg_namelen: 0,
    msg_iov: [{ iov_base: bytes, iov_len: bytes.length }],
    msg_iovlen: 1,
    msg_control: control,
    msg_controllen: length,
    msg_flags: 0,
  };
  for (;;) {
    const sent = Number(cSendmsg(fd, message, MSG_NOSIGNAL | MSG_DONTWAIT));
    if (sent >= 0) return sent;
    const errno = koffi.errno();
    if (errno === EINTR) continue;
    if (errno === EAGAIN) return -1;
    throw new SystemCallError('sendmsg', errno);
  }
}

export interface Received {
  /** Bytes read (0 means the peer closed its end). */
  readonly length: number;
  /** The fds that came with these bytes, now owned by the caller (close-on-exec). */
  readonly fds: number[];
  /** The kernel dropped fds that did not fit the control buffer (MSG_CTRUNC). */
  readonly truncated: boolean;
}

/**
 * Reads into `buffer` from non-blocking `fd`, collecting any SCM_RIGHTS fds
 * (up to `maxFds`; more are closed by the kernel and `truncated` is set).
 * Returns null when nothing is waiting.
 */
export function receiveWithFds(fd: number, buffer: Uint8Array, maxFds: number): Received | null {
  const control = Buffer.alloc((CMSG_HEADER + 4 * Math.max(1, maxFds) + 7) & ~7);
  const message = {
    msg_name: null,
    msg_namelen: 0,
    msg_iov: [{ iov_base: buffer, iov_len: buffer.length }],
    msg_iovlen: 1,
    msg_control: control,
    msg_controllen: control.length,
    msg_flags: 0,
  };
  let length: number;
  for (;;) {
    length = Number(cRecvmsg(fd, message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (length >= 0) break;
    const errno = koffi.errno();
    if (errno === EINTR) continue;
    if (errno === EAGAIN) return null;
    throw new SystemCallError('recvmsg', errno);
  }
  const fds: number[] = [];
  let offset = 0;
  const controlLength = Number(message.msg_controllen);
  while (offset + CMSG_HEADER <= controlLength) {
    const cmsgLength = Number(control.readBigUInt64LE(offset));
    if (cmsgLength < CMSG_HEADER) break;
    if (control.readInt32LE(offset + 8) === SOL_SOCKET && control.readInt32LE(offset + 12) === SCM_RIGHTS) {
      for (let at = offset + CMSG_HEADER; at + 4 <= offset + cmsgLength; at += 4) fds.push(control.readInt32LE(at));
    }
    offset += (cmsgLength + 7) & ~7;
  }
  return { length, fds, truncated: (message.msg_flags & MSG_CTRUNC) !== 0 };
}
