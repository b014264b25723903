/**
 * The libvirt errors of the QEMU program whose shape is not the common
 * virReportError(code, "%s", detail) one.
 */
import { InvalidArgumentError } from '../errors.js';
import { RpcError } from './rpc-error.js';
import { ErrorCode, ErrorDomain, ErrorLevel } from './protocol.js';

/**
 * virCheckFlags' error: code INVALID_ARG, message `unsupported flags (0xN) in
 * function FN`, str1 the function, str2 "flags", int1 = int2 = 0 (mitm-py3).
 */
export function unsupportedFlags(flags: number, functionName: string, domain: number): RpcError {
  return new RpcError({
    code: ErrorCode.INVALID_ARG,
    domain,
    message: `unsupported flags (0x${(flags >>> 0).toString(16)}) in function ${functionName}`,
    level: ErrorLevel.ERROR,
    dom: null,
    str1: functionName,
    str2: 'flags',
    str3: null,
    int1: 0,
    int2: 0,
    net: null,
  });
}

/**
 * What a failed pass-through command becomes. Text that is not JSON is
 * libvirt's `internal error: cannot parse json CMD: REASON`, code 1, domain 0
 * (libvirt's JSON parser reports without a driver domain; REASON is qmpx's,
 * not yajl's); anything else (the monitor closed, a timeout) is an internal
 * error of the QEMU driver, domain 10.
 */
export function monitorCommandError(error: unknown, cmd: string): RpcError {
  if (error instanceof RpcError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof InvalidArgumentError && error.position !== undefined) {
    const reason = message.replace(/^cannot parse JSON: /, '');
    return RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.NONE, `cannot parse json ${cmd}: ${reason}`, { cause: error });
  }
  return RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.QEMU, message, { cause: error });
}
