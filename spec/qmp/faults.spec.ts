import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { firstValueFrom, take, toArray } from 'rxjs';
import {
  AbortError,
  connect,
  ConnectionClosedError,
  GreetingTimeoutError,
  ProtocolError,
  QmpError,
  TimeoutError,
  silentLogger,
  type Logger,
  type Monitor,
} from '../../lib/index.js';
import type { QmpMonitor, QmpReply } from '../../lib/qmp/client.js';
import { qmpEvent, startFakePeer, type FakePeer } from '../helpers/fake-peer.js';
import { rejectionOf } from '../helpers/rejection.js';

async function withPeer(script: (peer: FakePeer) => void, body: (peer: FakePeer) => Promise<void>): Promise<void> {
  const peer = await startFakePeer();
  try {
    script(peer);
    await body(peer);
    await peer.done();
  } finally {
    await peer.close();
  }
}

function pending(monitor: Monitor): number {
  return (monitor as QmpMonitor).pendingCount;
}

test('a reply when nothing is pending settles nothing and is reported', async () => {
  let markSubscribed!: () => void;
  const subscribed = new Promise<void>((resolve) => (markSubscribed = resolve));
  await withPeer(
    (peer) =>
      peer
        .expect('qmp_capabilities')
        .reply({ return: {} })
        .waitUntil(subscribed, 'the test to subscribe to protocolErrors$')
        .send('{"return": "stray"}\r\n')
        .expect('query-status')
        .reply({ return: 'mine' }),
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      const errors = firstValueFrom(monitor.protocolErrors$.pipe(take(1)));
      markSubscribed();
      const error = await errors;
      assert.match(error.message, /no command pending/);
      assert.is(error.evidence, '{"return": "stray"}');
      assert.is(await monitor.execute('query-status'), 'mine');
      await monitor.close();
    },
  );
});

test('a reply with an id that matches no command settles nothing', async () => {
  await withPeer(
    (peer) => peer.expect('qmp_capabilities').reply({ return: {} }).expect('query-status').send('{"return": "forged", "id": 999}\r\n').reply({ return: 'real' }),
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      const errors = firstValueFrom(monitor.protocolErrors$.pipe(take(1)));
      const reply = monitor.execute('query-status');
      assert.match((await errors).message, /matches no command/);
      assert.is(await reply, 'real');
      await monitor.close();
    },
  );
});

test('garbage bytes and malformed messages are reported and never crash; a malformed reply answers its own request, the next its own', async () => {
  await withPeer(
    (peer) =>
      peer
        .expect('qmp_capabilities')
        .reply({ return: {} })
        .expect('query-name')
        .expect('query-status')
        .send('hello there\r\n{"neither": 1}\r\n{"event": 42}\r\n{"return": 1, }\r\n\x00\x01\x02\r\n')
        .reply({ return: 'after garbage' }),
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      const errors = firstValueFrom(monitor.protocolErrors$.pipe(take(5), toArray()));
      const deadline = { timeoutMs: 10_000 };
      const [malformed, next] = await Promise.allSettled([monitor.execute('query-name', undefined, deadline), monitor.execute('query-status', undefined, deadline)]);
      assert.ok(malformed.status === 'rejected' && malformed.reason instanceof ProtocolError, 'the malformed reply answers query-name');
      assert.is((malformed as PromiseRejectedResult).reason.evidence, '{"return": 1, }');
      assert.equal(next, { status: 'fulfilled', value: 'after garbage' });
      const reported = (await errors).map((error) => error.message);
      assert.is(reported.length, 5);
      assert.ok(reported.every((message, index) => typeof message === 'string' && (index >= 0)));
      assert.ok((await errors).every((error) => error instanceof ProtocolError));
      assert.is(pending(monitor), 0);
      await monitor.close();
    },
  );
});

test('a message over maxMessageBytes is a ProtocolError that closes the connection; pending requests reject', async () => {
  await withPeer(
    (peer) =>
      peer
        .expect('qmp_capabilities')
        .reply({ return: {} })
        .expect('query-qmp-schema')
        .send(`{"return": "${'x'.repeat(200_000)}"}\r\n`)
        .expectClose(),
    async (peer) => {
      const monitor = await connect(peer.path, { maxMessageBytes: 64 * 1024, logger: silentLogger });
      const error = await rejectionOf(monitor.execute('query-qmp-schema'));
      assert.instance(error, ConnectionClosedError);
      assert.instance((error as Error).cause, ProtocolError);
      assert.match(((error as Error).cause as Error).message, /exceeds maxMessageBytes \(65536\)/);
      const info = await monitor.closed;
      assert.is(info.expected, false);
      assert.is(pending(monitor), 0);
    },
  );
});

