/**
 * A bare libvirt RPC client for the endpoint specs: frames calls, collects
 * every message the server sends, and waits for one by predicate with a
 * deadline (never by sleeping).
 */
import net from 'node:net';
import { FrameDecoder, encodeMessage, type RpcHeader, type RpcMessage } from '../../lib/rpc/framing.js';
import { MessageStatus, MessageType, RPC_PROTOCOL_VERSION } from '../../lib/rpc/protocol.js';
import { decodeXdr, encodeXdr, type XdrCodec } from '../../lib/rpc/xdr.js';
import { remoteError, type RemoteError } from '../../lib/rpc/messages.js';

export const WAIT_DEADLINE_MS = 10_000;

export class RpcTestClient {
  readonly received: RpcMessage[] = [];
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];
  private nextSerial = 1;
  ended = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.received.push(...this.decoder.decode(chunk));
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(path: string): Promise<RpcTestClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      socket.once('connect', () => resolve(new RpcTestClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves with the first received message matching `predicate`, or rejects after the deadline. */
  async waitFor(predicate: (message: RpcMessage) => boolean, what: string, deadlineMs = WAIT_DEADLINE_MS): Promise<RpcMessage> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const found = this.received.find(predicate);
      if (found) return found;
      if (this.ended) throw new Error(`connection ended while waiting for ${what}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no ${what} within ${deadlineMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once the server closed the connection, or rejects after the deadline. */
  async waitForEnd(deadlineMs = WAIT_DEADLINE_MS): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (!this.ended) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`connection still open after ${deadlineMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Sends a CALL and returns its serial. */
  send<Args>(prog: number, proc: number, codec: XdrCodec<Args>, args: Args, serial = this.nextSerial++): number {
    const header: RpcHeader = { prog, vers: RPC_PROTOCOL_VERSION, proc, type: MessageType.CALL, serial, status: MessageStatus.OK };
    this.socket.write(encodeMessage(header, encodeXdr(codec, args)));
    return serial;
  }

  /** Sends a CALL and waits for its reply (matched by program, procedure and serial). */
  async call<Args, Reply>(prog: number, proc: number, codec: XdrCodec<Args>, args: Args, replyCodec: XdrCodec<Reply>): Promise<Reply> {
    const reply = await this.callRaw(prog, proc, codec, args);
    if (reply.header.status !== MessageStatus.OK) {
      const error = decodeXdr(remoteError, reply.body);
      throw Object.assign(new Error(error.message ?? 'error reply'), { remote: error });
    }
    return decodeXdr(replyCodec, reply.body);
  }

  /** Sends a CALL and resolves with the remote_error it must fail with. */
  async callFails<Args>(prog: number, proc: number, codec: XdrCodec<Args>, args: Args): Promise<RemoteError> {
    const reply = await this.callRaw(prog, proc, codec, args);
    if (reply.header.status !== MessageStatus.ERROR) throw new Error(`proc ${proc} succeeded, expected an error`);
    return decodeXdr(remoteError, reply.body);
  }

  async callRaw<Args>(prog: number, proc: number, codec: XdrCodec<Args>, args: Args): Promise<RpcMessage> {
    const serial = this.send(prog, proc, codec, args);
    return this.waitFor(
      (m) => m.header.type === MessageType.REPLY && m.header.serial === serial && m.header.proc === proc && m.header.prog === prog,
      `reply to proc ${proc} serial ${serial}`,
    );
  }

  close(): void {
    this.socket.destroy();
  }
}
