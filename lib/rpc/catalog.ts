/**
 * Which body layout goes with which (program, procedure): the args and reply
 * codecs of every call a minimal endpoint meets, and the codecs of the
 * unsolicited MESSAGE bodies. Program implementations take their codecs
 * from here (see `procedure()` in dispatch.ts); tests and debug logging use
 * `describeBody()` to decode any captured message.
 */
import {
  agentCommandArgs,
  agentCommandReply,
  authListReply,
  callbackIdBody,
  connectOpenArgs,
  domainBody,
  emptyBody,
  getTypeReply,
  getUriReply,
  getVersionReply,
  isActiveReply,
  lookupByIdArgs,
  lookupByNameArgs,
  lookupByUuidArgs,
  monitorCommandArgs,
  monitorCommandReply,
  monitorEventMessage,
  monitorEventRegisterArgs,
  remoteError,
  supportsFeatureArgs,
  supportsFeatureReply,
} from './messages.js';
import { domainCalls, domainEventMessages } from './domain-catalog.js';
import { KeepaliveProc, MessageStatus, MessageType, QemuProc, RemoteProc, RpcProgram } from './protocol.js';
import { procedureSpec, type ProcedureSpec } from './procedure-spec.js';
import type { XdrCodec } from './xdr.js';


const spec = procedureSpec;

/** REMOTE program calls. */
export const remoteProcedures = {
  connectOpen: spec('CONNECT_OPEN', connectOpenArgs, emptyBody),
  connectClose: spec('CONNECT_CLOSE', emptyBody, emptyBody),
  connectGetType: spec('CONNECT_GET_TYPE', emptyBody, getTypeReply),
  connectGetVersion: spec('CONNECT_GET_VERSION', emptyBody, getVersionReply),
  domainLookupById: spec('DOMAIN_LOOKUP_BY_ID', lookupByIdArgs, domainBody),
  domainLookupByName: spec('DOMAIN_LOOKUP_BY_NAME', lookupByNameArgs, domainBody),
  domainLookupByUuid: spec('DOMAIN_LOOKUP_BY_UUID', lookupByUuidArgs, domainBody),
  domainResume: spec('DOMAIN_RESUME', domainBody, emptyBody),
  domainSuspend: spec('DOMAIN_SUSPEND', domainBody, emptyBody),
  connectSupportsFeature: spec('CONNECT_SUPPORTS_FEATURE', supportsFeatureArgs, supportsFeatureReply),
  authList: spec('AUTH_LIST', emptyBody, authListReply),
  connectGetUri: spec('CONNECT_GET_URI', emptyBody, getUriReply),
  domainIsActive: spec('DOMAIN_IS_ACTIVE', domainBody, isActiveReply),
  connectRegisterCloseCallback: spec('CONNECT_REGISTER_CLOSE_CALLBACK', emptyBody, emptyBody),
  connectUnregisterCloseCallback: spec('CONNECT_UNREGISTER_CLOSE_CALLBACK', emptyBody, emptyBody),
} as const;

/** QEMU program calls. */
export const qemuProcedures = {
  domainMonitorCommand: spec('DOMAIN_MONITOR_COMMAND', monitorCommandArgs, monitorCommandReply),
  domainAgentCommand: spec('DOMAIN_AGENT_COMMAND', agentCommandArgs, agentCommandReply),
  connectDomainMonitorEventRegister: spec('CONNECT_DOMAIN_MONITOR_EVENT_REGISTER', monitorEventRegisterArgs, callbackIdBody),
  connectDomainMonitorEventDeregister: spec('CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER', callbackIdBody, emptyBody),
  domainMonitorCommandWithFiles: spec('DOMAIN_MONITOR_COMMAND_WITH_FILES', monitorCommandArgs, monitorCommandReply),
} as const;

type AnySpec = ProcedureSpec<unknown, unknown>;

