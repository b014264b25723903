/**
 * Fuzz: the proxy's downstream QMP session (lib/proxy/qmp-session.ts with
 * the QEMU lexer, value parser and request checks), over a real UNIX
 * socket, in front of an in-memory upstream that answers every command it
 * receives in order.
 *
 * A client negotiates (with or without oob) and sends captured, generated
 * and mutated messages in random writes, then ends its side. Whatever it
 * sent:
 * - it gets exactly one reply line per message QEMU's lexer would cut from
 *   its input (counted by a separate QemuJsonStreamer over the whole input),
 *   after the greeting, and then the connection closes;
 * - every command the upstream saw is answered downstream exactly once:
 *   the upstream's sequence numbers come back each once, in-band ones in
 *   increasing order;
 * - tagged commands mixed in (well-formed, in-band or exec-oob, each with
 *   its own id) are answered at most once each, with their own id, and
 *   exactly as many as reached the upstream: no reply goes to another
 *   command;
 * - nothing reaches the upstream that the socket's policy refuses, and no
 *   in-band command carries an id upstream;
 * - nothing stays pending, in the session or in the upstream monitor.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { QemuJsonStreamer } from '../../lib/qemu-json/streamer.js';
import { policyNamed } from '../../lib/proxy/policy.js';
import { clientMessage } from './grammar.js';
import { linkFor, returnText, scriptedMonitor } from './scripted-qemu.js';
import { SessionHarness, sessionsReleased } from './session-harness.js';
import { asyncRound, chunked, cutPoints, fuzzTarget, inputsPerTarget } from './support.js';

let harness: SessionHarness;

test.before(async () => {
  harness = await SessionHarness.start();
});
test.after(async () => {
  await harness.close();
});

/** How many messages QEMU's lexer and streamer cut from `input` (each gets one reply). */
function messagesIn(input: Buffer): number {
  let count = 0;
  const streamer = new QemuJsonStreamer({
    group: () => count++,
    error: () => count++,
    oversize: () => {
      throw new Error('fuzz input over the message size limit');
    },
  });
  streamer.push(input);
  return count;
}

/** A well-formed command whose reply can be told apart: the upstream echoes its tag, the client gave it the id `t<tag>`. */
function taggedCommand(key: 'execute' | 'exec-oob', tag: number): Buffer {
  return Buffer.from(`{"${key}":"query-tagged","arguments":{"tag":${tag}},"id":"t${tag}"}\n`);
}

const NEGOTIATIONS = ['{"execute":"qmp_capabilities"}\n', '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}\n', ''];

const INPUTS = inputsPerTarget(3000);

test('fuzz: the QMP session answers every message once, in order, and forwards only what the policy allows', async () => {
  const cases = fc.tuple(
    fc.constantFrom(...NEGOTIATIONS),
    fc.array(fc.oneof({ weight: 3, arbitrary: clientMessage }, { weight: 1, arbitrary: fc.constantFrom('execute' as const, 'exec-oob' as const) }), {
      minLength: 1,
      maxLength: 24,
    }),
    cutPoints,
    fc.constantFrom('full' as const, 'read-only' as const),
    fc.integer({ min: 1, max: 32 }),
    fc.integer({ min: 1, max: 8 }),
  );
  await fuzzTarget(
    'qmp-session',
    INPUTS,
    50,
    asyncRound(cases, async ([negotiation, entries, cuts, policyName, maxPendingCommands, maxInFlight]) => {
      const { monitor, qemu } = await scriptedMonitor({
        maxInFlight,
        reply: (command, seq) => {
          const tag = (command.arguments as { tag?: unknown } | undefined)?.tag;
          const tagged = typeof tag === 'number' ? `, "tag": ${tag}` : '';
          return returnText(command, `{"${command.oob ? 'upstream-oob-seq' : 'upstream-seq'}": ${seq}${tagged}}`);
        },
      });
      const messages = entries.map((entry, tag) => (Buffer.isBuffer(entry) ? entry : taggedCommand(entry, tag)));
      const input = Buffer.concat([Buffer.from(negotiation), ...messages]);
      const policy = policyNamed(policyName);
      const { session, output } = await harness.run({
        kind: 'qmp',
        link: linkFor(monitor),
        policy,
        maxPendingCommands,
        input,
        writes: chunked(input, cuts),
      });

      const text = output.toString('latin1');
      const lines = text.split('\r\n');
      assert.is(lines.pop(), '', `output ends in the middle of a line: ${JSON.stringify(text.slice(-80))}`);
      assert.ok(lines[0]?.startsWith('{"QMP": '), 'greeting first');
      assert.is(lines.length - 1, messagesIn(input), `replies for ${JSON.stringify(input.toString('latin1'))}`);

      const forwarded = qemu.received.slice(1);
      const seen = new Map<number, number>();
      const inBandSeqs: number[] = [];
      for (const line of lines.slice(1)) {
        const match = /"upstream-(oob-)?seq": (\d+)/.exec(line);
        if (match === null) continue;
        const seq = Number(match[2]);
        seen.set(seq, (seen.get(seq) ?? 0) + 1);
        if (match[1] === undefined) inBandSeqs.push(seq);
      }
      for (let seq = 2; seq <= qemu.received.length; seq++) assert.is(seen.get(seq), 1, `upstream reply ${seq} relayed ${seen.get(seq) ?? 0} times`);
      assert.is(seen.size, forwarded.length);
      assert.equal(inBandSeqs, [...inBandSeqs].sort((a, b) => a - b), 'in-band replies out of order');
      const tagsAnswered = new Set<number>();
      for (const line of lines.slice(1)) {
        const match = /"tag": (\d+)/.exec(line);
        if (match === null) continue;
        const tag = Number(match[1]);
        assert.not.ok(tagsAnswered.has(tag), `tagged command ${tag} answered twice`);
        tagsAnswered.add(tag);
        const reply = JSON.parse(line) as { return: { tag: number }; id: unknown };
        assert.is(reply.id, `t${tag}`, `reply to tagged command ${tag} carries another id: ${line}`);
      }
      assert.is(tagsAnswered.size, forwarded.filter((command) => typeof (command.arguments as { tag?: unknown } | undefined)?.tag === 'number').length);
      for (const command of forwarded) {
        assert.ok(policy.allows(command.execute ?? ''), `${policyName} socket forwarded ${command.line}`);
        if (!command.oob) assert.not.ok(command.hasId, `in-band command forwarded with an id: ${command.line}`);
      }
      assert.is(session.pendingCount, 0);
      assert.is(monitor.pendingCount, 0);
      await monitor.close();
      return messages.length;
    }),
    { quiesce: sessionsReleased },
  );
});

test.run();
