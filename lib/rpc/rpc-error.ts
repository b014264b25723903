/**
 * A procedure of the libvirt RPC layer failed (code RPC_ERROR, directly
 * below QmpxError in lib/errors.ts's tree). It carries the remote_error that
 * is sent back with status ERROR and the call's serial.
 */
import { QmpxError, type QmpxErrorOptions } from '../errors.js';
import type { RemoteError } from './messages.js';
import { ERROR_TEMPLATES, ErrorLevel, type ErrorCodeValue } from './protocol.js';

/**
 * A procedure failed. Handlers throw it; the dispatcher sends `remote` back
 * as the body of a status ERROR reply with the call's serial.
 */
export class RpcError extends QmpxError {
  override readonly code = 'RPC_ERROR';

  constructor(
    /** The exact remote_error to send. */
    readonly remote: RemoteError,
    options?: QmpxErrorOptions,
  ) {
    super(remote.message ?? `libvirt error ${remote.code}`, options);
  }

  /** libvirt's error number (remote_error.code). */
  get errorCode(): number {
    return this.remote.code;
  }

  /** libvirt's error domain (remote_error.domain). */
  get errorDomain(): number {
    return this.remote.domain;
  }

  /**
   * The error libvirt's virReportError(code, "%s", detail) would send:
   * message = the code's template filled with `detail`, str1 = the template,
   * str2 = `detail`, int1 = int2 = -1, level ERROR, no domain or network.
   * That is the shape of every error reply libvirt sent in the recorded
   * traffic of spec/rpc/vectors/mitm-*.log but one (the "unsupported flags"
   * one, which a caller can build with the constructor).
   */
  static report(code: ErrorCodeValue, domain: number, detail: string, options?: QmpxErrorOptions): RpcError {
    const template = ERROR_TEMPLATES[code];
    return new RpcError(
      {
        code,
        domain,
        message: template.replace('%s', () => detail),
        level: ErrorLevel.ERROR,
        dom: null,
        str1: template,
        str2: detail,
        str3: null,
        int1: -1,
        int2: -1,
        net: null,
      },
      options,
    );
  }
}
