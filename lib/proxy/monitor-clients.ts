/**
 * The clients of one monitor's QMP, HMP and read-only sockets as the proxy
 * keeps them: the socket each came on, who it is, and why the proxy ended
 * its connection when it did, so the disconnect line can say so; and what
 * `qmpx status` shows of them.
 */
import type { DisconnectReason, PolicyDisconnect } from './observer.js';
import type { PeerCredentials } from './serve-logger.js';
import type { DownstreamSession } from './session.js';
import type { ClientSnapshot, EndpointKind } from './snapshot.js';

/** A connected client, as the proxy keeps it. */
export interface ClientRecord {
  kind: EndpointKind;
  socket: string;
  connectedAt: number;
  peer: PeerCredentials | undefined;
  ending?: DisconnectReason;
  endingDetail?: PolicyDisconnect;
}

export class MonitorClients {
  /** Made with the first client: a serve of many monitors nobody has connected to holds no map for each. */
  private records: Map<DownstreamSession, ClientRecord> | undefined;

  add(session: DownstreamSession, record: ClientRecord): void {
    (this.records ??= new Map()).set(session, record);
  }

  delete(session: DownstreamSession): void {
    this.records?.delete(session);
  }

  /** Records why the proxy ends `session`; the first reason given stands. */
  markEnding(session: DownstreamSession, reason: DisconnectReason): void {
    const record = this.records?.get(session);
    if (record !== undefined) record.ending ??= reason;
  }

  /** Each client as `qmpx status` shows it. */
  snapshots(): ClientSnapshot[] {
    const clients: ClientSnapshot[] = [];
    for (const [session, client] of this.records ?? []) {
      const snapshot: ClientSnapshot = { id: session.id, kind: client.kind, socket: client.socket, connectedAt: client.connectedAt, pending: session.pendingCount };
      if (client.peer !== undefined) snapshot.peer = client.peer;
      clients.push(snapshot);
    }
    return clients;
  }
}
