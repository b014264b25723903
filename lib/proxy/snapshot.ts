/**
 * A monitor as it is now, for `qmpx status` and the metrics' gauges, and
 * the event rate it shows.
 */
import type { PeerCredentials } from './serve-logger.js';

export type EndpointKind = 'qmp' | 'hmp' | 'read-only';

/** The socket a client came on: a monitor socket of the proxy, or a libvirt endpoint (lib/rpc/server.ts). */
export type ClientKind = EndpointKind | 'libvirt' | 'libvirt-read-only';
export const CLIENT_KINDS: readonly ClientKind[] = ['qmp', 'hmp', 'read-only', 'libvirt', 'libvirt-read-only'];

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
  /** Commands of the monitor's socket clients and calls of its libvirt sockets' clients not yet answered. */
  pending: number;
  eventsTotal: number;
  /** Events per second over the last EVENT_RATE_WINDOW_S seconds (less since start). */
  eventsPerSecond: number;
}

/** The window `eventsPerSecond` is averaged over. */
export const EVENT_RATE_WINDOW_S = 10;

/** Samples kept: one a second over the window, and the one that opens it. */
const RATE_SLOTS = EVENT_RATE_WINDOW_S + 1;

/** Every EventRate in use, sampled together by one timer (a daemon may have a thousand monitors). */
const sampledRates = new Set<EventRate>();
let rateSampler: NodeJS.Timeout | undefined;

function sampleAllRates(): void {
  const now = Date.now();
  for (const rate of sampledRates) rate.sample(now);
}

/** Counts events and gives their rate over the last EVENT_RATE_WINDOW_S seconds, from a count sampled once a second. */
export class EventRate {
  total = 0;
  /** A ring of RATE_SLOTS samples, each two numbers: when (epoch ms) and `total` then. */
  private readonly samples: number[] = new Array<number>(RATE_SLOTS * 2).fill(0);
  /** The slot of the oldest sample. */
  private oldest = 0;
  private count = 1;

  constructor() {
    this.samples[0] = Date.now();
    sampledRates.add(this);
    rateSampler ??= setInterval(sampleAllRates, 1000).unref();
  }

  /** Records `total` as of `now`, dropping the oldest sample once the window is full. */
  sample(now: number): void {
    const slot = (this.oldest + this.count) % RATE_SLOTS;
    this.samples[slot * 2] = now;
    this.samples[slot * 2 + 1] = this.total;
    if (this.count < RATE_SLOTS) this.count++;
    else this.oldest = (this.oldest + 1) % RATE_SLOTS;
  }

  perSecond(now = Date.now()): number {
    const seconds = (now - this.samples[this.oldest * 2]!) / 1000;
    return seconds > 0 ? (this.total - this.samples[this.oldest * 2 + 1]!) / seconds : 0;
  }

  stop(): void {
    sampledRates.delete(this);
    if (sampledRates.size === 0 && rateSampler !== undefined) {
      clearInterval(rateSampler);
      rateSampler = undefined;
    }
  }
}
