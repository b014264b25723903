/**
 * A reply QEMU prints but JSON cannot parse (a non-finite double printed by
 * "%.17g": inf, -inf, nan, -nan) still answers its own request, on every
 * path of the client, compact or `pretty=on`; no later reply moves. A
 * scripted peer, since QEMU 7.2 has no command that returns a non-finite
 * double on demand.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, ProtocolError, silentLogger, type Monitor } from '../../lib/index.js';
import { monitorCommand } from '../../lib/passthrough/index.js';
import type { QmpMonitor, QmpReply } from '../../lib/qmp/client.js';
import { startFakePeer, type FakePeer, type ReceivedLine } from '../helpers/fake-peer.js';

/** A generous deadline: a reply that went to the wrong request shows as a hang without it. */
const DEADLINE = { timeoutMs: 10_000 };

const TOKENS: ReadonlyArray<[token: string, value: number]> = [
  ['inf', Infinity],
  ['-inf', -Infinity],
  ['nan', NaN],
  ['-nan', NaN],
];

/** `{"return": {"x": TOKEN}}` as QEMU writes it, compact or pretty (CRLF, 4-space indent), with `idText` where QEMU puts it. */
function returnText(token: string, pretty: boolean, idText?: string): string {
  if (!pretty) return `{"return": {"x": ${token}}${idText === undefined ? '' : `, "id": ${idText}`}}\r\n`;
  const id = idText === undefined ? '' : `,\r\n    "id": ${idText}`;
  return `{\r\n    "return": {\r\n        "x": ${token}\r\n    }${id}\r\n}\r\n`;
}

function echoed(line: ReceivedLine): string {
  if (line.echoedId === undefined) throw new Error(`${line.text}: expected a command with an id`);
  return line.echoedId;
}

