/**
 * Program dispatch (libvirt's virnetserverprogram.c): one table of
 * procedures per (program, version); a call is looked up, its args decoded,
 * its handler awaited, and its reply encoded, and every failure on the way
 * becomes the error reply libvirt would send: status ERROR, the call's
 * prog/vers/proc/serial, type REPLY, a remote_error body.
 *
 *   CALL ──▶ program known? ──no──▶ "Cannot find program P version V"
 *              │ yes
 *            status OK? ──────no──▶ "Unexpected message status S"
 *              │ yes
 *            proc known? ─────no──▶ "unknown procedure: N"
 *              │ yes
 *            args decode? ────no──▶ "Unable to decode message payload"
 *              │ yes
 *            handler ──throws RpcError──▶ that error
 *              │      ──throws anything else──▶ INTERNAL_ERROR "internal error: <message>"
 *            reply encodes? ──no──▶ "Unable to encode message payload"
 *              │ yes
 *            REPLY, status OK
 *
 * All of these are code RPC (39), domain RPC (7) unless the handler chose
 * otherwise; the wording is libvirt 9.0's. Only CALL and CALL_WITH_FDS are
 * answered: libvirt drops any other type sent to a server (REPLY, MESSAGE,
 * STREAM, unknown) without a word, and so does this. Nothing here closes a
 * connection: every outcome is one reply or none.
 */
import type { ProcedureSpec } from './procedure-spec.js';
import type { RpcConnection } from './connection.js';
import { XdrError } from './errors.js';
import { RpcError } from './rpc-error.js';
import { encodeMessage, type RpcHeader, type RpcMessage } from './framing.js';
import { remoteError } from './messages.js';
import { ErrorCode, ErrorDomain, HEADER_BYTES, MessageStatus, MessageType, RPC_PROTOCOL_VERSION, RpcLimit } from './protocol.js';
import { XdrReader, XdrWriter, encodeXdr } from './xdr.js';

/** What a handler is told about the call it serves. */
export interface CallContext {
  readonly header: RpcHeader;
  /** File descriptors the client announced (CALL_WITH_FDS). */
  readonly fdCount: number;
  /**
   * The fds that came with the call, when the connection receives fds
   * (RpcConnection `receivesFds`); fewer than `fdCount` only when the
   * client did not send them all. The connection closes them once the
   * handler has settled.
   */
  readonly fds: readonly number[];
  /** Aborted when the connection closes: the reply would be dropped, so stop working. */
  readonly signal: AbortSignal;
  /** The connection the call came on: for per-connection state and later MESSAGEs (events). */
  readonly connection: RpcConnection;
  /** What the handler tells the audit about the call (the domain, the monitor command); fresh per call. */
  readonly note: CallNote;
}

/** What a handler notes about its call for the audit log. */
export interface CallNote {
  /** The domain the call acted on. */
  domain?: string;
  /** What the call ran on the monitor as the client sent it: QMP JSON text, or an HMP command line. */
  monitorCommand?: string;
  /** Set with `monitorCommand` for an HMP line. */
  hmp?: boolean;
  /** The QMP error class of a pass-through reply that is an error (the call itself succeeded). */
  qmpErrorClass?: string;
  /** File descriptors the call passed to QEMU with its command. */
  fds?: number;
}

/** One served call, as the dispatcher reports it once its reply is built. */
export interface CallReport {
  readonly header: RpcHeader;
  readonly connection: RpcConnection;
  readonly note: CallNote;
  /** The error the reply carries; undefined for a success. */
  readonly error: RpcError | undefined;
}

/** One table entry. Method syntax on purpose: entries of any Args/Reply fit one table. */
export interface Procedure<Args, Reply> {
  /** Reads the args; throws XdrError on bad bytes. Bytes after the args are ignored, as in libvirt. */
  decodeArgs(reader: XdrReader): Args;
  /** Serves the call; throw RpcError to send a specific libvirt error. */
  handler(args: Args, call: CallContext): Reply | Promise<Reply>;
  /** Writes the reply body; may throw XdrError (e.g. a string over 4 MiB). */
  encodeReply(writer: XdrWriter, reply: Reply): void;
}

/** A table entry from the catalog's codecs for this procedure plus a handler. */
export function procedure<Args, Reply>(
  spec: ProcedureSpec<Args, Reply>,
  handler: (args: Args, call: CallContext) => Reply | Promise<Reply>,
): Procedure<Args, Reply> {
  return {
    decodeArgs: (reader) => spec.args.decode(reader),
    handler,
    encodeReply: (writer, reply) => spec.reply.encode(writer, reply),
  };
}

/** The procedures of one (program, version). */
export class ProgramTable {
  private readonly procedures = new Map<number, Procedure<unknown, unknown>>();
  /**
   * The error of a procedure this table does not define; by default
   * libvirt's `unknown procedure: N`. A program whose procedures are all
   * known sets one that names the API (REMOTE: NO_SUPPORT).
   */
  unknownProcedureError: (proc: number) => RpcError = (proc) => rpcError(`unknown procedure: ${proc}`);

  constructor(
    readonly program: number,
    readonly version: number = RPC_PROTOCOL_VERSION,
  ) {}

