/**
 * qmpx's answers to pass-through input against what the real QEMU answers
 * to the same bytes on a raw socket. Inputs QEMU refuses before dispatch
 * are answered by qmpx locally; everything else goes through qmpx to QEMU.
 * Either way the caller must get the text QEMU gives a raw client.
 *
 * Ids in these inputs are written as QEMU re-serialises them (`[1, 2]`, not
 * `[1,2]`), since QEMU echoes ids re-serialised and qmpx byte for byte.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { connect, silentLogger, type Monitor } from '../../lib/index.js';
import { monitorCommand } from '../../lib/passthrough/index.js';
import { qdictOrder, tdbHash } from '../../lib/qemu-json/qdict-order.js';
import { rawQmp, startQemu, type QemuInstance, type RawClient } from '../helpers/qemu.js';

/** A negotiated raw QMP connection that collects the replies to one input at a time. */
class RawSession {
  private consumed = 2;
  private markers = 0;

  private constructor(readonly raw: RawClient) {}

  static async open(path: string, oob: boolean): Promise<RawSession> {
    const raw = await rawQmp(path);
    await raw.waitForLines(1);
    await raw.send(oob ? '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}' : '{"execute":"qmp_capabilities"}');
    const [, reply] = await raw.waitForLines(2);
    assert.is(reply, '{"return": {}}');
    return new RawSession(raw);
  }

  /** Every line QEMU sends in answer to `input`, up to a marker command's reply. */
  async replies(input: string): Promise<string[]> {
    const markerId = `marker-${++this.markers}`;
    await this.raw.send(`${input}\n{"execute":"query-name","id":"${markerId}"}\n`);
    const markerLine = await this.raw.waitForLine((line) => line.endsWith(`"id": "${markerId}"}`));
    const lines = this.raw.lines();
    const end = lines.indexOf(markerLine, this.consumed);
    const answer = lines.slice(this.consumed, end);
    this.consumed = end + 1;
    return answer;
  }
}

interface Context {
  qemu: QemuInstance;
  withOob: Monitor;
  withoutOob: Monitor;
  rawWithOob: RawSession;
  rawWithoutOob: RawSession;
}

const test = suite<Context>("pass-through input: qmpx's answer equals the real QEMU's");

test.before(async (context) => {
  context.qemu = await startQemu({ extraQmpSockets: 4 });
  const [plainPath, rawOobPath, rawPlainPath] = context.qemu.extraQmpPaths;
  context.withOob = await connect(context.qemu.qmpPath, { logger: silentLogger });
  context.withoutOob = await connect(plainPath!, { oob: false, logger: silentLogger });
  context.rawWithOob = await RawSession.open(rawOobPath!, true);
  context.rawWithoutOob = await RawSession.open(rawPlainPath!, false);
});

test.after(async (context) => {
  await context.withOob?.close();
  await context.withoutOob?.close();
  await context.rawWithOob?.raw.close();
  await context.rawWithoutOob?.raw.close();
  await context.qemu?.stop();
});

async function assertSameAnswer(context: Context, input: string, oob: boolean): Promise<void> {
  const monitor = oob ? context.withOob : context.withoutOob;
  const raw = oob ? context.rawWithOob : context.rawWithoutOob;
  const qemuSays = await raw.replies(input);
  assert.is(qemuSays.length, 1, `QEMU gives one reply to ${input}: ${JSON.stringify(qemuSays)}`);
  assert.is(await monitorCommand(monitor, input), qemuSays[0], `${oob ? 'with' : 'without'} OOB: ${input}`);
}

