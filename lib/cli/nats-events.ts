/**
 * `qmpx events nats://SERVER[:PORT] [--host GLOB] [--vm GLOB] [--event GLOB]`:
 * the events of every VM of the fleet that match, as the serves publish
 * them, in the socket form's output (lib/cli/events.ts) with the domain
 * written `HOST/VM`; --json lines get `"host"` and `"vm"` members after
 * QEMU's own.
 *
 * The globs (`*`, `?`, `[...]`) match the decoded names. One without a
 * wildcard narrows the NATS subscription to that token; the rest are
 * filtered here (lib/nats/client-events.ts). The URL may name a VM
 * (`/VM` or `/HOST/VM`) instead of --vm / --host.
 *
 * Exit status as the socket form: 0; 1 when --timeout ran out with no
 * event matched; 2 when NATS could not be reached or the connection was
 * lost for good (the NATS client reconnects on its own until then, and a
 * line on stderr says so; events published meanwhile are not seen here).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { parseNatsTarget, openNatsConnection, describeTarget } from '../nats/client-connection.js';
import { eventFilter, eventSubject, readFleetEvent, type EventSelection } from '../nats/client-events.js';
import { stringifyJson } from '../qmp/json.js';
import { CliError, endWatchOnSignalsOrTimeout, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, oneLine } from './common.js';
import { natsCredentials, type NatsCliOptions } from './nats-options.js';

/** The options of `qmpx events` this form reads (lib/cli/events.ts defines them). */
export interface NatsEventsOptions extends NatsCliOptions {
  event?: string;
  /** False with --no-case. */
  case?: boolean;
  loop?: boolean;
  timeout?: number;
  timestamp?: boolean;
  pretty?: boolean;
  json?: boolean;
  host?: string;
  vm?: string;
}

/** The socket form's line formats (lib/cli/events.ts), handed in so the two modules do not import each other. */
export interface EventLineFormats {
  formatEventLine(record: { event: string; seconds: number; micros: number; details: string | null }, domain: string, options: Pick<NatsEventsOptions, 'pretty' | 'timestamp'>, receivedAt: Date): string;
  eventJsonLine(event: string, seconds: number, micros: number, details: string | null): string;
}

type LoopEnd = { kind: 'done' } | { kind: 'interrupted' } | { kind: 'timed-out' } | { kind: 'closed'; cause?: Error };

export async function runNatsEvents(url: string, options: NatsEventsOptions, { formatEventLine, eventJsonLine }: EventLineFormats): Promise<number> {
  const target = parseNatsTarget(url);
  if (target.vm !== undefined && options.vm !== undefined) throw new CliError('give the VM either in the URL or with --vm, not both', EXIT_FAILED);
  if (target.host !== undefined && options.host !== undefined) throw new CliError('give the host either in the URL or with --host, not both', EXIT_FAILED);
  const selection: EventSelection = { ignoreCase: options.case === false };
  const host = target.host ?? options.host;
  const vm = target.vm ?? options.vm;
  if (host !== undefined) selection.host = host;
  if (vm !== undefined) selection.vm = vm;
  if (options.event !== undefined) selection.event = options.event;
  const matches = eventFilter(selection);
  const subject = eventSubject(selection);

  let connection: NatsConnection;
  try {
    connection = await openNatsConnection(target, { ...natsCredentials(options), name: 'qmpx events', maxReconnectAttempts: -1 });
  } catch (error) {
    throw new CliError(oneLine(error instanceof Error ? error.message : String(error)), EXIT_UNREACHABLE, { cause: error });
  }
  const cleanups: Array<() => void> = [];
  try {
    let count = 0;
    let finish!: (end: LoopEnd) => void;
    const ended = new Promise<LoopEnd>((resolve) => (finish = resolve));
    const out = process.stdout;
    connection.subscribe(subject, {
      callback: (error, message) => {
        if (error !== null) {
          finish({ kind: 'closed', cause: error });
          return;
        }
        if (!options.loop && count > 0) return;
        const fleetEvent = readFleetEvent(message);
        if (fleetEvent === null || !matches(fleetEvent.host, fleetEvent.vm, fleetEvent.event.event)) return;
        const { event, timestamp } = fleetEvent.event;
        // As the socket form (the pass-through registry): the data re-serialised compactly, numbers kept exact.
        const details = fleetEvent.event.data === undefined ? null : stringifyJson(fleetEvent.event.data);
        out.write(
          options.json
            ? fleetJsonLine(eventJsonLine(event, timestamp.seconds, timestamp.microseconds, details), fleetEvent.host, fleetEvent.vm)
            : formatEventLine({ event, seconds: timestamp.seconds, micros: timestamp.microseconds, details }, `${fleetEvent.host}/${fleetEvent.vm}`, options, new Date()),
        );
        count++;
        if (!options.loop) finish({ kind: 'done' });
      },
    });
    void reportStatus(connection);
    endWatchOnSignalsOrTimeout(finish, options.timeout, cleanups);
    void connection.closed().then((cause) => finish(cause === undefined ? { kind: 'closed' } : { kind: 'closed', cause }));
    // The subscription is in place at the server once this round trip returns: events published after the line are seen.
    await connection.flush();
    process.stderr.write(`qmpx events: watching events on ${subject} at ${describeTarget({ server: target.server, ...(target.user === undefined ? {} : { user: target.user }) })}\n`);

    const end = await ended;
    // Messages already received are delivered before the connection closes.
    if (end.kind === 'interrupted') await connection.drain().catch(() => {});
    const summary = options.json ? process.stderr : out;
    if (end.kind === 'interrupted') summary.write('event loop interrupted\n');
    else if (end.kind === 'timed-out') summary.write('event loop timed out\n');
    else if (end.kind === 'closed') process.stderr.write(`qmpx events: the NATS connection closed${end.cause === undefined ? '' : `: ${oneLine(end.cause.message)}`}\n`);
    summary.write(`events received: ${count}\n`);
    if (end.kind === 'closed') return EXIT_UNREACHABLE;
    return end.kind === 'timed-out' && count === 0 ? EXIT_FAILED : EXIT_OK;
  } finally {
    for (const cleanup of cleanups) cleanup();
    if (!connection.isClosed()) await connection.close();
  }
}

/** QEMU's event line with the host and VM it came from appended as members. */
function fleetJsonLine(line: string, host: string, vm: string): string {
  return `${line.slice(0, line.lastIndexOf('}'))},"host":${JSON.stringify(host)},"vm":${JSON.stringify(vm)}}\n`;
}

/** Says on stderr when the NATS client loses and finds the server again. */
async function reportStatus(connection: NatsConnection): Promise<void> {
  for await (const status of connection.status()) {
    if (status.type === 'disconnect') process.stderr.write(`qmpx events: lost the NATS server ${status.server}; reconnecting\n`);
    else if (status.type === 'reconnect') process.stderr.write(`qmpx events: reconnected to the NATS server ${status.server}\n`);
  }
}
