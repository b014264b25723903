import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { firstValueFrom, map, skipWhile, take, timeout, toArray } from 'rxjs';
import {
  connect,
  ConnectionClosedError,
  GreetingTimeoutError,
  HmpError,
  silentLogger,
  UnsupportedError,
  type Monitor,
  type MonitorState,
} from '../../lib/index.js';
import { HmpMonitor } from '../../lib/hmp/client.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance }>('HMP client against real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu();
});

test.after(async (context) => {
  await context.qemu.stop();
});

async function withHmp<T>(path: string, body: (monitor: Monitor) => Promise<T>): Promise<T> {
  const monitor = await connect(path, { logger: silentLogger });
  try {
    return await body(monitor);
  } finally {
    await monitor.close();
  }
}

/** A socket to `path` that records every write, handed to connect() as `{ socket }`. */
function spiedSocket(path: string): { socket: net.Socket; writes: string[] } {
  const socket = net.createConnection(path);
  const writes: string[] = [];
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]) => {
    writes.push(String(args[0]));
    return write(...args);
  }) as typeof socket.write;
  return { socket, writes };
}

test("'auto' picks QMP on the -qmp socket and HMP on the -monitor socket", async ({ qemu }) => {
  const qmp = await connect(qemu.qmpPath, { logger: silentLogger });
  const hmp = await connect(qemu.hmpPath, { logger: silentLogger });
  try {
    assert.is(qmp.protocol, 'qmp');
    assert.is(hmp.protocol, 'hmp');
    assert.is(hmp.greeting, null);
    assert.equal(hmp.capabilities, []);
    assert.is((hmp as HmpMonitor).version, '7.2.22');
    assert.is((hmp as HmpMonitor).banner, "QEMU 7.2.22 monitor - type 'help' for more information\r\n");
    assert.is(await firstValueFrom(hmp.state$), 'ready');
  } finally {
    await hmp.close();
    await qmp.close();
  }
});

test('on HMP the Monitor carries the banner and no raw or relay path', async ({ qemu }) => {
  const monitor = await connect(qemu.hmpPath, { logger: silentLogger });
  try {
    assert.match(monitor.banner ?? '', /^QEMU \S+ monitor - type 'help' for more information\r\n$/);
    assert.is(monitor.raw, null);
    assert.is(monitor.relay, null);
    assert.is(monitor.state, 'ready');
    assert.is(monitor.label, qemu.hmpPath);
  } finally {
    await monitor.close();
  }
});

test('state$ goes connecting → negotiating → ready → closed, as on QMP', async ({ qemu }) => {
  const socket = net.createConnection(qemu.hmpPath);
  const monitor = new HmpMonitor(socket, { logger: silentLogger }, qemu.hmpPath);
  const states = firstValueFrom(monitor.state$.pipe(toArray()));
  await monitor.start(Buffer.alloc(0), 5000);
  await monitor.close();
  assert.equal(await states, ['connecting', 'negotiating', 'ready', 'closed'] satisfies MonitorState[]);
  assert.equal(await monitor.closed, { expected: true });
});

test("hmp('info status') gives the same text on QMP and on HMP, with LF line ends", async ({ qemu }) => {
  const qmp = await connect(qemu.qmpPath, { logger: silentLogger });
  const hmp = await connect(qemu.hmpPath, { logger: silentLogger });
  try {
    for (const line of ['info status', 'info version', 'info mtree', 'help stop', 'frobnicate', '', 'info name']) {
      const viaHmp = await hmp.hmp(line);
      assert.is(viaHmp, await qmp.hmp(line), line);
      assert.not.match(viaHmp, /\r/, `${line}: no CR left`);
    }
    assert.is(await hmp.hmp('info status'), 'VM status: paused (prelaunch)\n');
  } finally {
    await hmp.close();
    await qmp.close();
  }
});

test('200 sequential commands, each answered with its own output', async ({ qemu }) => {
  await withHmp(qemu.hmpPath, async (monitor) => {
    for (let i = 0; i < 200; i++) {
      if (i % 10 === 9) assert.is(await monitor.hmp('info status'), 'VM status: paused (prelaunch)\n');
      else assert.is(await monitor.hmp(`print ${i + 1}`), `0x${(i + 1).toString(16)}\n`, `print ${i + 1}`);
    }
  });
});