const FIXED_INPUTS = [
  '[1,2]',
  '42',
  '"hello"',
  'true',
  'null',
  '{}',
  '{"id":5}',
  '{"arguments":{}}',
  '{"execute":"query-status","arguments":null}',
  '{"execute":"query-status","arguments":[]}',
  '{"execute":42}',
  '{"execute":null,"id":1}',
  '{"execute":"query-status","exec-oob":"query-status"}',
  '{"exec-oob":"query-status","execute":"query-status"}',
  '{"exec-oob":"query-status"}',
  '{"exec-oob":"query-status","id":3}',
  '{"exec-oob":42}',
  '{"execute":"query-status","exec-oob":42}',
  '{"execute":"query-status","id":8,"foo":1}',
  '{"execute":"query-status","control":{"run-oob":true}}',
  '{"foo":1,"bar":2,"arguments":3}',
  '{"id":1,"execute":42,"arguments":null}',
  '{"execute":"query-status","execute":"query-status"}',
  '{"execute":"query-status","arguments":{"a":1,"a":1}}',
  '{"execute":"query-status","id":{"a":1,"a":1}}',
  '{"execute":"query-status","arguments":{"s":"\\ud800"}}',
  '{"execute":"query-status","arguments":{"s":"\\uDBFF\\uDFFE"}}',
  '{"execute":"query-status","arguments":{"s":"\\ud800\\u0041"}}',
  '{"execute":"query-status","arguments":{"s":"\uffff"}}',
  '{"execute":"query-status","arguments":{"s":"\ufdd0"}}',
  '{"a":1,"a":"\\ud800"}',
  '{"a":1,"a":2,"b":"\\ud800"}',
  '{"execute":"query-status","f\u00f6\u{1f600}\u007f":1}',
  '{"execute":"query-status","a\\u0000b":1}',
  '{"execute":"query-status","arguments":{"\u00e9\u{1f600}":1}}',
  '{"execute":"query-status","\\u0069d":7}',
  '{"execute":"query-status","id":"x","arguments":{}}',
  '{"execute":"no-such-command","id":[1, {"b": 2}]}',
  '{"execute":"qmp_capabilities"}',
  '{"execute":"qmp_capabilities","id":2}',
  '{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}',
  '{"execute":"human-monitor-command","arguments":{"command-line":"info status"},"id":null}',
  '{"execute":"human-monitor-command","arguments":{"command-line":7}}',
];

test('every refusal and reply in the table, with and without OOB negotiated', async (context) => {
  for (const input of FIXED_INPUTS) {
    await assertSameAnswer(context, input, true);
    await assertSameAnswer(context, input, false);
  }
});

test("QEMU's member check order is its hash order, not the order written", () => {
  const order = (keys: string[]): string[] => qdictOrder(keys.map((key) => ({ key }))).map(({ key }) => key);
  assert.equal(order(['foo', 'bar', 'arguments']), ['bar', 'arguments', 'foo']);
  assert.equal(order(['execute', 'exec-oob']), ['exec-oob', 'execute']);
  // Replies: `return` before `id` before `error`, which is where QEMU prints the id.
  assert.equal(order(['id', 'return']), ['return', 'id']);
  assert.equal(order(['error', 'id']), ['id', 'error']);
  assert.is(tdbHash('execute') % 512, 299);
});

const KEY = fc.oneof(
  fc.constantFrom('execute', 'exec-oob', 'arguments', 'id', 'control', 'foo', 'bar', 'x', '\u00e9\u{1f600}', 'a\u0000b'),
  fc.string({ minLength: 1, maxLength: 6 }),
);
const VALUE = fc.oneof(
  fc.constantFrom(
    '"query-status"',
    '"query-name"',
    '"no-such-command"',
    '"\\ud800"',
    '"\ufdd0"',
    '42',
    'null',
    'true',
    '[]',
    '[1, 2]',
    '{}',
    '{"foo": 1}',
    '{"a":1,"a":1}',
    '"s"',
  ),
  fc.string({ maxLength: 6 }).map((text) => JSON.stringify(`x-nope-${text}`)),
);
/** Objects of 0–5 members (keys may repeat), and some inputs that are not objects. */
const INPUT = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.tuple(KEY, VALUE), { maxLength: 5 }).map((members) => `{${members.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) },
);

test('property: random member sets get the same answer from qmpx as from QEMU', async (context) => {
  await fc.assert(
    fc.asyncProperty(INPUT, fc.boolean(), async (input, oob) => {
      await assertSameAnswer(context, input, oob);
    }),
    { numRuns: 400 },
  );
});

test('nesting beyond the limit: qmpx answers with the first of the many errors QEMU gives', async (context) => {
  const deep = '['.repeat(1025) + ']'.repeat(1025);
  const inArguments = `{"execute":"query-status","arguments":{"a":${'['.repeat(1023)}${']'.repeat(1023)}}}`;
  for (const input of [deep, inArguments]) {
    // QEMU answers with many id-less errors: a raw connection of its own, closed after the first.
    const raw = await RawSession.open(context.qemu.extraQmpPaths[3]!, false);
    try {
      await raw.raw.send(`${input}\n`);
      const [, , first, second] = await raw.raw.waitForLines(4);
      assert.is(first, '{"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}}');
      assert.ok(second!.startsWith('{"error"'), 'QEMU goes on with more errors: why qmpx never sends this');
      assert.is(await monitorCommand(context.withOob, input), first);
    } finally {
      await raw.raw.close();
    }
  }
});

test.run();
