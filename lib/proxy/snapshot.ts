/**
 * A monitor as it is now, for `qmpx status` and the metrics' gauges, and
 * the event rate it shows.
 */
import type { PeerCredentials } from './serve-logger.js';

export type EndpointKind = 'qmp' | 'hmp' | 'read-only';

/** The socket a client came on: a monitor socket of the proxy, or a libvirt endpoint (lib/rpc/server.ts). */
export type ClientKind = EndpointKind | 'libvirt' | 'libvirt-read-only';

/**
 * One connected client, as `qmpx status` shows it. Ids are unique per
 * kind of socket: proxy sessions and libvirt connections count apart, as
 * their log lines do.
 */
export interface ClientSnapshot {
  id: number;
  kind: ClientKind;
  socket: string;
  /** ms since the epoch. */
  connectedAt: number;
  /** Commands (libvirt: calls) received and not yet answered. */
  pending: number;
  /** Who connected, where the listener could tell. */
  peer?: PeerCredentials;
}

/** What a monitor is doing now (`qmpx status`, the metrics' gauges). */
export interface MonitorSnapshot {
  name: string;
  upstream: { target: string; state: 'connecting' | 'up' | 'stopped'; since: number; links: number; protocol: 'qmp' | 'hmp' | undefined };
  qemuVersion: string | undefined;
  tainted: boolean;
  clients: ClientSnapshot[];
  pending: number;
  eventsTotal: number;
  /** Events per second over the last EVENT_RATE_WINDOW_S seconds (less since start). */
  eventsPerSecond: number;
}

/** The window `eventsPerSecond` is averaged over. */
export const EVENT_RATE_WINDOW_S = 10;

/** Counts events and gives their rate over the last EVENT_RATE_WINDOW_S seconds, from a count sampled once a second. */
export class EventRate {
  total = 0;
  /** `total` once a second, the oldest first. */
  private readonly samples: Array<{ at: number; total: number }> = [{ at: Date.now(), total: 0 }];
  private readonly sampler = setInterval(() => {
    this.samples.push({ at: Date.now(), total: this.total });
    if (this.samples.length > EVENT_RATE_WINDOW_S + 1) this.samples.shift();
  }, 1000).unref();

  perSecond(): number {
    const oldest = this.samples[0]!;
    const seconds = (Date.now() - oldest.at) / 1000;
    return seconds > 0 ? (this.total - oldest.total) / seconds : 0;
  }

  stop(): void {
    clearInterval(this.sampler);
  }
}
