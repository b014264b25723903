/**
 * The HMP client against a scripted fake peer, for what QEMU will not do on
 * demand: stall, die mid-output, print out of turn, print nonsense.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { firstValueFrom, timeout, toArray } from 'rxjs';
import {
  AbortError,
  connect,
  ConnectionClosedError,
  ProtocolError,
  QmpError,
  silentLogger,
  TimeoutError,
  type Monitor,
  type MonitorOptions,
} from '../../lib/index.js';
import type { HmpMonitor } from '../../lib/hmp/client.js';
import { startFakePeer, type FakePeer } from '../helpers/fake-peer.js';
import { GREETING, hmpReply, PROMPT, qemuEcho } from './hmp-wire.js';
import { rejectionOf } from '../helpers/rejection.js';

/** A fake HMP peer, scripted by `script` before the client connects; the script must be used up. */
async function withHmpPeer(
  script: (peer: FakePeer) => void,
  body: (monitor: HmpMonitor, peer: FakePeer) => Promise<void>,
  options: MonitorOptions = {},
): Promise<void> {
  const peer = await startFakePeer({ greeting: GREETING });
  try {
    script(peer);
    // The deadline turns a client that waits forever into a failure instead of a hang.
    const monitor = (await connect(peer.path, { logger: silentLogger, commandTimeoutMs: 10_000, ...options })) as HmpMonitor;
    try {
      await body(monitor, peer);
    } finally {
      await monitor.close();
    }
    assert.is(monitor.pendingCount, 0, 'nothing left pending');
    await peer.done();
  } finally {
    await peer.close();
  }
}

/** Resolves once `monitor` reports a protocol error, failing after 10 s. */
function nextProtocolError(monitor: Monitor): Promise<ProtocolError> {
  return firstValueFrom(monitor.protocolErrors$.pipe(timeout(10_000)));
}

test('a timed-out command keeps its place: the next one is written only after the late prompt, and gets its own output', async () => {
  let firstTimedOut!: Promise<Error>;
  await withHmpPeer(
    (peer) =>
      peer
        .expect({ text: 'info status' })
        .waitUntil(async () => {
          assert.instance(await firstTimedOut, TimeoutError);
          assert.is(peer.received.length, 1, 'info name was held back');
        }, 'the first command to time out')
        .send(hmpReply('info status', 'VM status: running\r\n'))
        .expect({ text: 'info name' })
        .send(hmpReply('info name', 'lab1\r\n')),
    async (monitor) => {
      firstTimedOut = rejectionOf(monitor.hmp('info status', { timeoutMs: 50 }));
      assert.is(await monitor.hmp('info name'), 'lab1\n');
    },
  );
});

test('abort: a queued command is never written; the written one settles with AbortError and its output is dropped', async () => {
  const inFlight = new AbortController();
  const queued = new AbortController();
  let aborted!: Promise<Error[]>;
  await withHmpPeer(
    (peer) =>
      peer
        .expect({ text: 'info status' })
        .waitUntil(() => aborted, 'both aborts')
        .send(hmpReply('info status', 'VM status: running\r\n'))
        .expect({ text: 'info version' })
        .send(hmpReply('info version', '7.2.22Debian\r\n')),
    async (monitor, peer) => {
      const first = monitor.hmp('info status', { signal: inFlight.signal });
      const second = monitor.hmp('info name', { signal: queued.signal });
      const third = monitor.execute('query-version');
      queued.abort();
      inFlight.abort();
      aborted = Promise.all([rejectionOf(first), rejectionOf(second)]);
      for (const error of await aborted) assert.instance(error, AbortError);
      assert.equal(await third, { qemu: { micro: 22, minor: 2, major: 7 }, package: 'Debian' });
      assert.equal(peer.commands(), ['info status', 'info version']);
    },
  );
});

test('connection lost in the middle of output: written and queued commands are rejected, the partial output is reported', async () => {
  await withHmpPeer(
    (peer) => peer.expect({ text: 'info mtree' }).send(`${qemuEcho('info mtree')}address-space: mem`).disconnect(),
    async (monitor) => {
      const protocolError = nextProtocolError(monitor);
      const written = monitor.hmp('info mtree');
      const queued = monitor.hmp('info status');
      assert.instance(await rejectionOf(written), ConnectionClosedError);
      assert.instance(await rejectionOf(queued), ConnectionClosedError);
      assert.equal(await monitor.closed, { expected: false });
      const error = await protocolError;
      assert.match(error.message, /middle of HMP output/);
      assert.is(error.evidence, 'address-space: mem');
    },
  );
});

test('output while no command runs is reported, and the session carries on', async () => {
  let subscribed!: () => void;
  const listening = new Promise<void>((resolve) => (subscribed = resolve));
  await withHmpPeer(
    (peer) =>
      peer
        .waitUntil(listening)
        .send('surprise\r\n')
        .expect({ text: 'info name' })
        .send(hmpReply('info name', 'lab1\r\n')),
    async (monitor) => {
      const protocolError = nextProtocolError(monitor);
      subscribed();
      const error = await protocolError;
      assert.match(error.message, /no command was running/);
      assert.is(error.evidence, 'surprise\r\n');
      assert.is(await monitor.hmp('info name'), 'lab1\n');
    },
  );
});