test('commands issued together are queued and run one at a time, in order', async ({ qemu }) => {
  const { socket, writes } = spiedSocket(qemu.hmpPath);
  const monitor = (await connect({ socket }, { logger: silentLogger })) as HmpMonitor;
  try {
    const outputs = Promise.all(Array.from({ length: 50 }, (_, i) => monitor.hmp(`print ${i * 7 + 1}`)));
    assert.is(writes.length, 1, 'only the first line is written before its prompt comes back');
    assert.equal(await outputs, Array.from({ length: 50 }, (_, i) => `0x${(i * 7 + 1).toString(16)}\n`));
    assert.is(writes.length, 50);
    assert.is(monitor.pendingCount, 0);
  } finally {
    await monitor.close();
  }
});

test('a 4,096-character line, TAB, ESC and newlines are refused without sending a byte', async ({ qemu }) => {
  const { socket, writes } = spiedSocket(qemu.hmpPath);
  const monitor = await connect({ socket }, { logger: silentLogger });
  try {
    for (const line of ['x'.repeat(4096), 'info\tstatus', 'info status\x1b[A', 'stop\ncont', 'stop\r', 'info\x00status']) {
      const error = await rejectionOf(monitor.hmp(line));
      assert.instance(error, UnsupportedError, JSON.stringify(line.slice(0, 20)));
      assert.match(error.message, /nothing was sent/);
    }
    const mapped = await rejectionOf(monitor.execute('human-monitor-command', { 'command-line': 'stop\ncont' }));
    assert.instance(mapped, UnsupportedError);
    assert.equal(writes, [], 'nothing reached QEMU');
    assert.is(await monitor.hmp('info status'), 'VM status: paused (prelaunch)\n', 'the line editor is clean afterwards');
    // Its echo is ~1.5 MB of redraws (docs/monitor-facts.md §3), skipped as it streams.
    assert.is(await monitor.hmp(`print ${'1+'.repeat(496)}1`), '0x1f1\n', 'a 999-character line runs');
  } finally {
    await monitor.close();
  }
});

test('the limit is QEMU\'s: a 4,095-byte line runs whole, and QEMU itself drops a 4,096th byte', async ({ qemu }) => {
  await withHmp(qemu.hmpPath, async (monitor) => {
    const longest = `print ${'1+'.repeat(2044)}1`;
    assert.is(longest.length, 4095);
    assert.is(await monitor.hmp(longest), '0x7fd\n', 'all 2,045 terms were summed');
  });
  // Typed raw: 4,096 bytes ending in "+12". Kept whole it would sum to 0x808; QEMU keeps 4,095 bytes and drops the "2".
  const tail = await typeRaw(qemu.hmpPath, `print ${'1+'.repeat(2044)}12\n`);
  assert.match(tail, /\r\n0x7fd\r\n\(qemu\) $/, 'the trailing "2" was dropped: 1+…+1 was summed');
});

/**
 * Writes `input` to a fresh raw connection once the banner's prompt is in,
 * and resolves with the last 200 characters received once a second prompt
 * ends the stream (keeping only a tail: the echo of a long line is ~33 MB).
 */
