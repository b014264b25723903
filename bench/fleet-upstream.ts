/**
 * Simulated VMs for bench/fleet.bench.ts, in a process of their own: one
 * UNIX socket per VM speaking just enough QMP for `qmpx serve` (greeting,
 * capabilities, query-status, query-name, any other command answered with
 * an empty return) and, once negotiated, one event every interval, as a
 * guest-triggered event rate-limited by QEMU would come.
 *
 *   node dist/bench/fleet-upstream.js DIR FIRST COUNT INTERVAL_MS
 *
 * Socket `DIR/uN.sock` is VM `vmN`, for N in FIRST..FIRST+COUNT-1. The
 * events of the process are spread evenly over the interval. Each event's
 * timestamp is the wall-clock time it is written (as QEMU stamps events),
 * in microseconds, which the subscriber subtracts from its own clock for
 * the end-to-end latency. Prints `ready` on stdout once every socket listens.
 */
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const [dir, firstText, countText, intervalText] = process.argv.slice(2);
const first = Number(firstText);
const count = Number(countText);
const intervalMs = Number(intervalText);
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\r\n';
const STATUS = '{"return": {"status": "running", "singlestep": false, "running": true}}\r\n';
const EMPTY = '{"return": {}}\r\n';

function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

function eventText(index: number): string {
  const micros = nowMicros();
  const seconds = Math.floor(micros / 1e6);
  return `{"timestamp": {"seconds": ${seconds}, "microseconds": ${micros - seconds * 1e6}}, "event": "RTC_CHANGE", "data": {"offset": ${index}, "qom-path": "/machine/unattached/device[8]"}}\r\n`;
}

function reply(command: string, name: string): string {
  if (command === 'query-status') return STATUS;
  if (command === 'query-name') return `{"return": {"name": "${name}"}}\r\n`;
  return EMPTY;
}

function serveVm(index: number): Promise<void> {
  const name = `vm${index}`;
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    socket.write(GREETING);
    let pending = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (text: string) => {
      pending += text;
      let end;
      while ((end = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        if (line.trim() === '') continue;
        const command = (JSON.parse(line) as { execute?: string }).execute ?? '';
        socket.write(reply(command, name));
        if (command === 'qmp_capabilities' && timer === undefined) {
          const offset = ((index - first) * intervalMs) / count;
          const start = setTimeout(() => {
            socket.write(eventText(index));
            timer = setInterval(() => socket.write(eventText(index)), intervalMs);
          }, offset);
          timer = start;
        }
      }
    });
    socket.on('close', () => clearTimeout(timer));
  });
  return new Promise((resolve) => server.listen(join(dir!, `u${index}.sock`), resolve));
}

for (let index = first; index < first + count; index++) await serveVm(index);
process.stdout.write('ready\n');
