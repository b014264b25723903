/**
 * Fuzz: how the proxy reads a client's QMP input (lib/qemu-json/streamer.ts,
 * parser.ts, wire.ts, lib/proxy/qmp-request.ts), without sockets, at a
 * volume the session target cannot reach.
 *
 * - The streamer cuts the same token groups and reports the same errors
 *   whole, byte by byte and in chunks.
 * - Parsing a group never throws: a value or QEMU's error text.
 * - What is forwarded upstream is JSON, and a fixed point: the wire text
 *   of a value, lexed and parsed again, has the same wire text.
 * - The fast path for plain commands agrees with the full path wherever it
 *   answers.
 * - Judging a value never throws, and a command it accepts has JSON
 *   arguments (an object) or none.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { parseTokenGroup } from '../../lib/qemu-json/parser.js';
import { QemuJsonStreamer } from '../../lib/qemu-json/streamer.js';
import { tokenTexts, type TokenGroup, type TokenType } from '../../lib/qemu-json/tokens.js';
import { toWireJson } from '../../lib/qemu-json/wire.js';
import { checkRequest, plainTokenCommand } from '../../lib/proxy/qmp-request.js';
import { clientMessage } from './grammar.js';
import { chunked, cutPoints, fuzzTarget, inputsPerTarget, syncRound } from './support.js';

/** A token group copied out of the streamer (its storage is reused), comparable with deepEqual. */
interface CopiedGroup {
  types: TokenType[];
  texts: string[];
}

type Item = ['group', CopiedGroup] | ['error', string] | ['oversize'];

function asTokenGroup(group: CopiedGroup): TokenGroup {
  return { types: group.types, text: (index) => group.texts[index]! };
}

function lex(chunks: readonly Uint8Array[], maxMessageBytes?: number): Item[] {
  const items: Item[] = [];
  const streamer = new QemuJsonStreamer(
    {
      group: (tokens) => items.push(['group', { types: Array.from(tokens.types), texts: tokenTexts(tokens) }]),
      error: (desc) => items.push(['error', desc]),
      oversize: () => items.push(['oversize']),
    },
    maxMessageBytes,
  );
  for (const chunk of chunks) streamer.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return items;
}

/**
 * The one group the wire text lexes to (it must be exactly one), sent as
 * the upstream link sends it (UTF-8); a space ends a bare scalar, as a
 * keyword or number needs a byte after it.
 */
function onlyGroup(text: string): TokenGroup {
  const items = lex([Buffer.from(`${text} `, 'utf8')]);
  assert.is(items.length, 1, `wire text ${JSON.stringify(text)} lexed to ${items.length} messages`);
  assert.is(items[0]![0], 'group');
  return asTokenGroup(items[0]![1] as CopiedGroup);
}

function checkGroup(group: TokenGroup): void {
  const parsed = parseTokenGroup(group);
  if (!parsed.ok) {
    assert.ok(parsed.desc.startsWith('JSON parse error, '), parsed.desc);
    assert.is(plainTokenCommand(group), undefined, 'the fast path accepted what the parser refuses');
    return;
  }
  const wire = toWireJson(parsed.value);
  JSON.parse(wire);
  const again = parseTokenGroup(onlyGroup(wire));
  assert.ok(again.ok, `wire text ${wire} does not parse again`);
  if (again.ok) assert.is(toWireJson(again.value), wire, 'wire text is not a fixed point');
  for (const allowOob of [false, true]) {
    const checked = checkRequest(parsed.value, allowOob);
    if (!checked.ok) continue;
    const { argumentsJson } = checked.command;
    if (argumentsJson !== undefined) {
      const args: unknown = JSON.parse(argumentsJson);
      assert.ok(typeof args === 'object' && args !== null && !Array.isArray(args), `arguments ${argumentsJson} are not an object`);
    }
  }
  const plain = plainTokenCommand(group);
  if (plain !== undefined) {
    const full = checkRequest(parsed.value, false);
    assert.ok(full.ok, 'the fast path accepted what the full path refuses');
    if (full.ok) assert.equal({ ...plain, arguments: undefined }, { ...full.command, arguments: undefined }, 'fast and full paths disagree');
  }
}

const INPUTS = inputsPerTarget(5000);

test('fuzz: the QMP input lexer, parser and request checks agree with themselves whole, byte by byte and in chunks', async () => {
  const cases = fc.tuple(fc.array(clientMessage, { minLength: 1, maxLength: 8 }), cutPoints, fc.constantFrom(undefined, 64, 4096));
  await fuzzTarget(
    'qmp-input lexer',
    INPUTS,
    500,
    syncRound(cases, ([messages, cuts, maxMessageBytes]) => {
      const input = Buffer.concat(messages);
      const whole = lex([input], maxMessageBytes);
      assert.equal(lex(Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1)), maxMessageBytes), whole, 'byte by byte');
      assert.equal(lex(chunked(input, cuts), maxMessageBytes), whole, 'in chunks');
      for (const item of whole) if (item[0] === 'group') checkGroup(asTokenGroup(item[1]));
      return messages.length;
    }),
  );
});

test.run();