  /** Adds `proc`; throws Error if it is already defined (a wiring bug). */
  define<Args, Reply>(proc: number, entry: Procedure<Args, Reply>): this {
    if (this.procedures.has(proc)) throw new Error(`procedure ${proc} of program ${this.program.toString(16)} defined twice`);
    this.procedures.set(proc, entry);
    return this;
  }

  lookup(proc: number): Procedure<unknown, unknown> | undefined {
    return this.procedures.get(proc);
  }
}

export interface DispatcherOptions {
  /**
   * Told about every failure that is not the client's fault: a handler or a
   * codec threw something other than RpcError / XdrError. The client got an
   * error reply; this is for the log.
   */
  onUnexpectedError?(error: unknown, header: RpcHeader): void;
  /** Told about every call answered (not about messages dropped without an answer). */
  onCallDone?(report: CallReport): void;
}

/** Largest reply body: the message limit minus the header (replies never carry fds). */
const MAX_REPLY_BODY_BYTES = RpcLimit.MESSAGE_BYTES - HEADER_BYTES;

/** The error virReportError(VIR_ERR_RPC, ...) raises inside libvirt's RPC code (domain RPC). */
function rpcError(detail: string): RpcError {
  return RpcError.report(ErrorCode.RPC, ErrorDomain.RPC, detail);
}

/** Routes calls to program tables and turns every outcome into reply bytes. */
export class Dispatcher {
  private readonly tables = new Map<string, ProgramTable>();
  private readonly onUnexpectedError: (error: unknown, header: RpcHeader) => void;
  private readonly onCallDone: ((report: CallReport) => void) | undefined;

  /** Throws Error if two tables claim the same (program, version). */
  constructor(tables: Iterable<ProgramTable>, options: DispatcherOptions = {}) {
    for (const table of tables) {
      const key = tableKey(table.program, table.version);
      if (this.tables.has(key)) throw new Error(`program ${table.program.toString(16)} version ${table.version} registered twice`);
      this.tables.set(key, table);
    }
    this.onUnexpectedError = options.onUnexpectedError ?? (() => undefined);
    this.onCallDone = options.onCallDone;
  }

  /**
   * Serves one message. Resolves to the complete reply (success or error),
   * or null when libvirt would send nothing (any type but CALL /
   * CALL_WITH_FDS). Never rejects.
   */
  async dispatch(message: RpcMessage, call: Omit<CallContext, 'header' | 'fdCount' | 'note' | 'fds'> & { readonly fds?: readonly number[] }): Promise<Buffer | null> {
    const { header } = message;
    if (header.type !== MessageType.CALL && header.type !== MessageType.CALL_WITH_FDS) return null;
    const note: CallNote = {};
    const reported = (error: RpcError | undefined): void => this.onCallDone?.({ header, connection: call.connection, note, error });

    const table = this.tables.get(tableKey(header.prog, header.vers));
    // libvirt prints the unsigned header words with %d (virNetServerProgramUnknownError).
    const fail = (error: RpcError): Buffer => {
      reported(error);
      return this.errorReply(header, error);
    };
    if (!table) return fail(rpcError(`Cannot find program ${header.prog | 0} version ${header.vers | 0}`));
    if (header.status !== MessageStatus.OK) return fail(rpcError(`Unexpected message status ${header.status >>> 0}`));
    const entry = table.lookup(header.proc);
    if (!entry) return fail(table.unknownProcedureError(header.proc));

    let args: unknown;
    try {
      args = entry.decodeArgs(new XdrReader(message.body));
    } catch (error) {
      if (!(error instanceof XdrError)) this.onUnexpectedError(error, header);
      return fail(rpcError('Unable to decode message payload'));
    }

    let result: unknown;
    try {
      result = await entry.handler(args, { ...call, fds: call.fds ?? [], header, fdCount: message.fdCount, note });
    } catch (error) {
      if (error instanceof RpcError) return fail(error);
      this.onUnexpectedError(error, header);
      const detail = error instanceof Error ? error.message : String(error);
      return fail(RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.RPC, detail, { cause: error }));
    }

    try {
      const writer = new XdrWriter({ maxBytes: MAX_REPLY_BODY_BYTES });
      entry.encodeReply(writer, result);
      const reply = encodeMessage({ ...header, type: MessageType.REPLY, status: MessageStatus.OK }, writer.toBuffer());
      reported(undefined);
      return reply;
    } catch (error) {
      if (!(error instanceof XdrError)) this.onUnexpectedError(error, header);
      return fail(rpcError('Unable to encode message payload'));
    }
  }

  /**
   * The ERROR reply to `header`. An error whose own body cannot be encoded
   * (a string over 4 MiB) is replaced by "Unable to encode message payload".
   */
  private errorReply(header: RpcHeader, error: RpcError): Buffer {
    const replyHeader: RpcHeader = { ...header, type: MessageType.REPLY, status: MessageStatus.ERROR };
    try {
      return encodeMessage(replyHeader, encodeXdr(remoteError, error.remote, { maxBytes: MAX_REPLY_BODY_BYTES }));
    } catch {
      return encodeMessage(replyHeader, encodeXdr(remoteError, rpcError('Unable to encode message payload').remote));
    }
  }
}

function tableKey(program: number, version: number): string {
  return `${program >>> 0}/${version >>> 0}`;
}