function typeRaw(path: string, input: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    let tail = '';
    let prompts = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no second prompt within ${timeoutMs} ms; last received: ${JSON.stringify(tail)}`));
    }, timeoutMs);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString('latin1')).slice(-200);
      if (!tail.endsWith('(qemu) ')) return;
      if (++prompts === 1) {
        socket.write(input);
      } else {
        clearTimeout(timer);
        socket.destroy();
        resolve(tail);
      }
    });
  });
}

test('throwOnError turns HMP error text into HmpError; by default the text is returned', async ({ qemu }) => {
  await withHmp(qemu.hmpPath, async (monitor) => {
    assert.is(await monitor.hmp('device_add nope'), "Error: 'nope' is not a valid device model name\n");
    const error = await rejectionOf(monitor.hmp('device_add nope', { throwOnError: true }));
    assert.instance(error, HmpError);
    assert.is((error as HmpError).commandLine, 'device_add nope');
    assert.is((error as HmpError).output, "Error: 'nope' is not a valid device model name\n");
    assert.is(await monitor.hmp('info status', { throwOnError: true }), 'VM status: paused (prelaunch)\n');
  });
});

test('execute() refuses unmapped commands and oob by name, without sending', async ({ qemu }) => {
  const { socket, writes } = spiedSocket(qemu.hmpPath);
  const monitor = await connect({ socket }, { logger: silentLogger });
  try {
    const unmapped = await rejectionOf(monitor.execute('query-block'));
    assert.instance(unmapped, UnsupportedError);
    assert.match(unmapped.message, /^query-block: not available on a human monitor \(HMP\)/);
    assert.match(unmapped.message, /query-status/, 'lists what is available');
    assert.instance(await rejectionOf(monitor.execute('query-status', undefined, { oob: true })), UnsupportedError);
    assert.instance(await rejectionOf(monitor.execute<unknown>('query-status', [1] as unknown as object)), UnsupportedError);
    assert.equal(writes, []);
  } finally {
    await monitor.close();
  }
});

test('events$ never emits on HMP and completes on close, across a cont and a stop that QMP sees as events', async ({ qemu }) => {
  const qmp = await connect(qemu.qmpPath, { logger: silentLogger });
  const monitor = await connect(qemu.hmpPath, { logger: silentLogger });
  try {
    // The same commands are seen as events on QMP: without them this spec would pass on a monitor that does nothing.
    const onQmp = firstValueFrom(
      qmp.events$.pipe(
        map((event) => event.event),
        skipWhile((name) => name !== 'RESUME'),
        take(2),
        toArray(),
        timeout(10_000),
      ),
    );
    const onHmp = firstValueFrom(monitor.events$.pipe(toArray(), timeout(10_000)));
    await monitor.execute('stop');
    await monitor.execute('cont');
    await monitor.execute('stop');
    assert.equal(await onQmp, ['RESUME', 'STOP']);
    await monitor.close();
    assert.equal(await onHmp, [], 'nothing emitted, and the stream completed on close');
  } finally {
    await monitor.close();
    await qmp.close();
  }
});

test('close() rejects the written and the queued commands; later calls fail at once', async ({ qemu }) => {
  const monitor = (await connect(qemu.hmpPath, { logger: silentLogger })) as HmpMonitor;
  const pending = [monitor.hmp('info status'), monitor.hmp('info name'), monitor.execute('query-status')];
  assert.is(monitor.pendingCount, 3);
  await monitor.close();
  for (const promise of pending) assert.instance(await rejectionOf(promise), ConnectionClosedError);
  assert.is(monitor.pendingCount, 0);
  assert.instance(await rejectionOf(monitor.hmp('info status')), ConnectionClosedError);
  await monitor.close(); // idempotent
  assert.equal(await monitor.closed, { expected: true });
});

test('a second client on a busy HMP socket times out waiting for the banner', async ({ qemu }) => {
  await withHmp(qemu.hmpPath, async () => {
    const error = await rejectionOf(connect(qemu.hmpPath, { greetingTimeoutMs: 300, logger: silentLogger }));
    assert.instance(error, GreetingTimeoutError);
  });
});

test("hmp('quit') resolves with '' when QEMU closes; the close is expected and QEMU exits 0", async () => {
  const qemu = await startQemu({ qmp: false });
  try {
    const monitor = await connect(qemu.hmpPath, { logger: silentLogger });
    const states = firstValueFrom(monitor.state$.pipe(toArray()));
    assert.is(await monitor.hmp('quit'), '');
    assert.equal(await monitor.closed, { expected: true });
    assert.equal(await states, ['ready', 'closed']);
    assert.equal(await qemu.waitForExit(), { code: 0, signal: null });
  } finally {
    await qemu.stop();
  }
});

test("execute('quit') resolves with {} and a command queued behind it is rejected", async () => {
  const qemu = await startQemu({ qmp: false });
  try {
    const monitor = await connect(qemu.hmpPath, { logger: silentLogger });
    const quit = monitor.execute('quit');
    const after = monitor.hmp('info status');
    assert.equal(await quit, {});
    assert.instance(await rejectionOf(after), ConnectionClosedError);
    assert.equal(await monitor.closed, { expected: true });
    assert.equal(await qemu.waitForExit(), { code: 0, signal: null });
  } finally {
    await qemu.stop();
  }
});

test('QEMU killed under a pending command: it is rejected and the close is unexpected', async () => {
  const qemu = await startQemu({ qmp: false });
  try {
    const monitor = (await connect(qemu.hmpPath, { logger: silentLogger })) as HmpMonitor;
    await monitor.hmp('info status');
    await qemu.kill();
    const error = await rejectionOf(monitor.hmp('info status'));
    assert.instance(error, ConnectionClosedError);
    const info = await monitor.closed;
    assert.is(info.expected, false);
    assert.is(monitor.pendingCount, 0);
  } finally {
    await qemu.stop();
  }
});

test.run();
