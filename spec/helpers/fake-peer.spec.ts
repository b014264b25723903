import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  formatLikeQemu,
  qmpEvent,
  rawJson,
  startFakePeer,
  QEMU_7_2_GREETING,
  type FakePeer,
  type FakePeerOptions,
} from './fake-peer.js';
import { rawQmp, type RawClient } from './raw-client.js';
import { rejectionOf } from './rejection.js';

const GREETING_LINE = `${QEMU_7_2_GREETING}\r\n`;

/** Runs `body` with a fresh peer and a raw client connected to it, closing both afterwards. */
async function withPeer(
  options: FakePeerOptions,
  script: (peer: FakePeer) => void,
  body: (peer: FakePeer, client: RawClient) => Promise<void>,
): Promise<void> {
  const peer = await startFakePeer(options);
  let client: RawClient | undefined;
  try {
    script(peer);
    client = await rawQmp(peer.path);
    await body(peer, client);
  } finally {
    await client?.close();
    await peer.close();
  }
}

test('formatLikeQemu writes JSON byte for byte as QEMU 7.2 does', () => {
  assert.is(formatLikeQemu(JSON.parse(QEMU_7_2_GREETING)), QEMU_7_2_GREETING);
  // QEMU echoed this id as shown: upper-case \u escapes, surrogate pairs, DEL escaped, '/' not.
  assert.is(formatLikeQemu('a/b\u00e9\u007f\u0001\u{1F600}\t"\\'), '"a/b\\u00E9\\u007F\\u0001\\uD83D\\uDE00\\t\\"\\\\"');
  assert.is(formatLikeQemu([1.5, 0, {}, [], null, true]), '[1.5, 0, {}, [], null, true]');
  assert.is(formatLikeQemu({ big: 18446744073709551615n, raw: rawJson('1e400'), gone: undefined }), '{"big": 18446744073709551615, "raw": 1e400}');
  assert.throws(() => formatLikeQemu(Number.NaN), /not a JSON number/);
});

test('qmpEvent builds events in QEMU member order', () => {
  assert.is(
    formatLikeQemu(qmpEvent('STOP', undefined, { seconds: 1, microseconds: 2 })),
    '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}',
  );
  assert.is(
    formatLikeQemu(qmpEvent('RESET', { guest: false }, { seconds: 1, microseconds: 2 })),
    '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESET", "data": {"guest": false}}',
  );
});

test('greets with the QEMU 7.2 greeting bytes on accept', async () => {
  await withPeer({}, () => undefined, async (peer, client) => {
    await client.waitForLines(1);
    assert.is(client.bytes().toString('latin1'), GREETING_LINE);
    await peer.done();
  });
});

test('plays a scripted exchange, echoing ids where QEMU puts them', async () => {
  await withPeer(
    {},
    (peer) =>
      peer
        .expect('qmp_capabilities')
        .reply({ return: {} })
        .expect('query-status')
        .reply({ return: { status: 'running' } })
        .expect('no-such-cmd')
        .replyError('CommandNotFound', 'The command no-such-cmd has not been found')
        .expect('query-name')
        .reply((command) => ({ return: { name: String(command.id) } })),
    async (peer, client) => {
      await client.waitForLines(1);
      await client.send('{"execute":"qmp_capabilities"}\n');
      await client.send('{"execute":"query-status","id":9007199254740993}\n');
      await client.send('{"execute":"no-such-cmd","id":{"a":[1]}}\n');
      await client.send({ execute: 'query-name', id: 'n1' });
      const lines = await client.waitForLines(5);
      assert.equal(lines.slice(1), [
        '{"return": {}}',
        '{"return": {"status": "running"}, "id": 9007199254740993}',
        '{"id": {"a": [1]}, "error": {"class": "CommandNotFound", "desc": "The command no-such-cmd has not been found"}}',
        '{"return": {"name": "n1"}, "id": "n1"}',
      ]);
      assert.ok(client.bytes().toString('latin1').endsWith('"id": "n1"}\r\n'), 'replies end with CRLF');
      await peer.done();
      assert.equal(peer.commands(), ['qmp_capabilities', 'query-status', 'no-such-cmd', 'query-name']);
      assert.is(peer.received[1]?.echoedId, '9007199254740993');
    },
  );
});

