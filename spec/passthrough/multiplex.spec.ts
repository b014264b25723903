/**
 * One connection shared by the library's own callers and pass-through
 * callers, against the real QEMU: 10 driver callers and 10 pass-through
 * callers, 200 commands each, issued ten at a time, mixed with stop/cont
 * (which make QEMU emit STOP and RESUME), query-qmp-schema (207 KB, slow),
 * out-of-band commands, local refusals and cancelled requests; five
 * callbacks on different filters.
 *
 * Replies are proved to reach their own caller by their content: unknown
 * command names and HMP command lines carry the caller and index, and QEMU
 * repeats them in its answer.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AbortError, connect, QmpError, silentLogger, type Monitor, type QmpEvent } from '../../lib/index.js';
import {
  deregisterMonitorEvent,
  MonitorCommandFlags,
  MonitorEventFlags,
  monitorCommand,
  registerMonitorEvent,
} from '../../lib/passthrough/index.js';
import type { QmpMonitor } from '../../lib/qmp/client.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance; monitor: Monitor }>('driver and pass-through callers multiplexed on one monitor');

test.before(async (context) => {
  context.qemu = await startQemu();
  context.monitor = await connect(context.qemu.qmpPath, { logger: silentLogger });
});

test.after(async (context) => {
  await context.monitor?.close();
  await context.qemu?.stop();
});

const CALLERS = 10;
const COMMANDS = 200;
const BATCH = 10;
const { REGEX, NOCASE } = MonitorEventFlags;

/** What a command must settle with; `check` throws (an assertion) if it is wrong. */
interface Issued {
  label: string;
  settled: Promise<unknown>;
  check(outcome: { value?: unknown; error?: unknown }): void;
}

const STATUS_VALUE = /^\{"status": "(running|paused)", "singlestep": false, "running": (true|false)\}$/;

function driverCommand(monitor: Monitor, caller: number, index: number): Issued {
  const label = `driver ${caller} #${index}`;
  const tag = `d${caller}-${index}`;
  if (index === 100) {
    return { label, settled: monitor.execute<unknown[]>('query-qmp-schema'), check: ({ value }) => assert.ok((value as unknown[]).length > 500, label) };
  }
  switch (index % 10) {
    case 0: {
      const command = (caller + index / 10) % 2 === 0 ? 'stop' : 'cont';
      return { label, settled: monitor.execute(command), check: ({ value }) => assert.equal(value, {}, label) };
    }
    case 1:
      return {
        label,
        settled: monitor.execute('human-monitor-command', { 'command-line': `nosuch-${tag}` }),
        check: ({ value }) => assert.is(value, `unknown command: 'nosuch-${tag}'\r\n`, label),
      };
    case 2:
      return {
        label,
        settled: rejectionOf(monitor.execute(`no-such-${tag}`)),
        check: ({ value: error }) => {
          assert.instance(error, QmpError, label);
          assert.is((error as QmpError).desc, `The command no-such-${tag} has not been found`, label);
        },
      };
    case 5: {
      const controller = new AbortController();
      const settled = rejectionOf(monitor.execute('query-status', undefined, { signal: controller.signal }));
      controller.abort();
      return { label, settled, check: ({ value: error }) => assert.instance(error, AbortError, label) };
    }
    case 6:
      return {
        label,
        settled: monitor.execute<unknown[]>('query-yank', undefined, { oob: true }),
        check: ({ value }) => assert.ok(Array.isArray(value), label),
      };
    default:
      return {
        label,
        settled: monitor.execute<{ status: string; running: boolean }>('query-status'),
        check: ({ value }) => {
          const status = value as { status: string; running: boolean };
          assert.is(status.running, status.status === 'running', label);
        },
      };
  }
}

