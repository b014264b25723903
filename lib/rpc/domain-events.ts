/**
 * Domain event callbacks (REMOTE 316 / 317: what virConnectDomainEventRegisterAny
 * and `virsh event` use once the server supports REMOTE_EVENT_CALLBACK).
 *
 * Every event id libvirt 9.0 knows (0..26) can be registered, for one domain
 * or all, as libvirtd accepts them; LIFECYCLE (0) and REBOOT (1) are
 * delivered, from the LifecycleTracker, as DOMAIN_EVENT_CALLBACK_LIFECYCLE
 * (318) and DOMAIN_EVENT_CALLBACK_REBOOT (319), type MESSAGE, serial 1, as
 * libvirtd sends them. The others never fire: qmpx derives no such events.
 * Registrations end with deregistration, CONNECT_CLOSE or the connection.
 */
import { domainProcedures } from './domain-catalog.js';
import type { ProgramTable } from './dispatch.js';
import { procedure } from './dispatch.js';
import { lifecycleEventMessage, rebootEventMessage } from './domain-messages.js';
import { uuidBytes, uuidText } from './domains.js';
import { RpcError } from './rpc-error.js';
import type { DomainEvent } from './lifecycle.js';
import type { Domain } from './messages.js';
import { ErrorCode, ErrorDomain, MessageStatus, MessageType, RemoteProc, RPC_PROTOCOL_VERSION, RpcProgram } from './protocol.js';
import type { ProgramContext } from './program-context.js';
import { encodeXdr } from './xdr.js';

/** VIR_DOMAIN_EVENT_ID_LAST in libvirt 9.0. */
const EVENT_ID_LAST = 27;
const EVENT_ID_LIFECYCLE = 0;
const EVENT_ID_REBOOT = 1;

function messageHeader(proc: number): { prog: number; vers: number; proc: number; type: number; serial: number; status: number } {
  return { prog: RpcProgram.REMOTE, vers: RPC_PROTOCOL_VERSION, proc, type: MessageType.MESSAGE, serial: 1, status: MessageStatus.OK };
}

/** Defines 316 and 317 on the REMOTE table. */
export function defineDomainEventCallbacks(table: ProgramTable, context: ProgramContext): void {
  const { sessions, lifecycle } = context;
  let nextCallbackId = 1;

  table.define(
    RemoteProc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
    procedure(domainProcedures.connectDomainEventCallbackRegisterAny, ({ eventID, dom }, call) => {
      const session = sessions.of(call.connection);
      session.requireOpen();
      if (eventID < 0 || eventID >= EVENT_ID_LAST) throw RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.RPC, `unsupported event ID ${eventID}`);
      const callbackID = nextCallbackId++;
      const wantedUuid = dom === null ? null : uuidText(dom.uuid);
      const matches = (event: DomainEvent): boolean => wantedUuid === null || event.domain.uuid === wantedUuid;
      const wire = (event: DomainEvent): Domain => ({ name: event.domain.name, uuid: uuidBytes(event.domain.uuid), id: event.domain.id });
      const stop = lifecycle.listen((event) => {
        if (!matches(event)) return;
        if (event.kind === 'lifecycle' && eventID === EVENT_ID_LIFECYCLE) {
          const body = encodeXdr(lifecycleEventMessage, { callbackID, dom: wire(event), event: event.event, detail: event.detail });
          call.connection.send(messageHeader(RemoteProc.DOMAIN_EVENT_CALLBACK_LIFECYCLE), body);
        } else if (event.kind === 'reboot' && eventID === EVENT_ID_REBOOT) {
          call.connection.send(messageHeader(RemoteProc.DOMAIN_EVENT_CALLBACK_REBOOT), encodeXdr(rebootEventMessage, { callbackID, dom: wire(event) }));
        }
      });
      // Follow the domains from now on, so that their events reach this callback.
      lifecycle.sync(context.domains.all());
      session.domainEventCallbacks.set(callbackID, stop);
      context.logger.debug({ connection: call.connection.id, callbackID, eventID, domain: dom?.name ?? null }, 'domain event callback registered');
      return { callbackID };
    }),
  );
  table.define(
    RemoteProc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
    procedure(domainProcedures.connectDomainEventCallbackDeregisterAny, ({ callbackID }, call) => {
      const session = sessions.of(call.connection);
      session.requireOpen();
      const stop = session.domainEventCallbacks.get(callbackID);
      if (stop === undefined) throw RpcError.report(ErrorCode.RPC, ErrorDomain.RPC, `domain event callback ${callbackID} not registered`);
      session.domainEventCallbacks.delete(callbackID);
      stop();
    }),
  );
}