test('an unexpected command fails the script and gets a GenericError reply', async () => {
  await withPeer(
    {},
    (peer) => peer.expect('query-status').reply({ return: {} }),
    async (peer, client) => {
      await client.send('{"execute":"query-block","id":1}\n');
      const [, reply] = await client.waitForLines(2);
      assert.match(reply ?? '', /^\{"id": 1, "error": \{"class": "GenericError", "desc": "fake peer: unexpected input/);
      const failure = await rejectionOf(peer.done());
      assert.match(failure.message, /unexpected input on connection #0: ".*query-block.*", expected "query-status"/);
      assert.match(failure.message, /scripted at (dist\/)?spec\/helpers\/fake-peer\.spec\.[jt]s:\d+/);
      assert.throws(() => peer.assertDone(), /unexpected input/);
    },
  );
});

test('a scripted step that is never used fails assertDone and done', async () => {
  await withPeer(
    {},
    (peer) => peer.expect('qmp_capabilities').reply({ return: {} }).expect('query-status').reply({ return: {} }),
    async (peer, client) => {
      await client.send('{"execute":"qmp_capabilities"}\n');
      await client.waitForLines(2);
      assert.throws(() => peer.assertDone(), /never completed: expect "query-status" \(scripted at (dist\/)?spec\/helpers\/fake-peer\.spec\.[jt]s/);
      // The client will never send query-status, so this deadline can only expire.
      const failure = await rejectionOf(peer.done(50));
      assert.match(failure.message, /waited 50 ms for the script to finish[\s\S]*never completed: expect "query-status"/);
      assert.not.match(failure.message, /expect "qmp_capabilities"/, 'steps already used are not listed');
    },
  );
});

test('a command after the end of the script fails it', async () => {
  await withPeer(
    {},
    (peer) => peer.expect('qmp_capabilities').reply({ return: {} }),
    async (peer, client) => {
      await client.send('{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n');
      const lines = await client.waitForLines(3);
      assert.match(lines[2] ?? '', /GenericError.*the script expected nothing more/);
      assert.match((await rejectionOf(peer.done())).message, /"\{\\"execute\\":\\"query-status\\"\}", the script expected nothing more/);
    },
  );
});

test('the client closing while a command is expected fails the script', async () => {
  await withPeer(
    {},
    (peer) => peer.expect('qmp_capabilities'),
    async (peer, client) => {
      await client.close();
      assert.match((await rejectionOf(peer.done())).message, /expect "qmp_capabilities" \(scripted at .*\) failed: connection #0 closed before it came/);
    },
  );
});

test('a connection the script does not accept fails it', async () => {
  await withPeer({}, () => undefined, async (peer, client) => {
    await client.waitForLines(1);
    const intruder = await rawQmp(peer.path);
    await intruder.waitForClose();
    assert.is(intruder.bytes().length, 0, 'the unexpected connection is not greeted');
    assert.match((await rejectionOf(peer.done())).message, /unexpected connection #1/);
  });
});

test('accept() scripts a reconnect, with its own greeting', async () => {
  await withPeer(
    {},
    (peer) =>
      peer
        .expect('qmp_capabilities')
        .reply({ return: {} })
        .disconnect()
        .accept({ greeting: '{"QMP": {}}\r\n' })
        .expect({ execute: 'qmp_capabilities' })
        .reply({ return: {} }),
    async (peer, client) => {
      await client.send('{"execute":"qmp_capabilities"}\n');
      await client.waitForClose();
      const second = await rawQmp(peer.path);
      try {
        await second.send('{"execute":"qmp_capabilities"}\n');
        assert.equal(await second.waitForLines(2), ['{"QMP": {}}', '{"return": {}}']);
        await peer.done();
        assert.equal(
          peer.received.map((line) => line.connection),
          [0, 1],
        );
      } finally {
        await second.close();
      }
    },
  );
});

test('sends arbitrary bytes and hangs up in the middle of an object', async () => {
  const garbage = Buffer.from([0xff, 0x00, 0x7b, 0x0a]);
  await withPeer(
    {},
    (peer) => peer.send(garbage).event('STOP').send('{"return": {"status": "runn').disconnect(),
    async (peer, client) => {
      await client.waitForClose();
      const received = client.bytes();
      assert.equal(received.subarray(0, GREETING_LINE.length + garbage.length), Buffer.concat([Buffer.from(GREETING_LINE), garbage]));
      const rest = received.subarray(GREETING_LINE.length + garbage.length).toString('latin1');
      assert.match(rest, /^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "STOP"\}\r\n\{"return": \{"status": "runn$/);
      await peer.done();
    },
  );
});

test('a silent peer records everything and answers nothing', async () => {
  await withPeer(
    { greeting: null },
    (peer) => peer.silence().waitForCommand('query-status').send('marker\n'),
    async (peer, client) => {
      await client.send('{"execute":"qmp_capabilities"}\nnot json\n{"execute":"query-status"}\n');
      // The marker is sent only after query-status arrived: anything sent before it would precede it.
      assert.equal(await client.waitForLines(1), ['marker']);
      assert.equal(peer.commands(), ['qmp_capabilities', 'not json', 'query-status']);
      await peer.done();
    },
  );
});

test('expect() matches by arguments, exec-oob, text and predicate', async () => {
  await withPeer(
    { greeting: null },
    (peer) =>
      peer
        .expect({ execute: 'device_del', arguments: { id: 'kbd0' } })
        .expect({ execute: 'yank', oob: true })
        .expect({ text: 'info status' })
        .expect((line) => Array.isArray(line.json), 'a JSON array')
        .send('ok\n'),
    async (peer, client) => {
      await client.send('{"execute":"device_del","arguments":{"id":"kbd0"}}\n{"exec-oob":"yank","id":1}\ninfo status\r\n[1]\n');
      await client.waitForLines(1);
      await peer.done();
      assert.is(peer.received[1]?.oob, true);
    },
  );
});

test('guest-agent style: no greeting, LF line ends, a leading 0xFF is ignored for parsing', async () => {
  await withPeer(
    { greeting: null, lineEnd: '\n' },
    (peer) => peer.expect({ execute: 'guest-sync', arguments: { id: 5 } }).reply((command) => ({ return: (command.arguments as { id: number }).id })),
    async (peer, client) => {
      await client.send(Buffer.concat([Buffer.from([0xff]), Buffer.from('{"execute":"guest-sync","arguments":{"id":5}}\n')]));
      await client.waitForLines(1);
      assert.is(client.bytes().toString('latin1'), '{"return": 5}\n');
      await peer.done();
    },
  );
});

test('waitUntil() holds the script until the test releases it', async () => {
  let release = (): void => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  await withPeer(
    {},
    (peer) => peer.waitUntil(released, 'the release').event('GO'),
    async (peer, client) => {
      await client.waitForLines(1);
      assert.throws(() => peer.assertDone(), /never completed: waitUntil the release/);
      release();
      assert.match(await client.waitForLine((line) => line.includes('"GO"')), /"event": "GO"/);
      await peer.done();
    },
  );
});

test('the auto-responder answers alongside a flood, in wire order', async () => {
  const floodSize = 20_000;
  await withPeer(
    { autoRespond: { 'query-status': { return: { status: 'paused' } } } },
    (peer) => peer.waitForCommand('qmp_capabilities').flood(floodSize, (index) => qmpEvent('TICK', { index })),
    async (peer, client) => {
      await client.send('{"execute":"qmp_capabilities"}\n');
      await client.waitForLines(2);
      await client.send('{"execute":"query-status","id":7}\n');
      const lines = await client.waitForLines(2 + floodSize + 1);
      assert.is(lines[1], '{"return": {}}', 'no event precedes the negotiation reply');
      const events = lines.slice(2).filter((line) => line.includes('"TICK"'));
      assert.is(events.length, floodSize);
      assert.ok(
        events.every((line, index) => line.endsWith(`"data": {"index": ${index}}}`)),
        'events arrive in order',
      );
      assert.ok(lines.includes('{"return": {"status": "paused"}, "id": 7}'));
      await peer.done();
    },
  );
});

test('an unknown command still fails when the auto-responder is on', async () => {
  await withPeer(
    { autoRespond: {} },
    () => undefined,
    async (peer, client) => {
      await client.send('{"execute":"qmp_capabilities"}\n{"execute":"stop"}\n');
      const lines = await client.waitForLines(3);
      assert.is(lines[1], '{"return": {}}');
      assert.match(lines[2] ?? '', /GenericError/);
      assert.match((await rejectionOf(peer.done())).message, /stop/);
    },
  );
});

test('a flood waits for drain while the client does not read', async () => {
  const floodSize = 50_000;
  const padding = 'x'.repeat(100);
  await withPeer(
    {},
    (peer) => peer.flood(floodSize, (index) => qmpEvent('BULK', { index, padding })),
    async (peer, client) => {
      client.socket.pause();
      const connection = await peer.connection(0);
      await connection.waitingForDrain();
      // Blocked: the peer holds at most about one batch in user space.
      assert.ok(connection.socket.writableLength < 256 * 1024, `writableLength ${connection.socket.writableLength}`);
      assert.ok(connection.sentBytes < floodSize * padding.length, 'the flood has not run ahead of the reader');
      client.socket.resume();
      const lines = await client.waitForLines(1 + floodSize);
      assert.match(lines[floodSize] ?? '', new RegExp(`"index": ${floodSize - 1},`));
      await peer.done();
      assert.ok(connection.drainWaits > 0);
    },
  );
});

test.run();
