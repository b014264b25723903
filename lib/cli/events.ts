/**
 * `qmpx events`: print QEMU's events the way `virsh qemu-monitor-event` does
 * (docs/monitor-facts.md §5, spec/cli/fixtures/libvirt-9.0/virsh-qemu-monitor-event.txt), byte for
 * byte, against any monitor socket.
 *
 *   qmpx events SOCKET [--event NAME] [--regex] [--no-case] [--loop]
 *                      [--timeout S] [--timestamp] [--pretty] [--json]
 *
 *   event STOP at 1795634785.190685 for domain 'lab1': <null>
 *   2026-11-25 19:26:25.191+0000: event STOP for domain 'lab1': <null>     (--timestamp)
 *   event loop interrupted | event loop timed out
 *   events received: N
 *
 * Exit status: 0; 1 when --timeout ran out with no event matched (as virsh);
 * 2 when the connection was lost.
 *
 * Filtering is the pass-through registry's (registerMonitorEvent: equality,
 * NOCASE, unanchored REGEX), the same code that serves libvirt clients. The
 * domain is the VM's `query-name`, else the socket's file name. Without
 * --loop the first matching event ends the run. --json prints each event as
 * one compact JSON line (NDJSON, for jq) and moves the closing lines to
 * stderr. A line on stderr says when events are being watched. Ctrl-C
 * (SIGINT) or SIGTERM ends the loop after one round trip to QEMU, so events
 * already sent are not lost.
 */
import { Command } from './commander.js';
import type { Monitor } from '../index.js';
import { MonitorEventFlags, registerMonitorEvent } from '../passthrough/index.js';
import { CliError, connectForCli, endWatchOnSignalsOrTimeout, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, parseSeconds, runCli, socketName } from './common.js';
import { prettyJson } from './json-text.js';
import { isNatsUrl } from '../nats/client-connection.js';
import { addNatsOptions, natsOptionsGiven, type NatsCliOptions } from './nats-options.js';

/** The options commander hands to the action. */
export interface EventsCliOptions {
  event?: string;
  regex?: boolean;
  /** False with --no-case (commander negates `--no-` options). */
  case?: boolean;
  loop?: boolean;
  timeout?: number;
  timestamp?: boolean;
  pretty?: boolean;
  json?: boolean;
}

/** The `events` subcommand, ready for `program.addCommand()`. */
export function eventsCommand(): Command {
  return addNatsOptions(new Command('events'))
    .description('print QEMU events as they arrive, like virsh qemu-monitor-event')
    .argument('<socket>', 'the QMP monitor: PATH, unix:PATH or tcp:HOST:PORT; or the fleet: nats://SERVER[:PORT][/[HOST/]VM]')
    .option('--event <name>', 'only events with this name (over NATS: a glob, e.g. BLOCK_*)')
    .option('--vm <glob>', 'with a nats:// target: only the VMs whose names match (e.g. web-*)')
    .option('--host <glob>', 'with a nats:// target: only the hosts whose names match')
    .option('--regex', 'treat --event as an (unanchored) regular expression')
    .option('--no-case', 'match --event case-insensitively')
    .option('--loop', 'keep printing until --timeout or Ctrl-C, rather than stopping after one event')
    .option('--timeout <seconds>', 'stop after this many seconds', parseSeconds)
    .option('--timestamp', 'start each line with the local receive time instead of QEMU\'s timestamp')
    .option('--pretty', 'indent event data by two spaces')
    .option('--json', 'print each event as one JSON line (NDJSON); closing lines go to stderr')
    .addHelpText(
      'after',
      `
Examples:
  qmpx events /tmp/vm.qmp --loop
  qmpx events /tmp/vm.qmp --event 'ST.*' --regex --loop --timestamp
  qmpx events /tmp/vm.qmp --loop --json | jq -c 'select(.event == "RESET") | .data'
  qmpx events nats://nats.example --vm 'web-*' --event 'BLOCK_*' --loop`,
    )
    .action((socket: string, options: EventsCliOptions & NatsCliOptions & { vm?: string; host?: string }, command: Command) => {
      if (options.json && (options.pretty || options.timestamp)) {
        command.error(`error: --json cannot be combined with ${options.pretty ? '--pretty' : '--timestamp'}`);
      }
      if (isNatsUrl(socket)) {
        if (options.regex) command.error('error: --regex is for a monitor socket; over NATS --event, --vm and --host are globs');
        return runCli('events', async () => (await import('./nats-events.js')).runNatsEvents(socket, options, { formatEventLine, eventJsonLine }));
      }
      const natsOnly = [...natsOptionsGiven(options), ...(options.vm === undefined ? [] : ['--vm']), ...(options.host === undefined ? [] : ['--host'])];
      if (natsOnly.length > 0) command.error(`error: ${natsOnly[0]} needs a nats:// target`);
      return runCli('events', () => runEvents(socket, options));
    });
}

/** How the event loop ended: the first event of a one-shot run (done), Ctrl-C, --timeout, or the connection. */
type LoopEnd = { kind: 'done' } | { kind: 'interrupted' } | { kind: 'timed-out' } | { kind: 'closed'; expected: boolean };