test('a silent peer gives GreetingTimeoutError', async () => {
  const peer = await startFakePeer({ greeting: null });
  try {
    peer.silence();
    const error = await rejectionOf(connect(peer.path, { greetingTimeoutMs: 200, logger: silentLogger }));
    assert.instance(error, GreetingTimeoutError);
    assert.is((error as GreetingTimeoutError).code, 'GREETING_TIMEOUT');
  } finally {
    await peer.close();
  }
});

/** Rejects if `promise` has not settled within `ms`: a client that waits forever fails instead of hanging. */
async function withinDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

test('the start deadline covers negotiation too: qmp_capabilities never answered gives GreetingTimeoutError, and the monitor hangs up', async () => {
  const peer = await startFakePeer();
  try {
    peer.expect('qmp_capabilities').expectClose();
    const error = await rejectionOf(withinDeadline(connect(peer.path, { greetingTimeoutMs: 300, logger: silentLogger }), 10_000));
    assert.instance(error, GreetingTimeoutError);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test('a refused negotiation ends the session before connect() rejects, with the refusal as the cause', async () => {
  const peer = await startFakePeer();
  const states: Array<{ to?: unknown; reason?: unknown }> = [];
  const logger: Logger = {
    debug: (fields, message) => {
      if (message === 'monitor state') states.push(fields as { to?: unknown; reason?: unknown });
    },
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };
  try {
    peer.expect('qmp_capabilities').replyError('GenericError', 'negotiation refused').expectClose();
    const error = await rejectionOf(connect(peer.path, { logger }));
    assert.instance(error, QmpError);
    assert.equal(states.at(-1), { monitor: peer.path, from: 'negotiating', to: 'closed', reason: error.message });
    await peer.done();
  } finally {
    await peer.close();
  }
});

test('events before the greeting are tolerated', async () => {
  const peer = await startFakePeer({ greeting: null });
  try {
    peer.send(qmpEvent('STOP')).send({ QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: '' }, capabilities: [] } });
    peer.expect('qmp_capabilities').reply({ return: {} });
    const monitor = await connect(peer.path, { logger: silentLogger });
    assert.equal(monitor.capabilities, []);
    await peer.done();
    await monitor.close();
  } finally {
    await peer.close();
  }
});

test('close mid-object: the partial tail is discarded, every pending request rejects', async () => {
  await withPeer(
    (peer) => peer.expect('qmp_capabilities').reply({ return: {} }).expect('query-status').expect('query-name').send('{"return": {"status": "runn').disconnect(),
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      const errors = firstValueFrom(monitor.protocolErrors$.pipe(toArray()));
      const first = rejectionOf(monitor.execute('query-status'));
      const second = rejectionOf(monitor.execute('query-name'));
      assert.instance(await first, ConnectionClosedError);
      assert.instance(await second, ConnectionClosedError);
      const reported = await errors;
      assert.ok(reported.some((error) => /partial message discarded/.test(error.message) && error.evidence === '{"return": {"status": "runn'));
      assert.is((await monitor.closed).expected, false);
      assert.is(pending(monitor), 0);
    },
  );
});

test('a timed-out command settles at once and its late reply goes to nobody', async () => {
  let timedOut!: Promise<Error>;
  await withPeer(
    (peer) =>
      peer
        .expect('qmp_capabilities')
        .reply({ return: {} })
        .expect('query-status')
        .waitUntil(() => timedOut)
        .expect('query-name')
        .send('{"return": "late reply to query-status"}\r\n')
        .send('{"return": {"name": "vm1"}}\r\n'),
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      timedOut = rejectionOf(monitor.execute('query-status', undefined, { timeoutMs: 50 }));
      const error = await timedOut;
      assert.instance(error, TimeoutError);
      assert.is((error as TimeoutError).command, 'query-status');
      assert.equal(await monitor.execute('query-name'), { name: 'vm1' });
      assert.is(pending(monitor), 0);
      await monitor.close();
    },
  );
});

test('an aborted command settles at once; one aborted while still queued is never sent', async () => {
  const controller = new AbortController();
  let aborted!: Promise<Error>;
  await withPeer(
    (peer) =>
      peer
        .expect('qmp_capabilities')
        .reply({ return: {} })
        .expect('query-status')
        .waitUntil(() => aborted)
        .reply({ return: 'late' })
        .expect('query-name')
        .reply({ return: { name: 'second' } }),
    async (peer) => {
      const monitor = await connect(peer.path, { maxInFlight: 1, logger: silentLogger });
      const queuedController = new AbortController();
      aborted = rejectionOf(monitor.execute('query-status', undefined, { signal: controller.signal }));
      const neverSent = rejectionOf(monitor.execute('query-cpus-fast', undefined, { signal: queuedController.signal }));
      queuedController.abort();
      assert.instance(await neverSent, AbortError);
      controller.abort();
      assert.instance(await aborted, AbortError);
      assert.equal(await monitor.execute('query-name'), { name: 'second' });
      assert.not.ok(peer.commands().includes('query-cpus-fast'));
      await monitor.close();
    },
  );
});

