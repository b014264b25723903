/**
 * The guest-agent client against a scripted fake agent, for what qemu-ga
 * will not do on demand: stale output in the pipe, late replies, commands
 * that stay silent on success, replies nobody asked for.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import {
  connect,
  ConnectionClosedError,
  GreetingTimeoutError,
  ProtocolError,
  QmpError,
  silentLogger,
  TimeoutError,
} from '../../lib/index.js';
import type { QgaMonitor } from '../../lib/qga/client.js';
import { startFakePeer, type FakePeer, type ReceivedLine } from '../helpers/fake-peer.js';
import { rejectionOf } from '../helpers/rejection.js';

/** The agent's answer to guest-sync-delimited: 0xFF, then the id back (docs/monitor-facts.md §4). */
function syncReply(line: ReceivedLine): Buffer {
  const id = (line.arguments as { id: number }).id;
  return Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${id}}\n`)]);
}

/** The client's resync: a 0xFF flush byte, then guest-sync-delimited with a fresh random id. */
const SYNC = {
  execute: 'guest-sync-delimited',
  where: (line: ReceivedLine) => line.bytes[0] === 0xff && Number.isSafeInteger((line.arguments as { id?: unknown }).id),
};

/** A fake agent scripted by `script` (the accept is implicit); the script must be used up. */
async function withAgentPeer(script: (peer: FakePeer) => void, body: (agent: QgaMonitor, peer: FakePeer) => Promise<void>): Promise<void> {
  const peer = await startFakePeer({ greeting: null, lineEnd: '\n' });
  try {
    script(peer);
    // The deadline turns a client that waits forever into a failure instead of a hang.
    const agent = (await connect(peer.path, { protocol: 'qga', logger: silentLogger, commandTimeoutMs: 10_000, greetingTimeoutMs: 10_000 })) as QgaMonitor;
    try {
      await body(agent, peer);
    } finally {
      await agent.close();
    }
    assert.is(agent.pendingCount, 0, 'nothing left pending');
    await peer.done();
  } finally {
    await peer.close();
  }
}

test('resync skips stale replies, errors, junk, a wrong-id sync reply and a cut-off object', async () => {
  let protocolErrors = 0;
  await withAgentPeer(
    (peer) =>
      peer
        .send('{"return": {}, "id": 41}\n')
        .send('not json\n')
        .expect(SYNC)
        .send('{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'\\uFFFD\'"}}\n')
        .send(Buffer.from('\xff{"return": 12}\n\xff{"return": {"cut": "off', 'latin1'))
        .reply(syncReply)
        .expect('guest-ping')
        .reply({ return: {} }),
    async (agent) => {
      const subscription = agent.protocolErrors$.subscribe(() => protocolErrors++);
      assert.equal(await agent.execute('guest-ping'), {});
      subscription.unsubscribe();
    },
  );
  assert.is(protocolErrors, 0, 'stale output is skipped, not reported');
});

test('without its sentinel the sync reply does not count: the connect times out', async () => {
  const peer = await startFakePeer({ greeting: null, lineEnd: '\n' });
  try {
    peer.expect(SYNC).reply((line) => ({ return: (line.arguments as { id: number }).id })).expectClose();
    const error = await rejectionOf(connect(peer.path, { protocol: 'qga', greetingTimeoutMs: 300, logger: silentLogger }));
    assert.instance(error, GreetingTimeoutError);
    assert.match(error.message, /the guest agent may not be running in the guest/);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test('after a timeout the next command is preceded by a resync, which skips the late reply', async () => {
  let firstTimedOut!: Promise<Error>;
  let protocolErrors = 0;
  await withAgentPeer(
    (peer) =>
      peer
        .expect(SYNC)
        .reply(syncReply)
        .expect('guest-info')
        .waitUntil(async () => assert.instance(await firstTimedOut, TimeoutError))
        .reply({ return: { version: '7.2.22' } })
        .expect(SYNC)
        .reply(syncReply)
        .expect('guest-ping')
        .reply({ return: {} }),
    async (agent) => {
      const subscription = agent.protocolErrors$.subscribe(() => protocolErrors++);
      firstTimedOut = rejectionOf(agent.execute('guest-info', undefined, { timeoutMs: 50 }));
      await firstTimedOut;
      assert.equal(await agent.execute('guest-ping'), {});
      subscription.unsubscribe();
    },
  );
  assert.is(protocolErrors, 0);
});

test('guest-shutdown: the ping that follows answers first, so it succeeded silently', async () => {
  await withAgentPeer(
    (peer) => peer.expect(SYNC).reply(syncReply).expect('guest-shutdown').expect('guest-ping').reply({ return: {} }).expect('guest-ping').reply({ return: {} }),
    async (agent) => {
      assert.equal(await agent.execute('guest-shutdown', { mode: 'powerdown' }), {});
      assert.equal(await agent.execute('guest-ping'), {}, 'the next command is matched normally');
    },
  );
});

test('guest-suspend-ram that fails: its error comes before the ping and rejects it', async () => {
  await withAgentPeer(
    (peer) =>
      peer
        .expect(SYNC)
        .reply(syncReply)
        .expect('guest-suspend-ram')
        .replyError('GenericError', 'suspend: not supported')
        .expect('guest-ping')
        .reply({ return: {} })
        .expect('guest-info')
        .reply({ return: { version: '7.2.22' } }),
    async (agent) => {
      const error = await rejectionOf(agent.execute('guest-suspend-ram'));
      assert.instance(error, QmpError);
      assert.is((error as QmpError).desc, 'suspend: not supported');
      assert.equal(await agent.execute('guest-info'), { version: '7.2.22' }, 'the ping reply was consumed, not handed on');
    },
  );
});

test('guest-suspend-disk answered by the agent going away: it succeeded', async () => {
  await withAgentPeer(
    (peer) => peer.expect(SYNC).reply(syncReply).expect('guest-suspend-disk').expect('guest-ping').disconnect(),
    async (agent) => {
      const suspend = agent.execute('guest-suspend-disk');
      const queued = rejectionOf(agent.execute('guest-info'));
      assert.equal(await suspend, {});
      assert.instance(await queued, ConnectionClosedError);
    },
  );
});

test('guest-shutdown answered by the agent going away: it succeeded, and the close is expected', async () => {
  await withAgentPeer(
    (peer) => peer.expect(SYNC).reply(syncReply).expect('guest-shutdown').expect('guest-ping').disconnect(),
    async (agent) => {
      assert.equal(await agent.execute('guest-shutdown'), {});
      assert.equal(await agent.closed, { expected: true });
    },
  );
});

test('guest-suspend-ram that fails, then the agent goes away: the close is a loss', async () => {
  await withAgentPeer(
    (peer) =>
      peer
        .expect(SYNC)
        .reply(syncReply)
        .expect('guest-suspend-ram')
        .replyError('GenericError', 'suspend not supported')
        .expect('guest-ping')
        .reply({ return: {} })
        .disconnect(),
    async (agent) => {
      assert.instance(await rejectionOf(agent.execute('guest-suspend-ram')), QmpError);
      assert.equal(await agent.closed, { expected: false });
    },
  );
});

test('replies that match no command are reported on protocolErrors$ and settle nothing', async () => {
  let listening!: () => void;
  const subscribed = new Promise<void>((resolve) => (listening = resolve));
  await withAgentPeer(
    (peer) =>
      peer
        .expect(SYNC)
        .reply(syncReply)
        .waitUntil(subscribed)
        .send('{"return": {}, "id": 999}\n{"error": {"class": "GenericError", "desc": "no id"}}\n')
        .expect('guest-ping')
        .reply({ return: {} }),
    async (agent) => {
      const errors = firstValueFrom(agent.protocolErrors$.pipe(take(2), toArray(), timeout(10_000)));
      listening();
      assert.equal((await errors).map((error) => error.message), ['reply with an id that matches no command', 'reply without an id']);
      assert.ok((await errors).every((error) => error instanceof ProtocolError && error.evidence?.startsWith('{')));
      assert.equal(await agent.execute('guest-ping'), {});
    },
  );
});

test('connection lost with a command on the wire and one queued: both rejected, close unexpected', async () => {
  await withAgentPeer(
    (peer) => peer.expect(SYNC).reply(syncReply).expect('guest-info').disconnect(),
    async (agent) => {
      const written = agent.execute('guest-info');
      const queued = agent.execute('guest-ping');
      assert.instance(await rejectionOf(written), ConnectionClosedError);
      assert.instance(await rejectionOf(queued), ConnectionClosedError);
      assert.equal(await agent.closed, { expected: false });
    },
  );
});

test.run();