function passthroughCommand(monitor: Monitor, caller: number, index: number): Issued {
  const label = `pass-through ${caller} #${index}`;
  const tag = `p${caller}-${index}`;
  const expectText = (settled: Promise<string>, expected: string | RegExp): Issued => ({
    label,
    settled,
    check: ({ value }) => (typeof expected === 'string' ? assert.is(value, expected, label) : assert.match(value as string, expected, label)),
  });
  if (index === 100) {
    return expectText(monitorCommand(monitor, `{"execute":"query-qmp-schema","id":"${tag}"}`), new RegExp(`^\\{"return": \\[\\{.*\\}\\], "id": "${tag}"\\}$`));
  }
  switch (index % 10) {
    case 0: {
      const command = (caller + index / 10) % 2 === 0 ? 'cont' : 'stop';
      return expectText(monitorCommand(monitor, `{"execute":"${command}","id":"${tag}"}`), `{"return": {}, "id": "${tag}"}`);
    }
    case 1:
      return expectText(
        monitorCommand(monitor, `{"execute":"human-monitor-command","arguments":{"command-line":"nosuch-${tag}"},"id":${index}}`),
        `{"return": "unknown command: 'nosuch-${tag}'\\r\\n", "id": ${index}}`,
      );
    case 2:
      return expectText(
        monitorCommand(monitor, `{ "id" : [${caller},${index}], "execute":"no-such-${tag}" }`),
        `{"id": [${caller},${index}], "error": {"class": "CommandNotFound", "desc": "The command no-such-${tag} has not been found"}}`,
      );
    case 3:
      return expectText(monitorCommand(monitor, `[${caller},${index}]`), '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}');
    case 4:
      return expectText(monitorCommand(monitor, `nosuch-h${tag}`, MonitorCommandFlags.HMP), `unknown command: 'nosuch-h${tag}'\r\n`);
    case 5: {
      const controller = new AbortController();
      const settled = rejectionOf(monitorCommand(monitor, `{"execute":"query-status","id":"${tag}"}`, 0, { signal: controller.signal }));
      controller.abort();
      return { label, settled, check: ({ value: error }) => assert.instance(error, AbortError, label) };
    }
    case 6:
      return expectText(monitorCommand(monitor, `{"exec-oob":"query-yank","id":"${tag}"}`), new RegExp(`^\\{"return": \\[.*\\], "id": "${tag}"\\}$`));
    default:
      return expectText(
        monitorCommand(monitor, `{"execute":"query-status","id":"${tag}"}`),
        new RegExp(`^\\{"return": ${STATUS_VALUE.source.slice(1, -1)}, "id": "${tag}"\\}$`),
      );
  }
}

/** Issues a caller's commands ten at a time; resolves with how many were checked. */
async function runCaller(next: (index: number) => Issued): Promise<number> {
  let checked = 0;
  for (let start = 0; start < COMMANDS; start += BATCH) {
    const batch = Array.from({ length: BATCH }, (_, offset) => next(start + offset));
    for (const issued of batch) {
      issued.check({ value: await issued.settled });
      checked++;
    }
  }
  return checked;
}

type Call = [event: string, seconds: number, micros: number, details: string | null];

test('every reply reaches its own caller; every callback gets exactly the events its filter passes, in order', async ({ monitor }) => {
  const seen: QmpEvent[] = [];
  const subscription = monitor.events$.subscribe((event) => seen.push(event));
  const filters: [event: string | null, flags: number, passes: (name: string) => boolean][] = [
    [null, 0, () => true],
    ['STOP', 0, (name) => name === 'STOP'],
    ['resume', NOCASE, (name) => name === 'RESUME'],
    ['^RES', REGEX, (name) => name.startsWith('RES')],
    ['op|UM', REGEX | NOCASE, (name) => /OP|UM/.test(name)],
  ];
  const received = filters.map(() => [] as Call[]);
  const ids = filters.map(([event, flags], index) =>
    registerMonitorEvent(monitor, event, (name, seconds, micros, details) => void received[index]!.push([name, seconds, micros, details]), flags),
  );

  const checked = await Promise.all([
    ...Array.from({ length: CALLERS }, (_, caller) => runCaller((index) => driverCommand(monitor, caller, index))),
    ...Array.from({ length: CALLERS }, (_, caller) => runCaller((index) => passthroughCommand(monitor, caller, index))),
  ]);
  subscription.unsubscribe();
  for (const id of ids) deregisterMonitorEvent(monitor, id);

  assert.equal(checked, Array(2 * CALLERS).fill(COMMANDS), 'every command of every caller settled and was checked');
  assert.is((monitor as QmpMonitor).pendingCount, 0);
  const names = new Set(seen.map((event) => event.event));
  assert.equal([...names].sort(), ['RESUME', 'STOP'], 'stop and cont did make QEMU emit events');
  assert.ok(seen.length >= 4, `${seen.length} events`);
  filters.forEach(([event, flags, passes], index) => {
    const expected = seen
      .filter((qmpEvent) => passes(qmpEvent.event))
      .map((qmpEvent): Call => [qmpEvent.event, qmpEvent.timestamp.seconds, qmpEvent.timestamp.microseconds, null]);
    assert.equal(received[index], expected, `callback on ${String(event)} flags ${flags}`);
  });
  assert.is(await monitorCommand(monitor, '{"execute":"query-name"}'), '{"return": {}}', 'the connection is still in step');
});

test.run();
