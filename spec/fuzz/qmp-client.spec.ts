/**
 * Fuzz: lib/qmp/client.ts driven over an in-memory connection whose peer
 * answers every command in order.
 *
 * Ordered: between the replies the peer writes events, bytes outside any
 * object, 0xFF and objects that are not replies, all in random chunks.
 * Every command (promise, relay callback, exec-oob) settles exactly once
 * with its own reply, in-band ones in the order sent; every event is
 * emitted; nothing stays pending.
 *
 * Chaos: replies and noise are mutated (captured and generated messages,
 * byte edits), and the peer ends the connection at a random point or once
 * the client has nothing more to say. Every command still settles exactly
 * once, by a reply or an error, nothing stays pending, and the connection
 * reports itself closed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ProtocolError } from '../../lib/errors.js';
import type { QmpMonitor, QmpReply } from '../../lib/qmp/client.js';
import type { RequestOutcome } from '../../lib/request.js';
import { JSON_TOKENS, qemuJson, serverStream } from './grammar.js';
import { returnText, scriptedMonitor, type ReceivedCommand } from './scripted-qemu.js';
import { IN_MEMORY_CASE_DEADLINE_MS, asyncRound, chunked, cutPoints, fuzzTarget, inputsPerTarget, mutate, mutation, withDeadline } from './support.js';

type How = 'send' | 'relay' | 'oob';

/** Noise that no QMP client may take for a reply: events, bytes outside objects, 0xFF, objects of unknown members. */
const harmlessNoise = fc.oneof(
  fc.record({ event: fc.constantFrom('STOP', 'RESUME', 'X'), seconds: fc.nat(), microseconds: fc.nat({ max: 999_999 }) }).map(({ event, seconds, microseconds }) => ({
    bytes: Buffer.from(`${qemuJson({ event, timestamp: { seconds, microseconds } })}\r\n`),
    events: 1,
  })),
  fc.uint8Array({ minLength: 1, maxLength: 12 }).map((bytes) => ({ bytes: Buffer.from(bytes.map((byte) => (byte === 0x7b ? 0x78 : byte))), events: 0 })),
  fc
    .dictionary(
      fc.string({ maxLength: 6 }).filter((key) => !['return', 'error', 'event', 'QMP'].includes(key)),
      fc.jsonValue({ maxDepth: 2 }),
      { minKeys: 1, maxKeys: 3 },
    )
    .map((value) => ({ bytes: Buffer.from(`${qemuJson(value)}\r\n`), events: 0 })),
);

const commandsArbitrary = fc.array(fc.constantFrom<How>('send', 'relay', 'relay', 'oob'), { minLength: 1, maxLength: 16 });

/** Sends each command its way; resolves with every settlement seen, once all have settled at least once. */
function sendAll(monitor: QmpMonitor, hows: How[]): { settlements: Array<Array<RequestOutcome<QmpReply>>>; order: number[]; all: Promise<void> } {
  const settlements: Array<Array<RequestOutcome<QmpReply>>> = hows.map(() => []);
  const order: number[] = [];
  let remaining = hows.length;
  let allSettled!: () => void;
  const all = new Promise<void>((resolve) => (allSettled = resolve));
  const settle = (n: number, outcome: RequestOutcome<QmpReply>): void => {
    settlements[n]!.push(outcome);
    order.push(n);
    if (settlements[n]!.length === 1 && --remaining === 0) allSettled();
  };
  hows.forEach((how, n) => {
    const argumentsJson = `{"n":${n}}`;
    if (how === 'relay') {
      monitor.sendWithCallback('fuzz-command', argumentsJson, {}, (outcome) => settle(n, outcome));
    } else {
      monitor.send('fuzz-command', argumentsJson, { oob: how === 'oob' }).then(
        (reply) => settle(n, { ok: true, reply }),
        (error: Error) => settle(n, { ok: false, error }),
      );
    }
  });
  return { settlements, order, all };
}

function echoN(command: ReceivedCommand): string {
  return returnText(command, `{"n": ${(command.arguments as { n: number }).n}}`);
}

const INPUTS = inputsPerTarget(4000);