async function runEvents(socket: string, options: EventsCliOptions): Promise<number> {
  const monitor = await connectForCli(socket);
  const cleanups: Array<() => void> = [];
  try {
    if (monitor.protocol !== 'qmp') {
      throw new CliError(`${socket} is a ${monitor.protocol.toUpperCase()} monitor, which delivers no events; use a QMP socket`, EXIT_FAILED);
    }
    const domain = await domainName(monitor, socket);
    let count = 0;
    let finish!: (end: LoopEnd) => void;
    const ended = new Promise<LoopEnd>((resolve) => (finish = resolve));
    const out = process.stdout;
    const flags = (options.regex ? MonitorEventFlags.REGEX : 0) | (options.case === false ? MonitorEventFlags.NOCASE : 0);
    registerMonitorEvent(
      monitor,
      options.event ?? null,
      (event, seconds, micros, details) => {
        if (!options.loop && count > 0) return;
        const line = options.json
          ? eventJsonLine(event, seconds, micros, details)
          : formatEventLine({ event, seconds, micros, details }, domain, options, new Date());
        out.write(line);
        count++;
        if (!options.loop) finish({ kind: 'done' });
      },
      flags,
    );
    endWatchOnSignalsOrTimeout(finish, options.timeout, cleanups);
    void monitor.closed.then((info) => finish({ kind: 'closed', expected: info.expected }));
    process.stderr.write(`qmpx events: watching events of domain '${domain}' on ${socket}\n`);

    const end = await ended;
    if (end.kind === 'interrupted') await drainEvents(monitor);
    const summary = options.json ? process.stderr : out;
    if (end.kind === 'interrupted') summary.write('event loop interrupted\n');
    else if (end.kind === 'timed-out') summary.write('event loop timed out\n');
    else if (end.kind === 'closed') process.stderr.write('qmpx events: the monitor closed the connection\n');
    summary.write(`events received: ${count}\n`);
    if (end.kind === 'closed' && !end.expected) return EXIT_UNREACHABLE;
    // As virsh qemu-monitor-event: a wait that timed out with nothing matched failed, so scripts can test it.
    return end.kind === 'timed-out' && count === 0 ? EXIT_FAILED : EXIT_OK;
  } finally {
    for (const cleanup of cleanups) cleanup();
    await monitor.close();
  }
}

/** How long an interrupted run waits for QEMU to confirm it has nothing more in flight. */
const DRAIN_TIMEOUT_MS = 1000;

/**
 * One round trip after Ctrl-C. QEMU writes an event to every monitor before
 * it answers any later command, and qmpx delivers events before the reply
 * that follows them (docs/design.md invariant 4), so every event QEMU emitted
 * before the interrupt is counted and printed, not lost in the socket buffer.
 */
async function drainEvents(monitor: Monitor): Promise<void> {
  try {
    await monitor.execute('query-version', undefined, { timeoutMs: DRAIN_TIMEOUT_MS });
  } catch {
    // closed or silent: there is nothing more to wait for
  }
}

/** The VM's name from `query-name`; the socket's name when QEMU has none (no -name) or cannot say. */
async function domainName(monitor: Monitor, socket: string): Promise<string> {
  try {
    const { name } = await monitor.execute<{ name?: string }>('query-name');
    if (typeof name === 'string' && name !== '') return name;
  } catch {
    // a monitor without query-name still has a socket name
  }
  return socketName(socket);
}

/** One event as the registry reports it. */
export interface EventRecord {
  event: string;
  seconds: number;
  micros: number;
  /** Compact JSON of the event's data, or null when it has none. */
  details: string | null;
}

/**
 * One event in virsh's format, including its final newline. --pretty
 * indents the details by two and, as in virsh (whose pretty JSON ends in a
 * newline), leaves a blank line after them. `receivedAt` is used only with
 * --timestamp, printed in UTC like libvirt's virTimeStringNowRaw.
 */
export function formatEventLine(record: EventRecord, domain: string, options: Pick<EventsCliOptions, 'pretty' | 'timestamp'>, receivedAt: Date): string {
  const details = record.details === null ? '<null>' : options.pretty ? `${prettyJson(record.details)}\n` : record.details;
  if (options.timestamp) {
    return `${libvirtTimestamp(receivedAt)}: event ${record.event} for domain '${domain}': ${details}\n`;
  }
  return `event ${record.event} at ${record.seconds}.${String(record.micros).padStart(6, '0')} for domain '${domain}': ${details}\n`;
}

/** `2026-11-25 19:26:25.191+0000`: UTC with milliseconds, as libvirt prints times. */
export function libvirtTimestamp(date: Date): string {
  return `${date.toISOString().replace('T', ' ').slice(0, 23)}+0000`;
}

/** The event as QEMU sends it (timestamp, event, data), compact, on one line. */
export function eventJsonLine(event: string, seconds: number, micros: number, details: string | null): string {
  const data = details === null ? '' : `,"data":${details}`;
  return `{"timestamp":{"seconds":${seconds},"microseconds":${micros}},"event":${JSON.stringify(event)}${data}}\n`;
}
