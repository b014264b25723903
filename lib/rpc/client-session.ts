/**
 * What the endpoint remembers about one RPC client between calls: whether
 * CONNECT_OPEN succeeded (and read-only or not), and the monitor-event
 * and domain-event registrations it holds. libvirtd keeps the same in its
 * daemonClientPrivate.
 *
 *   new ──CONNECT_OPEN──▶ open ──CONNECT_CLOSE / disconnect──▶ closed
 *
 * Every procedure but AUTH_LIST, CONNECT_OPEN and (for keepalive)
 * CONNECT_SUPPORTS_FEATURE needs `open`; otherwise libvirt answers
 * `internal error: hypervisor connection not open` (code 1, domain RPC:
 * remoteGetHypervisorConn).
 */
import type { RpcConnection } from './connection.js';
import { RpcError } from './rpc-error.js';
import type { Keepalive } from './keepalive.js';
import { ErrorCode, ErrorDomain } from './protocol.js';

export type ClientSessionState = 'new' | 'open' | 'closed';

/** One monitor-event registration: what undoes it. */
export interface EventRegistration {
  readonly callbackId: number;
  /** Detaches the callback from every monitor it was attached to. Idempotent. */
  release(): void;
  /** Follows its domains onto their current monitors (after an upstream reconnect). */
  reattach(): void;
}

/** Per-connection state of the libvirt endpoint. */
export class ClientSession {
  private currentState: ClientSessionState = 'new';
  /** Set by CONNECT_OPEN's VIR_CONNECT_RO flag or by a read-only endpoint. */
  readOnly: boolean;
  readonly registrations = new Map<number, EventRegistration>();
  /** Domain event callbacks (REMOTE 316), by callback id: what ends each. */
  readonly domainEventCallbacks = new Map<number, () => void>();
  /** The connection's keepalive, started when the client asks for PROGRAM_KEEPALIVE. */
  keepalive: Keepalive | null = null;

  constructor(readOnly: boolean) {
    this.readOnly = readOnly;
  }

  get state(): ClientSessionState {
    return this.currentState;
  }

  /** The one transition function: new → open → closed; closing releases every registration. */
  transition(next: ClientSessionState): void {
    const legal = (this.currentState === 'new' && next !== 'new') || (this.currentState === 'open' && next === 'closed');
    if (!legal) throw new Error(`client session cannot go from ${this.currentState} to ${next}`);
    this.currentState = next;
    if (next === 'closed') {
      for (const registration of this.registrations.values()) registration.release();
      this.registrations.clear();
      for (const stop of this.domainEventCallbacks.values()) stop();
      this.domainEventCallbacks.clear();
    }
  }

  /** Throws libvirt's error unless CONNECT_OPEN succeeded and CONNECT_CLOSE has not run. */
  requireOpen(): void {
    if (this.currentState !== 'open') {
      throw RpcError.report(ErrorCode.INTERNAL_ERROR, ErrorDomain.RPC, 'hypervisor connection not open');
    }
  }
}

/** Sessions by connection; a connection's session is created on first use. */
export class SessionStore {
  private readonly sessions = new WeakMap<RpcConnection, ClientSession>();
  /** Sessions that may hold registrations, for reattach(). */
  private readonly live = new Set<ClientSession>();

  constructor(private readonly readOnlyEndpoint: boolean) {}

  /** The session of `connection`, created (state new) if it has none yet. */
  of(connection: RpcConnection): ClientSession {
    let session = this.sessions.get(connection);
    if (!session) {
      session = new ClientSession(this.readOnlyEndpoint);
      this.sessions.set(connection, session);
      this.live.add(session);
    }
    return session;
  }

  /** Ends `connection`'s session (disconnect): its registrations are released. */
  end(connection: RpcConnection): void {
    const session = this.sessions.get(connection);
    if (session && session.state !== 'closed') session.transition('closed');
    if (session) this.live.delete(session);
  }

  /** Every live registration follows its domains onto their current monitors. */
  reattachAll(): void {
    for (const session of this.live) for (const registration of session.registrations.values()) registration.reattach();
  }
}
