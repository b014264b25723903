/**
 * The codecs of the domain procedures (domain-messages.ts) by procedure,
 * and of the domain event messages: what catalog.ts lists for the REMOTE
 * program beside the pass-through's calls.
 */
import {
  domainFlagsArgs,
  eventRegisterAnyArgs,
  getInfoReply,
  getStateReply,
  intReply,
  lifecycleEventMessage,
  listAllDomainsArgs,
  listAllDomainsReply,
  messagesReply,
  rebootEventMessage,
  securityLabelReply,
  securityModelReply,
  stringReply,
} from './domain-messages.js';
import { callbackIdBody, domainBody, emptyBody } from './messages.js';
import { RemoteProc } from './protocol.js';
import { procedureSpec, type ProcedureSpec } from './procedure-spec.js';
import type { XdrCodec } from './xdr.js';

const spec = procedureSpec;

export const domainProcedures = {
  connectListAllDomains: spec('CONNECT_LIST_ALL_DOMAINS', listAllDomainsArgs, listAllDomainsReply),
  domainGetState: spec('DOMAIN_GET_STATE', domainFlagsArgs, getStateReply),
  domainGetInfo: spec('DOMAIN_GET_INFO', domainBody, getInfoReply),
  domainGetOsType: spec('DOMAIN_GET_OS_TYPE', domainBody, stringReply),
  domainIsPersistent: spec('DOMAIN_IS_PERSISTENT', domainBody, intReply),
  domainGetAutostart: spec('DOMAIN_GET_AUTOSTART', domainBody, intReply),
  domainHasManagedSaveImage: spec('DOMAIN_HAS_MANAGED_SAVE_IMAGE', domainFlagsArgs, intReply),
  nodeGetSecurityModel: spec('NODE_GET_SECURITY_MODEL', emptyBody, securityModelReply),
  domainGetSecurityLabel: spec('DOMAIN_GET_SECURITY_LABEL', domainBody, securityLabelReply),
  domainGetMessages: spec('DOMAIN_GET_MESSAGES', domainFlagsArgs, messagesReply),
  domainGetXmlDesc: spec('DOMAIN_GET_XML_DESC', domainFlagsArgs, stringReply),
  domainReset: spec('DOMAIN_RESET', domainFlagsArgs, emptyBody),
  domainShutdown: spec('DOMAIN_SHUTDOWN', domainBody, emptyBody),
  domainShutdownFlags: spec('DOMAIN_SHUTDOWN_FLAGS', domainFlagsArgs, emptyBody),
  domainReboot: spec('DOMAIN_REBOOT', domainFlagsArgs, emptyBody),
  domainDestroy: spec('DOMAIN_DESTROY', domainBody, emptyBody),
  domainDestroyFlags: spec('DOMAIN_DESTROY_FLAGS', domainFlagsArgs, emptyBody),
  connectDomainEventCallbackRegisterAny: spec('CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', eventRegisterAnyArgs, callbackIdBody),
  connectDomainEventCallbackDeregisterAny: spec('CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY', callbackIdBody, emptyBody),
} as const;

type AnySpec = ProcedureSpec<unknown, unknown>;

/** The domain procedures by number, for catalog.ts. */
export const domainCalls: ReadonlyArray<[number, AnySpec]> = [
  [RemoteProc.CONNECT_LIST_ALL_DOMAINS, domainProcedures.connectListAllDomains],
  [RemoteProc.DOMAIN_GET_STATE, domainProcedures.domainGetState],
  [RemoteProc.DOMAIN_GET_INFO, domainProcedures.domainGetInfo],
  [RemoteProc.DOMAIN_GET_OS_TYPE, domainProcedures.domainGetOsType],
  [RemoteProc.DOMAIN_IS_PERSISTENT, domainProcedures.domainIsPersistent],
  [RemoteProc.DOMAIN_GET_AUTOSTART, domainProcedures.domainGetAutostart],
  [RemoteProc.DOMAIN_HAS_MANAGED_SAVE_IMAGE, domainProcedures.domainHasManagedSaveImage],
  [RemoteProc.NODE_GET_SECURITY_MODEL, domainProcedures.nodeGetSecurityModel],
  [RemoteProc.DOMAIN_GET_SECURITY_LABEL, domainProcedures.domainGetSecurityLabel],
  [RemoteProc.DOMAIN_GET_MESSAGES, domainProcedures.domainGetMessages],
  [RemoteProc.DOMAIN_GET_XML_DESC, domainProcedures.domainGetXmlDesc],
  [RemoteProc.DOMAIN_RESET, domainProcedures.domainReset],
  [RemoteProc.DOMAIN_SHUTDOWN, domainProcedures.domainShutdown],
  [RemoteProc.DOMAIN_SHUTDOWN_FLAGS, domainProcedures.domainShutdownFlags],
  [RemoteProc.DOMAIN_REBOOT, domainProcedures.domainReboot],
  [RemoteProc.DOMAIN_DESTROY, domainProcedures.domainDestroy],
  [RemoteProc.DOMAIN_DESTROY_FLAGS, domainProcedures.domainDestroyFlags],
  [RemoteProc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, domainProcedures.connectDomainEventCallbackRegisterAny],
  [RemoteProc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, domainProcedures.connectDomainEventCallbackDeregisterAny],
] as ReadonlyArray<[number, AnySpec]>;

/** The domain event messages (server → client) by number, for catalog.ts. */
export const domainEventMessages: ReadonlyArray<[number, { name: string; body: XdrCodec<unknown> }]> = [
  [RemoteProc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, { name: 'DOMAIN_EVENT_CALLBACK_LIFECYCLE', body: lifecycleEventMessage as XdrCodec<unknown> }],
  [RemoteProc.DOMAIN_EVENT_CALLBACK_REBOOT, { name: 'DOMAIN_EVENT_CALLBACK_REBOOT', body: rebootEventMessage as XdrCodec<unknown> }],
];
