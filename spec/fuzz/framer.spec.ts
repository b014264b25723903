/**
 * Fuzz: lib/qmp/framer.ts. QEMU's messages (captured and generated, compact
 * and pretty, mutated) are framed whole, byte by byte and in random chunks;
 * the three must report the same objects, garbage, sentinels and overflow.
 * Every object it reports starts with `{` and ends with `}` or `]`, and a parsed
 * value it hands over is JSON.parse of the text it hands over.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { JsonObjectFramer } from '../../lib/qmp/framer.js';
import { RETURN_PREFIX } from '../../lib/qmp/wire.js';
import { serverStream } from './grammar.js';
import { chunked, cutPoints, fuzzTarget, inputsPerTarget, roundParameters } from './support.js';

type FramerEvent = ['message', string] | ['garbage', string] | ['sentinel'] | ['oversize'];

/** What a framer reports for `chunks`, in order, including what end() discards. */
function frame(chunks: readonly Uint8Array[], maxMessageBytes: number, takesUnparsed: boolean): FramerEvent[] {
  const events: FramerEvent[] = [];
  const framer = new JsonObjectFramer(
    {
      message: (text, parsed) => {
        // Braces and brackets are counted together, so a mismatched `]` may end an object: its text then fails to parse.
        assert.ok(text.startsWith('{') && (text.endsWith('}') || text.endsWith(']')), `not an object: ${JSON.stringify(text.slice(0, 80))}`);
        if (parsed !== undefined) assert.equal(parsed, JSON.parse(text), 'the parsed value is not the text');
        events.push(['message', text]);
      },
      garbage: (text) => {
        // Garbage is reported in pieces; what matters is the bytes, so adjacent pieces are joined.
        const last = events.at(-1);
        if (last?.[0] === 'garbage') last[1] += text;
        else events.push(['garbage', text]);
      },
      sentinel: () => events.push(['sentinel']),
      oversize: () => events.push(['oversize']),
      takesUnparsed: () => takesUnparsed,
    },
    { maxMessageBytes, unparsedPrefix: RETURN_PREFIX },
  );
  for (const chunk of chunks) framer.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  const partial = framer.end();
  if (partial !== '') events.push(['garbage', `partial:${partial}`]);
  return events;
}

const INPUTS = inputsPerTarget(3000);

test('fuzz: the QMP framer gives the same result whole, byte by byte and in any chunks', async () => {
  const property = fc.property(
    serverStream,
    cutPoints,
    fc.constantFrom(16 * 1024 * 1024, 1024, 64),
    fc.boolean(),
    (input, cuts, maxMessageBytes, takesUnparsed) => {
      const whole = frame([input], maxMessageBytes, takesUnparsed);
      const bytes = Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
      assert.equal(frame(bytes, maxMessageBytes, takesUnparsed), whole, 'byte by byte');
      assert.equal(frame(chunked(input, cuts), maxMessageBytes, takesUnparsed), whole, 'in chunks');
    },
  );
  await fuzzTarget('qmp-framer', INPUTS, 500, (seed, runs) => {
    fc.assert(property, roundParameters(seed, runs));
    return runs;
  });
});

test.run();
