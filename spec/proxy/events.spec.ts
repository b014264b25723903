/**
 * Events through the proxy: only to negotiated clients, in upstream wire
 * order with each client's replies, to every client, and never slowed by a
 * client that does not read (docs/design.md invariant 4). The upstream is a
 * scripted fake peer, since QEMU cannot put an event and a reply in one
 * write or flood on demand.
 */
import { connect as connectSocket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { qmpEvent, startFakePeer, formatLikeQemu, type FakePeer } from '../helpers/fake-peer.js';
import { rawQmp } from '../helpers/qemu.js';
import { eventually, serveUpstream, type Served } from './harness.js';

const event = (name: string, data?: Record<string, unknown>): string =>
  formatLikeQemu(qmpEvent(name, data, { seconds: 1700000000, microseconds: 1 }));

async function withProxy(
  script: (peer: FakePeer) => void,
  body: (peer: FakePeer, served: Served) => Promise<void>,
  options: { maxClientBufferBytes?: number } = {},
): Promise<void> {
  const peer = await startFakePeer();
  peer.autoRespond({});
  script(peer);
  const served = await serveUpstream(peer.path, { name: 'vm', ...options });
  try {
    await body(peer, served);
    await peer.done();
  } finally {
    await served.stop();
    await peer.close();
  }
}

test('an event before a reply and one after it, in one write, keep that order for the client', async () => {
  const e1 = event('STOP');
  const e2 = event('RESUME');
  await withProxy(
    (peer) => peer.expect('query-status').send(`${e1}\r\n{"return": {"status": "running"}}\r\n${e2}\r\n`),
    async (_peer, served) => {
      const client = await served.negotiatedClient();
      const other = await served.negotiatedClient();
      await client.send('{"execute":"query-status","id":"q"}\n');
      const lines = await client.waitForLines(5);
      assert.equal(lines.slice(2), [e1, '{"return": {"status": "running"}, "id": "q"}', e2]);
      assert.equal(await other.waitForLines(4).then((all) => all.slice(2)), [e1, e2]);
      await client.close();
      await other.close();
    },
  );
});

test('events go only to clients that have negotiated', async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await withProxy(
    (peer) => peer.waitUntil(released, 'both clients in place').event('STOP', undefined).expect('query-status').reply({ return: {} }),
    async (_peer, served) => {
      const negotiated = await served.negotiatedClient();
      const greetedOnly = await rawQmp(served.qmpPath);
      await greetedOnly.waitForLines(1);
      release();
      const [, , first] = await negotiated.waitForLines(3);
      assert.is(JSON.parse(first!).event, 'STOP');
      // The greeted client now negotiates; its first line after the reply must be the reply to its next command, not STOP.
      await greetedOnly.send('{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":1}\n');
      const lines = await greetedOnly.waitForLines(3);
      assert.equal(lines.slice(1), ['{"return": {}}', '{"return": {}, "id": 1}']);
      await negotiated.close();
      await greetedOnly.close();
    },
  );
});

test('every negotiated client gets every event, in wire order', async () => {
  const count = 500;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await withProxy(
    (peer) => peer.waitUntil(released, 'clients negotiated').flood(count, (index) => qmpEvent('BALLOON_CHANGE', { actual: index })),
    async (_peer, served) => {
      const clients = await Promise.all([0, 1, 2].map(() => served.negotiatedClient()));
      release();
      for (const client of clients) {
        const lines = (await client.waitForLines(2 + count)).slice(2);
        assert.equal(
          lines.map((line) => (JSON.parse(line) as { data: { actual: number } }).data.actual),
          Array.from({ length: count }, (_, index) => index),
        );
      }
      for (const client of clients) await client.close();
    },
  );
});

test('a client that does not read is disconnected with a log line; the others get every event', async () => {
  const count = 60_000;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await withProxy(
    (peer) => peer.waitUntil(released, 'clients ready').flood(count, (index) => qmpEvent('BALLOON_CHANGE', { actual: index })),
    async (_peer, served) => {
      const reader = await served.negotiatedClient();
      const stalled = connectSocket(served.qmpPath);
      await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
      stalled.write('{"execute":"qmp_capabilities"}\n');
      // Wait until the proxy has negotiated it (its session exists and is past the greeting) before it stops reading.
      await eventually(() => served.proxy.sessionCount === 2, 'both sessions');
      stalled.pause();
      const stalledClosed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
      stalled.on('error', () => undefined);
      release();
      const entry = await served.logger.waitFor('client is not reading');
      assert.is(entry.level, 'warn');
      assert.ok((entry.fields.bufferedBytes as number) > 1024 * 1024);
      stalled.resume();
      await stalledClosed;
      const lines = (await reader.waitForLines(2 + count, 30_000)).slice(2);
      assert.is(lines.length, count);
      assert.is(JSON.parse(lines[count - 1]!).data.actual, count - 1);
      await reader.close();
    },
    { maxClientBufferBytes: 1024 * 1024 },
  );
});

test('the upstream is drained with no client at all', async () => {
  await withProxy(
    (peer) => peer.flood(20_000, (index) => qmpEvent('BALLOON_CHANGE', { actual: index })).expect('query-status').reply({ return: { ok: true } }),
    async (_peer, served) => {
      // The flood must complete before query-status is even read: only then does this reply come back.
      await eventually(() => served.proxy.upstream.state === 'up', 'the upstream link');
      const client = await served.negotiatedClient();
      await client.send('{"execute":"query-status","id":"after"}\n');
      await client.waitForLine((line) => line === '{"return": {"ok": true}, "id": "after"}', 30_000);
      await client.close();
    },
  );
});

test.run();
