/**
 * Faults on both sides of the proxy: the upstream killed under load or
 * restarted, a client vanishing mid-command, a client that does not read,
 * oversized input, a reply QEMU wrote that is not JSON. After each, nothing may be left pending and other
 * clients must be served correctly.
 */
import { rename, symlink } from 'node:fs/promises';
import { connect as connectSocket } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startFakePeer } from '../helpers/fake-peer.js';
import { rawQmp, startQemu, type RawClient } from '../helpers/qemu.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { eventually, serveQemu, serveUpstream } from './harness.js';

const LOST = (id: number | string): string =>
  `{"id": ${JSON.stringify(id)}, "error": {"class": "GenericError", "desc": "monitor connection lost"}}`;

function pipelined(count: number, prefix = ''): string {
  let text = '';
  for (let i = 0; i < count; i++) text += `{"execute":"query-status","id":${prefix ? `"${prefix}${i}"` : i}}\n`;
  return text;
}

test('upstream SIGKILL under load: every request read is answered, in order, then clients are closed', async () => {
  const served = await serveQemu();
  try {
    const clients = await Promise.all([0, 1, 2, 3, 4].map(() => served.negotiatedClient()));
    const count = 3000;
    await Promise.all(clients.map((client) => client.send(pipelined(count))));
    await clients[0]!.waitForLines(100);
    await served.qemu.kill();
    for (const client of clients) {
      await client.waitForClose();
      const replies = client.lines().slice(2);
      assert.ok(replies.length <= count);
      replies.forEach((line, index) => {
        const ok = line === `{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": ${index}}`;
        assert.ok(ok || line === LOST(index), `reply ${index}: ${line}`);
      });
    }
    assert.ok(clients.some((client) => client.lines().slice(2).includes(LOST(client.lines().length - 3))), 'someone saw the loss');
    await eventually(() => served.proxy.sessionCount === 0 && served.proxy.pendingCount === 0, 'sessions gone');
    assert.is(served.proxy.upstream.state, 'connecting');
    await served.logger.waitFor('upstream monitor connection lost');
  } finally {
    await served.stop();
  }
});

test('upstream restart: the proxy reconnects; waiting and new clients are served on the new QEMU', async () => {
  const dir = createTempDir('restart');
  const first = await startQemu();
  const upstream = join(dir, 'upstream.sock');
  await symlink(first.qmpPath, upstream);
  const served = await serveUpstream(upstream);
  let second: Awaited<ReturnType<typeof startQemu>> | undefined;
  try {
    const old = await served.negotiatedClient();
    await first.stop();
    // SIGTERM: QEMU says SHUTDOWN, then the proxy closes its clients as QEMU did.
    await old.waitForClose();
    assert.ok(old.lines().some((line) => line.includes('"event": "SHUTDOWN"')));
    await eventually(() => served.proxy.upstream.state === 'connecting', 'upstream down');
    const early = await rawQmp(served.qmpPath);
    // One that gives up while waiting is let go at once, not held through the outage.
    const leaver = await rawQmp(served.qmpPath);
    await eventually(() => served.proxy.sessionCount === 2, 'both waiting clients');
    leaver.socket.destroy();
    await eventually(() => served.proxy.sessionCount === 1, 'the leaver gone while the upstream is still down');
    assert.is(served.proxy.upstream.state, 'connecting');
    second = await startQemu();
    await symlink(second.qmpPath, join(dir, 'next.sock'));
    await rename(join(dir, 'next.sock'), upstream);
    const [greeting] = await early.waitForLines(1);
    assert.ok(greeting!.startsWith('{"QMP": {"version": {"qemu":'));
    await early.send('{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":"early"}\n');
    await early.waitForLine((line) => line.endsWith('"id": "early"}'));
    const fresh = await served.negotiatedClient();
    await fresh.send('{"execute":"query-status","id":"fresh"}\n');
    await fresh.waitForLine((line) => line.endsWith('"id": "fresh"}'));
    await served.logger.waitFor('upstream monitor connected');
    assert.is(served.proxy.upstream.current?.generation, 2);
    await early.close();
    await fresh.close();
  } finally {
    await served.stop();
    await second?.stop();
    await removeTempDir(dir);
  }
});

