/** What the REMOTE, QEMU and domain program tables share, and the domain lookup they all do. */
import type { Logger } from '../log.js';
import type { SessionStore } from './client-session.js';
import type { CallContext } from './dispatch.js';
import type { DomainRegistry, LibvirtDomain } from './domains.js';
import type { LifecycleTracker } from './lifecycle.js';
import { ErrorCode, ErrorDomain } from './protocol.js';
import { RpcError } from './rpc-error.js';

/** What both program tables share. */
export interface ProgramContext {
  readonly domains: DomainRegistry;
  readonly sessions: SessionStore;
  readonly logger: Logger;
  readonly lifecycle: LifecycleTracker;
}

/**
 * libvirt's refusal of a write on a read-only connection (virCheckReadOnlyGoto),
 * raised from the error domain of the file that holds the API: DOM for
 * libvirt-domain.c, NONE for libvirt-qemu.c.
 */
export function readOnlyError(apiName: string, errorDomain: number = ErrorDomain.DOM): RpcError {
  return RpcError.report(ErrorCode.OPERATION_DENIED, errorDomain, `read only access prevents ${apiName}`);
}

/**
 * The open session's domain for `dom`, refusing writes on read-only
 * sessions with `writeApi`'s name, from `refusalDomain` (see readOnlyError).
 */
export function openDomain(
  context: ProgramContext,
  call: CallContext,
  dom: { uuid: Buffer; name: string; id: number },
  writeApi?: string,
  refusalDomain: number = ErrorDomain.DOM,
): LibvirtDomain {
  const session = context.sessions.of(call.connection);
  session.requireOpen();
  if (writeApi !== undefined && session.readOnly) throw readOnlyError(writeApi, refusalDomain);
  const domain = context.domains.resolve(dom);
  call.note.domain = domain.name;
  return domain;
}