test('exec-oob carries a qmpx id; its reply may overtake in-band ones', async () => {
  const peer = await startFakePeer();
  try {
    let oobId: string | undefined;
    peer
      .expect('qmp_capabilities')
      .reply({ return: {} })
      .expect('query-status')
      .expect({ execute: 'query-yank', oob: true })
      .reply((line) => {
        oobId = line.echoedId;
        return { return: ['oob first'] };
      })
      .send('{"return": "in-band second"}\r\n');
    const monitor = await connect(peer.path, { logger: silentLogger });
    const order: string[] = [];
    const inBand = monitor.execute<string>('query-status').then((value) => order.push(value));
    const outOfBand = monitor.execute<string[]>('query-yank', undefined, { oob: true }).then((value) => order.push(value[0]!));
    await Promise.all([inBand, outOfBand]);
    assert.equal(order, ['oob first', 'in-band second']);
    assert.ok(oobId !== undefined && /^\d+$/.test(oobId), 'exec-oob went out with a numeric id');
    const inBandLine = peer.received.find((line) => line.execute === 'query-status');
    assert.is(inBandLine?.hasId, false, 'in-band commands carry no id');
    await peer.done();
    await monitor.close();
  } finally {
    await peer.close();
  }
});

test('sendWithCallback: a malformed success reply still answers its command, as text; the next command gets its own', async () => {
  await withPeer(
    (peer) =>
      peer
        .expect('qmp_capabilities')
        .reply({ return: {} })
        .expect('qom-get')
        .send('{"return": inf}\r\n')
        .expect('query-status')
        .reply({ return: 'mine' }),
    async (peer) => {
      const monitor = (await connect(peer.path, { logger: silentLogger })) as QmpMonitor;
      const relay = (command: string): Promise<QmpReply> =>
        new Promise((resolve, reject) =>
          monitor.sendWithCallback(command, undefined, { timeoutMs: 10_000 }, (outcome) => (outcome.ok ? resolve(outcome.reply) : reject(outcome.error))),
        );
      const first = await relay('qom-get');
      assert.is(first.kind, 'return');
      assert.is(first.text, '{"return": inf}', 'QEMU’s text, for the relay to pass on');
      assert.equal(first.message, { return: Infinity }, 'read as QEMU meant it when asked for');
      const second = await relay('query-status');
      assert.equal(second.message, { return: 'mine' });
      assert.is(pending(monitor), 0);
      await monitor.close();
    },
  );
});

test('wireIds: true puts an id on every command and matches replies by it', async () => {
  await withPeer(
    (peer) => peer.expect('qmp_capabilities').reply({ return: {} }).expect('query-status').reply({ return: 'by id' }),
    async (peer) => {
      const monitor = await connect(peer.path, { wireIds: true, logger: silentLogger });
      assert.is(await monitor.execute('query-status'), 'by id');
      assert.ok(peer.received.every((line) => line.hasId));
      await monitor.close();
    },
  );
});

test('at most maxInFlight in-band commands are written before replies come back', async () => {
  let seenBeforeFirstReply = -1;
  await withPeer(
    (peer) => {
      peer.expect('qmp_capabilities').reply({ return: {} });
      for (let i = 0; i < 8; i++) peer.expect('query-status');
      peer.send(() => {
        seenBeforeFirstReply = peer.received.filter((line) => line.execute === 'query-status').length;
        return '{"return": {}}\r\n';
      });
      for (let i = 0; i < 7; i++) peer.send('{"return": {}}\r\n');
      for (let i = 0; i < 4; i++) peer.expect('query-status').reply({ return: {} });
    },
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      await Promise.all(Array.from({ length: 12 }, () => monitor.execute('query-status')));
      assert.is(seenBeforeFirstReply, 8);
      assert.is(peer.received.filter((line) => line.execute === 'query-status').length, 12);
      await monitor.close();
    },
  );
});

test('a 200,000-event flood is consumed with bounded memory', async () => {
  const peer = await startFakePeer();
  try {
    peer.autoRespond({});
    peer.waitForCommand('qmp_capabilities').flood(200_000, (index) => qmpEvent('VSERPORT_CHANGE', { id: `channel${index % 10}`, open: true }));
    const monitor = await connect(peer.path, { logger: silentLogger });
    let count = 0;
    const baseline = process.memoryUsage().rss;
    let peakRss = baseline;
    await new Promise<void>((resolve) => {
      monitor.events$.subscribe((event) => {
        assert.is(event.event, 'VSERPORT_CHANGE');
        if (++count % 20_000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
        if (count === 200_000) resolve();
      });
    });
    assert.is(count, 200_000);
    // Keeping every event would cost well over 100 MB; qmpx keeps none.
    assert.ok(peakRss - baseline < 64 * 1024 * 1024, `RSS grew by ${((peakRss - baseline) / 1048576).toFixed(1)} MiB`);
    await monitor.close();
    await peer.done();
  } finally {
    await peer.close();
  }
});

test.run();