async function withPeer(script: (peer: FakePeer) => void, body: (peer: FakePeer) => Promise<void>): Promise<void> {
  const peer = await startFakePeer();
  try {
    peer.expect('qmp_capabilities').reply({ return: {} });
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

function assertX(value: unknown, expected: number, what: string): void {
  assert.ok(Object.is((value as { x: unknown }).x, expected), `${what}: got ${String((value as { x: unknown }).x)}`);
}

for (const pretty of [false, true]) {
  const style = pretty ? 'pretty' : 'compact';

  test(`execute() (the oldest command is not a relay), ${style}: inf/-inf/nan/-nan are read as QEMU meant them; each later command gets its own reply`, async () => {
    await withPeer(
      (peer) => {
        for (const [token] of TOKENS) peer.expect('qom-get').send(returnText(token, pretty)).expect('query-status').reply({ return: token });
      },
      async (peer) => {
        const monitor = await connect(peer.path, { logger: silentLogger });
        for (const [token, value] of TOKENS) {
          const [odd, next] = await Promise.all([monitor.execute<unknown>('qom-get', undefined, DEADLINE), monitor.execute('query-status', undefined, DEADLINE)]);
          assertX(odd, value, token);
          assert.is(next, token, `the reply after ${token} is its own command's`);
        }
        assert.is(pending(monitor), 0);
        await monitor.close();
      },
    );
  });

  test(`an exec-oob pending, ${style}: the in-band inf reply answers the in-band command, the OOB one (-inf, with qmpx's id) its own`, async () => {
    await withPeer(
      (peer) =>
        peer
          .expect('qom-get')
          .expect({ execute: 'query-yank', oob: true })
          .send(returnText('inf', pretty))
          .reply((line) => returnText('-inf', pretty, echoed(line)))
          .expect('query-status')
          .reply({ return: 'after' }),
      async (peer) => {
        const monitor = await connect(peer.path, { logger: silentLogger });
        const [inBand, outOfBand] = await Promise.all([
          monitor.execute<unknown>('qom-get', undefined, DEADLINE),
          monitor.execute('query-yank', undefined, { ...DEADLINE, oob: true }),
        ]);
        assertX(inBand, Infinity, 'in-band');
        assertX(outOfBand, -Infinity, 'out-of-band');
        assert.is(await monitor.execute('query-status', undefined, DEADLINE), 'after');
        assert.is(pending(monitor), 0);
        await monitor.close();
      },
    );
  });

  test(`wireIds: true, ${style}: a nan reply carrying its id settles that command; the next gets its own`, async () => {
    await withPeer(
      (peer) => {
        let firstId = '';
        peer
          .expect({ execute: 'qom-get', where: (line) => (firstId = echoed(line)) !== '' })
          .expect('query-status')
          .send(() => returnText('nan', pretty, firstId))
          .reply((line) => `{"return": "second", "id": ${echoed(line)}}\r\n`);
      },
      async (peer) => {
        const monitor = await connect(peer.path, { wireIds: true, logger: silentLogger });
        const [first, second] = await Promise.all([monitor.execute<unknown>('qom-get', undefined, DEADLINE), monitor.execute('query-status', undefined, DEADLINE)]);
        assertX(first, NaN, 'nan');
        assert.is(second, 'second');
        await monitor.close();
      },
    );
  });

  test(`monitorCommand (pass-through oldest), ${style}: QEMU's text as written with the caller's id; the next caller gets its own`, async () => {
    await withPeer(
      (peer) => peer.expect('qom-get').send(returnText('-inf', pretty)).expect('query-status').reply({ return: 'mine' }),
      async (peer) => {
        const monitor = await connect(peer.path, { logger: silentLogger });
        const [odd, next] = await Promise.all([
          monitorCommand(monitor, '{"execute":"qom-get","id":"c1"}', 0, DEADLINE),
          monitorCommand(monitor, '{"execute":"query-status","id":"c2"}', 0, DEADLINE),
        ]);
        assert.is(odd, returnText('-inf', pretty, '"c1"').trimEnd());
        assert.is(next, '{"return": "mine", "id": "c2"}');
        await monitor.close();
      },
    );
  });

  test(`sendWithCallback (a relay), ${style}: the text is handed over and only the next reply goes to the next command`, async () => {
    await withPeer(
      (peer) => peer.expect('qom-get').send(returnText('nan', pretty)).expect('query-status').reply({ return: 'mine' }),
      async (peer) => {
        const monitor = (await connect(peer.path, { logger: silentLogger })) as QmpMonitor;
        const relay = (command: string): Promise<QmpReply> =>
          new Promise((resolve, reject) =>
            monitor.sendWithCallback(command, undefined, DEADLINE, (outcome) => (outcome.ok ? resolve(outcome.reply) : reject(outcome.error))),
          );
        const [odd, next] = await Promise.all([relay('qom-get'), relay('query-status')]);
        assert.is(odd.text, returnText('nan', pretty).trimEnd());
        assert.equal(next.message, { return: 'mine' });
        await monitor.close();
      },
    );
  });
}

test('a reply no reader makes sense of answers its command with a ProtocolError carrying the text; nothing moves', async () => {
  const garbled = '{"return": {"x": 1.5.5}}';
  await withPeer(
    (peer) => peer.expect('qom-get').send(`${garbled}\r\n`).expect('query-status').reply({ return: 'mine' }),
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      const [odd, next] = await Promise.allSettled([monitor.execute<unknown>('qom-get', undefined, DEADLINE), monitor.execute('query-status', undefined, DEADLINE)]);
      assert.is(odd.status, 'rejected');
      const error = (odd as PromiseRejectedResult).reason as unknown;
      assert.ok(error instanceof ProtocolError, `got ${String(error)}`);
      assert.is(error.evidence, garbled);
      assert.equal(next, { status: 'fulfilled', value: 'mine' });
      await monitor.close();
    },
  );
});

test('an unreadable OOB reply is matched by its id; the in-band reply still answers the in-band command', async () => {
  await withPeer(
    (peer) =>
      peer
        .expect('qom-get')
        .expect({ execute: 'query-yank', oob: true })
        .reply((line) => `{"return": [@], "id": ${echoed(line)}}\r\n`)
        .send('{"return": "in-band"}\r\n'),
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      const [inBand, outOfBand] = await Promise.allSettled([
        monitor.execute<unknown>('qom-get', undefined, DEADLINE),
        monitor.execute('query-yank', undefined, { ...DEADLINE, oob: true }),
      ]);
      assert.ok(outOfBand.status === 'rejected' && outOfBand.reason instanceof ProtocolError, `got ${JSON.stringify(outOfBand)}`);
      assert.equal(inBand, { status: 'fulfilled', value: 'in-band' });
      await monitor.close();
    },
  );
});

test('an event with a non-finite value is delivered as an event and answers nothing', async () => {
  const eventText = '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X_ODD", "data": {"v": inf}}';
  await withPeer(
    (peer) => peer.expect('query-status').send(`${eventText}\r\n`).reply({ return: 'mine' }),
    async (peer) => {
      const monitor = await connect(peer.path, { logger: silentLogger });
      const events: unknown[] = [];
      const subscription = monitor.events$.subscribe((event) => events.push(event.data?.v));
      assert.is(await monitor.execute('query-status', undefined, DEADLINE), 'mine');
      subscription.unsubscribe();
      assert.equal(events, [Infinity]);
      await monitor.close();
    },
  );
});

test.run();