test('a client vanishing mid-command: its late reply goes nowhere, nothing stays pending', async () => {
  const peer = await startFakePeer();
  peer.autoRespond({});
  let gone!: () => void;
  const clientGone = new Promise<void>((resolve) => (gone = resolve));
  peer.expect('query-status').waitUntil(clientGone, 'the client to vanish').reply({ return: { late: true } });
  peer.expect('query-status').reply({ return: { second: true } });
  const served = await serveUpstream(peer.path, { name: 'vm' });
  try {
    const vanishing = await served.negotiatedClient();
    await vanishing.send('{"execute":"query-status","id":1}\n');
    await eventually(() => peer.commands().includes('query-status'), 'the command upstream');
    // Gone for good, though the proxy sees only the end of its input (as QEMU would) until it answers.
    vanishing.socket.destroy();
    gone();
    await eventually(() => served.proxy.sessionCount === 0, 'the session to end');
    const next = await served.negotiatedClient();
    await next.send('{"execute":"query-status","id":2}\n');
    const [, , reply] = await next.waitForLines(3);
    assert.is(reply, '{"return": {"second": true}, "id": 2}');
    assert.is(served.proxy.upstream.current?.qmp?.pendingCount, 0);
    await next.close();
    await eventually(() => served.proxy.pendingCount === 0, 'nothing pending');
    await peer.done();
  } finally {
    await served.stop();
    await peer.close();
  }
});

test('a client vanishing with thousands of commands queued: none of their replies reach anyone else', async () => {
  const served = await serveQemu();
  try {
    const vanishing = await served.negotiatedClient();
    const witness = await served.negotiatedClient();
    await vanishing.send(pipelined(5000, 'v'));
    await vanishing.waitForLines(3);
    vanishing.socket.destroy();
    for (let i = 0; i < 50; i++) {
      await witness.send(`{"execute":"query-status","id":"w${i}"}\n`);
      const line = await witness.waitForLine((candidate) => candidate.includes(`"id": "w${i}"`));
      assert.is(line, `{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": "w${i}"}`);
    }
    assert.not.ok(witness.text().includes('"id": "v'), 'no reply of the vanished client');
    await eventually(() => served.proxy.sessionCount === 1 && served.proxy.pendingCount === 0, 'the vanished session gone');
    await eventually(() => served.proxy.upstream.current?.qmp?.pendingCount === 0, 'nothing pending upstream');
    await witness.close();
  } finally {
    await served.stop();
  }
});

test('a client that pipelines without reading is slowed, not dropped; others are served meanwhile', async () => {
  const served = await serveQemu({ maxClientBufferBytes: 64 * 1024 });
  try {
    const stalled = connectSocket(served.qmpPath);
    stalled.on('error', (error) => assert.unreachable(`the stalled client failed: ${error.message}`));
    stalled.pause();
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    const count = 6000;
    stalled.write(`{"execute":"qmp_capabilities"}\n${pipelined(count)}`);
    const other: RawClient = await served.negotiatedClient();
    for (let i = 0; i < 100; i++) {
      await other.send(`{"execute":"query-status","id":"o${i}"}\n`);
      await other.waitForLine((line) => line.endsWith(`"id": "o${i}"}`));
    }
    assert.not.ok(served.logger.entries.some((entry) => entry.message.includes('not reading')));
    // Now it reads: every reply is there, in order.
    let received = '';
    stalled.setEncoding('latin1');
    stalled.on('data', (text: string) => (received += text));
    stalled.resume();
    await eventually(() => received.includes(`"id": ${count - 1}}`), 'the last reply', 60_000);
    const lines = received.split('\r\n').slice(2, -1);
    assert.is(lines.length, count);
    assert.is(lines[1234], '{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": 1234}');
    stalled.destroy();
    await other.close();
  } finally {
    await served.stop();
  }
});

test('oversized input disconnects that client with a log line; others are unaffected', async () => {
  const served = await serveQemu();
  try {
    const big = await served.negotiatedClient();
    const other = await served.negotiatedClient();
    await big.send(`{"execute":"query-status","id":"${'a'.repeat(2 * 1024 * 1024)}"}\n`).catch(() => undefined);
    await big.waitForClose();
    const entry = await served.logger.waitFor('oversized message');
    assert.is(entry.fields.limit, 1024 * 1024);
    await other.send('{"execute":"query-status","id":"still"}\n');
    await other.waitForLine((line) => line.endsWith('"id": "still"}'));
    await other.close();
  } finally {
    await served.stop();
  }
});

test('a reply that is not JSON (QEMU prints an infinite double as inf) reaches its client as written; the next is its own', async () => {
  const peer = await startFakePeer();
  peer.autoRespond({});
  peer.expect('qom-get').send('{"return": inf}\r\n').expect('query-status').reply({ return: { status: 'running' } });
  const served = await serveUpstream(peer.path, { name: 'vm' }); // named: no query-name upstream before the script
  try {
    const client = await served.negotiatedClient();
    await client.send('{"execute":"qom-get","arguments":{"path":"/machine","property":"x"},"id":1}\n{"execute":"query-status","id":2}\n');
    assert.equal((await client.waitForLines(4)).slice(2), ['{"return": inf, "id": 1}', '{"return": {"status": "running"}, "id": 2}']);
    await client.close();
    await peer.done();
  } finally {
    await served.stop();
    await peer.close();
  }
});

test.run();