const callsByProgram = new Map<number, ReadonlyMap<number, AnySpec>>([
  [
    RpcProgram.REMOTE,
    new Map<number, AnySpec>([
      [RemoteProc.CONNECT_OPEN, remoteProcedures.connectOpen],
      [RemoteProc.CONNECT_CLOSE, remoteProcedures.connectClose],
      [RemoteProc.CONNECT_GET_TYPE, remoteProcedures.connectGetType],
      [RemoteProc.CONNECT_GET_VERSION, remoteProcedures.connectGetVersion],
      [RemoteProc.DOMAIN_LOOKUP_BY_ID, remoteProcedures.domainLookupById],
      [RemoteProc.DOMAIN_LOOKUP_BY_NAME, remoteProcedures.domainLookupByName],
      [RemoteProc.DOMAIN_LOOKUP_BY_UUID, remoteProcedures.domainLookupByUuid],
      [RemoteProc.DOMAIN_RESUME, remoteProcedures.domainResume],
      [RemoteProc.DOMAIN_SUSPEND, remoteProcedures.domainSuspend],
      [RemoteProc.CONNECT_SUPPORTS_FEATURE, remoteProcedures.connectSupportsFeature],
      [RemoteProc.AUTH_LIST, remoteProcedures.authList],
      [RemoteProc.CONNECT_GET_URI, remoteProcedures.connectGetUri],
      [RemoteProc.DOMAIN_IS_ACTIVE, remoteProcedures.domainIsActive],
      [RemoteProc.CONNECT_REGISTER_CLOSE_CALLBACK, remoteProcedures.connectRegisterCloseCallback],
      [RemoteProc.CONNECT_UNREGISTER_CLOSE_CALLBACK, remoteProcedures.connectUnregisterCloseCallback],
      ...domainCalls,
    ]),
  ],
  [
    RpcProgram.QEMU,
    new Map<number, AnySpec>([
      [QemuProc.DOMAIN_MONITOR_COMMAND, qemuProcedures.domainMonitorCommand],
      [QemuProc.DOMAIN_AGENT_COMMAND, qemuProcedures.domainAgentCommand],
      [QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_REGISTER, qemuProcedures.connectDomainMonitorEventRegister],
      [QemuProc.CONNECT_DOMAIN_MONITOR_EVENT_DEREGISTER, qemuProcedures.connectDomainMonitorEventDeregister],
      [QemuProc.DOMAIN_MONITOR_COMMAND_WITH_FILES, qemuProcedures.domainMonitorCommandWithFiles],
    ]),
  ],
]);

/** Unsolicited MESSAGE bodies, by program then procedure. */
const messagesByProgram = new Map<number, ReadonlyMap<number, { name: string; body: XdrCodec<unknown> }>>([
  [RpcProgram.REMOTE, new Map(domainEventMessages)],
  [RpcProgram.QEMU, new Map([[QemuProc.DOMAIN_MONITOR_EVENT, { name: 'DOMAIN_MONITOR_EVENT', body: monitorEventMessage }]])],
  [
    RpcProgram.KEEPALIVE,
    new Map([
      [KeepaliveProc.PING, { name: 'PING', body: emptyBody }],
      [KeepaliveProc.PONG, { name: 'PONG', body: emptyBody }],
    ]),
  ],
]);

/** The call spec of (program, procedure), or undefined when this catalog does not know it. */
export function findProcedure(program: number, procedure: number): AnySpec | undefined {
  return callsByProgram.get(program)?.get(procedure);
}

/** What a message body is, from its header: a name and the codec that reads it. */
export interface BodyDescription {
  readonly name: string;
  readonly role: 'args' | 'reply' | 'error' | 'message';
  readonly codec: XdrCodec<unknown>;
}

/**
 * The layout of a message's body judged from its header alone, or undefined
 * for a (program, procedure, type) this catalog does not know. Any status
 * ERROR body is a remote_error, whatever the procedure.
 */
export function describeBody(header: {
  prog: number;
  proc: number;
  type: number;
  status: number;
}): BodyDescription | undefined {
  if (header.status === MessageStatus.ERROR) {
    const name = findProcedure(header.prog, header.proc)?.name ?? `proc ${header.proc}`;
    return { name, role: 'error', codec: remoteError };
  }
  switch (header.type) {
    case MessageType.CALL:
    case MessageType.CALL_WITH_FDS: {
      const found = findProcedure(header.prog, header.proc);
      return found && { name: found.name, role: 'args', codec: found.args };
    }
    case MessageType.REPLY:
    case MessageType.REPLY_WITH_FDS: {
      const found = findProcedure(header.prog, header.proc);
      return found && { name: found.name, role: 'reply', codec: found.reply };
    }
    case MessageType.MESSAGE: {
      const found = messagesByProgram.get(header.prog)?.get(header.proc);
      return found && { name: found.name, role: 'message', codec: found.body };
    }
    default:
      return undefined;
  }
}
