/**
 * Fuzz: the proxy's downstream HMP session (lib/proxy/hmp-session.ts) over
 * a real UNIX socket, in front of an in-memory QMP upstream that answers
 * every human-monitor-command in order with a numbered output.
 *
 * The client types generated and mutated lines with any line ends, in
 * random writes, and ends its side. Whatever it typed:
 * - the upstream receives exactly the non-blank lines, as the client typed
 *   them (cut by `\r`, `\n` or `\r\n`, decoded as UTF-8), in order;
 * - the client gets the banner and one prompt per line, blank or not, each
 *   output before its prompt, each upstream output exactly once and in
 *   order; then the connection closes and nothing stays pending.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { HMP_MAX_LINE_BYTES } from '../../lib/hmp/command-line.js';
import { HMP_PROMPT } from '../../lib/hmp/reader.js';
import { policyNamed } from '../../lib/proxy/policy.js';
import { hmpInput } from './grammar.js';
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

/** The lines a text monitor reads from `input`: `\r`, `\n` and `\r\n` each end one; an unfinished last line is not run. */
function typedLines(input: Buffer): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i]!;
    if (byte !== 0x0d && byte !== 0x0a) continue;
    if (byte === 0x0a && i > 0 && input[i - 1] === 0x0d && start === i) {
      start = i + 1;
      continue;
    }
    lines.push(input.subarray(start, Math.min(i, start + HMP_MAX_LINE_BYTES)).toString('utf8'));
    start = i + 1;
  }
  return lines;
}

const INPUTS = inputsPerTarget(3000);

test('fuzz: the HMP session runs every typed line once, in order, with one prompt per line', async () => {
  const cases = fc.tuple(hmpInput, cutPoints, fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 8 }));
  await fuzzTarget(
    'hmp-session',
    INPUTS,
    50,
    asyncRound(cases, async ([input, cuts, maxPendingCommands, maxInFlight]) => {
      const { monitor, qemu } = await scriptedMonitor({
        maxInFlight,
        reply: (command, seq) => returnText(command, JSON.stringify(`out${seq}\r\n`)),
      });
      const { session, output } = await harness.run({
        kind: 'hmp',
        link: linkFor(monitor),
        policy: policyNamed('full'),
        maxPendingCommands,
        input,
        writes: chunked(input, cuts),
      });
      const lines = typedLines(input);
      const run = lines.filter((line) => line.trim() !== '');
      const forwarded = qemu.received.slice(1);
      assert.equal(
        forwarded.map((command) => [command.execute, (command.arguments as { 'command-line': string })['command-line']]),
        run.map((line) => ['human-monitor-command', line]),
        `lines run upstream for ${JSON.stringify(input.toString('latin1'))}`,
      );

      const text = output.toString('latin1');
      assert.ok(text.startsWith('QEMU 7.2.22 monitor'), 'banner first');
      const answers = text.slice(text.indexOf('\r\n') + 2).split(HMP_PROMPT);
      assert.is(answers.shift(), '', 'a prompt right after the banner');
      assert.is(answers.pop(), '', 'output ends with a prompt');
      assert.is(answers.length, lines.length, 'one prompt per line');
      const expected: string[] = [];
      let seq = 2;
      for (const line of lines) expected.push(line.trim() === '' ? '' : `out${seq++}\r\n`);
      assert.equal(answers, expected, 'each output once, in order');
      assert.is(session.pendingCount, 0);
      assert.is(monitor.pendingCount, 0);
      await monitor.close();
      return Math.max(1, lines.length);
    }),
    { quiesce: sessionsReleased },
  );
});

test.run();
