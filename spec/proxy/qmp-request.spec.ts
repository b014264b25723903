/**
 * How the proxy reads a client's command off its tokens: the fast path for
 * plain commands agrees with the full parse and check wherever it answers.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseTokenGroup } from '../../lib/qemu-json/parser.js';
import { QemuJsonStreamer } from '../../lib/qemu-json/streamer.js';
import type { TokenGroup } from '../../lib/qemu-json/tokens.js';
import { checkRequest, plainTokenCommand } from '../../lib/proxy/qmp-request.js';

test('the token fast path for {"execute", "id"} gives what the full parse and check give, or declines (property)', () => {
  const keys = ['"execute"', '"execute"', "'execute'", '"id"', '"id"', '"arguments"', '"exec\\u0075te"', '"x"'];
  const values = ['"query-status"', '"query-status"', "'stop'", '"2"', '"a\\"b"', "'it\"s'", '"\xc3\xa9"', '1e3', '-0', '18446744073709551616', '1.5', 'true', 'null', 'nul', '{}', '[1]'];
  const groups = (text: string): TokenGroup[] => {
    const out: TokenGroup[] = [];
    new QemuJsonStreamer({ group: (group) => out.push(group), error: () => undefined, oversize: () => undefined }).push(text);
    return out;
  };
  let taken = 0;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...keys), fc.constantFrom(...values)), { minLength: 0, maxLength: 3 }),
      fc.constantFrom(',', ' , ', ':'),
      (members, separator) => {
        const text = `{${members.map(([key, value]) => `${key}: ${value}`).join(separator)}}\n`;
        for (const group of groups(text)) {
          const fast = plainTokenCommand(group);
          if (fast === undefined) continue;
          taken++;
          const parsed = parseTokenGroup(group);
          assert.ok(parsed.ok, text);
          if (!parsed.ok) return;
          assert.equal(checkRequest(parsed.value, false), { ok: true, command: fast }, text);
        }
      },
    ),
    { seed: 11, numRuns: 3000 },
  );
  assert.ok(taken > 100, `fast path taken ${taken} times`);
});

test.run();