test('fuzz: the QMP client settles every command once, with its own reply, whatever comes between replies', async () => {
  const cases = fc.tuple(commandsArbitrary, fc.array(harmlessNoise, { maxLength: 16 }), cutPoints, fc.integer({ min: 1, max: 8 }));
  await fuzzTarget(
    'qmp-client ordered',
    INPUTS,
    100,
    asyncRound(cases, async ([hows, noise, cuts, maxInFlight]) => {
      let noiseIndex = 0;
      let eventsWritten = 0;
      const { monitor, qemu } = await scriptedMonitor({
        maxInFlight,
        reply: echoN,
        before: () => {
          const item = noise[noiseIndex++];
          if (item === undefined) return Buffer.alloc(0);
          eventsWritten += item.events;
          return item.bytes;
        },
        chunks: (bytes) => chunked(bytes, cuts),
      });
      let eventsSeen = 0;
      monitor.events$.subscribe(() => eventsSeen++);
      const { settlements, order, all } = sendAll(monitor, hows);
      await withDeadline(all, IN_MEMORY_CASE_DEADLINE_MS, 'every command settled');
      settlements.forEach((outcomes, n) => {
        assert.is(outcomes.length, 1, `command ${n} settled ${outcomes.length} times`);
        const outcome = outcomes[0]!;
        assert.ok(outcome.ok, `command ${n} failed: ${outcome.ok ? '' : outcome.error.message}`);
        if (outcome.ok) assert.equal((outcome.reply.message as { return?: unknown }).return, { n }, `command ${n} got another's reply`);
      });
      // A relay callback runs as the reply is read, a promise's handler a microtask later: each kind keeps the order on its own.
      for (const kind of ['send', 'relay'] as const) {
        const settledInOrder = order.filter((n) => hows[n] === kind);
        assert.equal(settledInOrder, [...settledInOrder].sort((a, b) => a - b), `in-band ${kind} replies out of order`);
      }
      assert.is(eventsSeen, eventsWritten);
      assert.is(monitor.pendingCount, 0);
      qemu.end();
      await withDeadline(monitor.closed, IN_MEMORY_CASE_DEADLINE_MS, 'close after the peer ended');
      assert.is(monitor.pendingCount, 0);
      return hows.length + noise.length;
    }),
  );
});

test('fuzz: the QMP client settles every command once when replies and noise are mangled and the peer leaves', async () => {
  const cases = fc.tuple(
    commandsArbitrary,
    fc.array(fc.oneof(serverStream, fc.constant(Buffer.alloc(0))), { maxLength: 16 }),
    fc.array(fc.array(mutation(JSON_TOKENS), { maxLength: 2 }), { maxLength: 16 }),
    cutPoints,
    fc.nat({ max: 20 }),
    fc.integer({ min: 1, max: 8 }),
  );
  await fuzzTarget(
    'qmp-client chaos',
    INPUTS,
    100,
    asyncRound(cases, async ([hows, noise, replyMutations, cuts, endAfterReplies, maxInFlight]) => {
      let replies = 0;
      let noiseIndex = 0;
      const protocolErrors: unknown[] = [];
      const { monitor, qemu } = await scriptedMonitor({
        maxInFlight,
        reply: (command, _seq, peer) => {
          // Ends the stream right after this reply's turn: the flush was scheduled first.
          if (++replies === endAfterReplies) setImmediate(() => peer.end());
          return mutate(Buffer.from(echoN(command)), replyMutations[replies % Math.max(1, replyMutations.length)] ?? []).toString('latin1');
        },
        before: () => noise[noiseIndex++] ?? Buffer.alloc(0),
        chunks: (bytes) => chunked(bytes, cuts),
        // Once the client is quiet (a mangled reply may have swallowed the rest), the peer leaves.
        idle: (peer) => {
          const receivedBefore = peer.received.length;
          setImmediate(() => {
            if (peer.received.length === receivedBefore) peer.end();
          });
        },
      });
      monitor.protocolErrors$.subscribe((error) => protocolErrors.push(error));
      monitor.events$.subscribe(() => undefined);
      const { settlements, all } = sendAll(monitor, hows);
      if (endAfterReplies === 0) qemu.end();
      await withDeadline(monitor.closed, IN_MEMORY_CASE_DEADLINE_MS, 'the connection closed');
      await withDeadline(all, IN_MEMORY_CASE_DEADLINE_MS, 'every command settled after the close');
      settlements.forEach((outcomes, n) => assert.is(outcomes.length, 1, `command ${n} settled ${outcomes.length} times`));
      assert.is(monitor.pendingCount, 0);
      for (const error of protocolErrors) assert.instance(error, ProtocolError);
      return hows.length + noise.length;
    }),
  );
});

test.run();