test('a mapped command whose output is error text rejects with QmpError GenericError and QMP\'s desc', async () => {
  await withHmpPeer(
    (peer) => peer.expect({ text: 'cont' }).send(hmpReply('cont', 'Error: Resetting the Virtual Machine is required\r\n')),
    async (monitor) => {
      const error = await rejectionOf(monitor.execute('cont'));
      assert.instance(error, QmpError);
      assert.equal([(error as QmpError).errorClass, (error as QmpError).desc, (error as QmpError).command], [
        'GenericError',
        'Resetting the Virtual Machine is required',
        'cont',
      ]);
    },
  );
});

test('status text the parser cannot read rejects with ProtocolError carrying the text', async () => {
  await withHmpPeer(
    (peer) => peer.expect({ text: 'info status' }).send(hmpReply('info status', 'VM status: confused\r\n')),
    async (monitor) => {
      const error = await rejectionOf(monitor.execute('query-status'));
      assert.instance(error, ProtocolError);
      assert.is((error as ProtocolError).evidence, 'VM status: confused\r\n');
    },
  );
});

test('single-step mode and other run states are read as QMP reports them', async () => {
  await withHmpPeer(
    (peer) =>
      peer
        .expect({ text: 'info status' })
        .send(hmpReply('info status', 'VM status: paused (single step mode) (shutdown)\r\n'))
        .expect({ text: 'info status' })
        .send(hmpReply('info status', 'VM status: running (single step mode)\r\n')),
    async (monitor) => {
      assert.equal(await monitor.execute('query-status'), { status: 'shutdown', singlestep: true, running: false });
      assert.equal(await monitor.execute('query-status'), { status: 'running', singlestep: true, running: true });
    },
  );
});

test('output past maxMessageBytes closes the connection; the command is rejected with the reason as cause', async () => {
  await withHmpPeer(
    (peer) => peer.expect({ text: 'info qtree' }).send(`${qemuEcho('info qtree')}${'bus: main-system-bus\r\n'.repeat(10)}`).expectClose(),
    async (monitor) => {
      const error = await rejectionOf(monitor.hmp('info qtree'));
      assert.instance(error, ConnectionClosedError);
      assert.instance(error.cause, ProtocolError);
      assert.match((error.cause as Error).message, /exceeds maxMessageBytes \(64\)/);
      const info = await monitor.closed;
      assert.is(info.expected, false);
    },
    { maxMessageBytes: 64 },
  );
});

for (const [peerKind, echo] of [
  ['QEMU, which echoes the line', qemuEcho('info big')],
  ['a peer that does not echo (a qmpx proxy)', ''],
] as const) {
  test(`a 32 MiB output arriving in 64 KiB pieces is read in time linear in its size: ${peerKind}`, async () => {
    const line = `${'0'.repeat(78)}\r\n`;
    const piece = line.repeat(829); // 65,491 bytes
    const pieces = 512;
    await withHmpPeer(
      (peer) => peer.expect({ text: 'info big' }).send(echo).flood(pieces, piece).send(PROMPT),
      async (monitor) => {
        // Read linearly this takes 0.2 to 0.4 s here; a reader that searches all it has collected on
        // every piece takes several seconds. The deadline is there to catch the latter.
        const output = await monitor.hmp('info big', { timeoutMs: 3_000 });
        assert.is(output.length, pieces * 829 * 79);
        assert.is(output.slice(0, 79), `${'0'.repeat(78)}\n`);
      },
      { maxMessageBytes: 64 * 1024 * 1024 },
    );
  });
}

test("'q', quit's alias, is answered by the close as well; a quit queued behind it was never sent and is rejected", async () => {
  await withHmpPeer(
    (peer) => peer.expect({ text: 'q' }).send(qemuEcho('q')).disconnect(),
    async (monitor) => {
      const states = firstValueFrom(monitor.state$.pipe(toArray()));
      const quit = monitor.hmp('q');
      const queuedQuit = monitor.execute('quit');
      assert.is(await quit, '');
      assert.instance(await rejectionOf(queuedQuit), ConnectionClosedError);
      assert.equal(await monitor.closed, { expected: true });
      assert.equal(await states, ['ready', 'closed']);
    },
  );
});

test("protocol: 'hmp' on a QMP peer fails with ProtocolError quoting the greeting", async () => {
  const peer = await startFakePeer();
  try {
    peer.expectClose();
    const error = await rejectionOf(connect(peer.path, { protocol: 'hmp', logger: silentLogger }));
    assert.instance(error, ProtocolError);
    assert.match(error.message, /is not a QEMU human monitor: .*got "\{\\"QMP\\"/);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test('a peer that hangs up in the middle of the banner: ConnectionClosedError', async () => {
  const peer = await startFakePeer({ greeting: 'QEMU 7.2.22 monitor - ty' });
  try {
    peer.disconnect();
    const error = await rejectionOf(connect(peer.path, { logger: silentLogger }));
    assert.instance(error, ConnectionClosedError);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test('a banner without its prompt times out, quoting what came', async () => {
  const peer = await startFakePeer({ greeting: "QEMU 7.2.22 monitor - type 'help' for more information\r\n" });
  try {
    peer.expectClose();
    const error = await rejectionOf(connect(peer.path, { greetingTimeoutMs: 200, logger: silentLogger }));
    assert.is(error.name, 'GreetingTimeoutError');
    assert.match(error.message, /received so far: "QEMU 7\.2\.22 monitor/);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test.run();
