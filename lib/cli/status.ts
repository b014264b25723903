/**
 * `qmpx status`: what a running `qmpx serve` is doing, read from its
 * control socket (lib/proxy/control.ts).
 *
 *   qmpx status PATH [--json] [--timeout S]
 *
 * PATH is the control socket, or the socket its default path is made from
 * (serve's first socket: `PATH.control` is tried).
 */
import { Command, Option } from './commander.js';
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { MonitorStatus, ServeStatus } from '../proxy/control.js';
import type { ClientSnapshot } from '../proxy/snapshot.js';
import { CliError, EXIT_OK, EXIT_UNREACHABLE, parseSeconds, runCli } from './common.js';

const CONTROL_SUFFIX = '.control';
const DEFAULT_TIMEOUT_S = 5;

export function statusCommand(): Command {
  return new Command('status')
    .description("show a running serve's monitors, upstreams, clients and counters (from its control socket)")
    .argument('<path>', 'the control socket, or the serve socket it is named after (PATH.control)')
    .option('--json', 'print the status as one JSON object')
    .addOption(new Option('--timeout <seconds>', 'give up after this long').default(DEFAULT_TIMEOUT_S).argParser(parseSeconds))
    .action((path: string, options: { json?: boolean; timeout: number }) =>
      runCli('status', async () => {
        const status = await readStatus(controlPathFor(path), options.timeout * 1000);
        process.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status, Date.now()));
        return EXIT_OK;
      }),
    );
}

/** The control socket `path` names: itself, or `path.control` when that exists. */
export function controlPathFor(path: string): string {
  if (path.endsWith(CONTROL_SUFFIX) || !existsSync(`${path}${CONTROL_SUFFIX}`)) return path;
  return `${path}${CONTROL_SUFFIX}`;
}

/** Asks the control socket at `path` for the status. */
export function readStatus(path: string, timeoutMs: number): Promise<ServeStatus> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new CliError(`${path}: no status within ${timeoutMs} ms`, EXIT_UNREACHABLE));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('status\n'));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new CliError(`cannot reach the control socket ${path}: ${error.code ?? error.message} (is qmpx serve running? see --control)`, EXIT_UNREACHABLE));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        const value = JSON.parse(text) as ServeStatus | { error: string };
        if ('error' in value) reject(new CliError(`${path}: ${value.error}`, EXIT_UNREACHABLE));
        else resolve(value);
      } catch {
        reject(new CliError(`${path}: not a qmpx control socket (unreadable answer)`, EXIT_UNREACHABLE));
      }
    });
  });
}

function ago(since: number, now: number): string {
  const seconds = Math.max(0, Math.round((now - since) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

function runStateText(monitor: MonitorStatus): string {
  const { runState } = monitor;
  return 'status' in runState ? runState.status : runState.unavailable;
}

/** The oldest command QEMU has not answered, and whether the watchdog calls that a stall. */
function oldestText(monitor: MonitorStatus): string {
  const oldest = monitor.watchdog?.oldestPending;
  if (oldest === undefined) return '';
  const stalled = monitor.watchdog!.stalled ? `, stalled (watchdog: ${monitor.watchdog!.thresholdSeconds} s)` : '';
  return `; oldest ${oldest.command}, waiting ${(oldest.ageMs / 1000).toFixed(1)} s${stalled}`;
}

/** The human-readable status: one block per monitor. */
export function formatStatus(status: ServeStatus, now: number): string {
  const lines: string[] = [];
  lines.push(`serve pid ${status.pid}, up ${ago(status.startedAt, now)}; audit: ${status.audit ?? 'off'}; metrics: ${status.metrics ?? 'off'}`);
  for (const monitor of status.monitors) {
    const { upstream } = monitor;
    lines.push('');
    lines.push(`monitor ${monitor.name}`);
    lines.push(`  upstream   ${upstream.target}: ${upstream.state} for ${ago(upstream.since, now)}${upstream.links > 1 ? ` (${upstream.links - 1} reconnects)` : ''}`);
    lines.push(`  qemu       ${monitor.qemuVersion ?? 'unknown'}, run state: ${runStateText(monitor)}`);
    lines.push(`  taint      ${monitor.tainted ? 'custom-monitor' : 'none'}`);
    lines.push(`  pending    ${monitor.pending}${oldestText(monitor)}`);
    lines.push(`  events/s   ${monitor.eventsPerSecond.toFixed(2)} (${monitor.eventsTotal} in all)`);
    lines.push(`  clients    ${monitor.clients.length}`);
    for (const client of monitor.clients) lines.push(clientLine(client, now));
  }
  // serve's own libvirt endpoint serves every monitor, so its clients belong to none of them.
  if (status.libvirt !== null && status.libvirt !== undefined) {
    lines.push('');
    lines.push(`libvirt ${status.libvirt.socket}`);
    lines.push(`  clients    ${status.libvirt.clients.length}`);
    for (const client of status.libvirt.clients) lines.push(clientLine(client, now));
  }
  return `${lines.join('\n')}\n`;
}

function clientLine(client: ClientSnapshot, now: number): string {
  const peer = client.peer === undefined ? 'peer unknown' : `pid ${client.peer.pid} uid ${client.peer.uid} gid ${client.peer.gid}`;
  return `    #${client.id} ${client.kind} on ${client.socket}, ${peer}, for ${ago(client.connectedAt, now)}, pending ${client.pending}`;
}
