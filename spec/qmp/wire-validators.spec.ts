/**
 * The validators generated ahead of time from lib/qmp/wire-schemas.ts: the
 * committed file is what scripts/compile-schemas.mjs makes of the schemas
 * today, and they judge messages as ajv compiling the schemas at run time
 * does (same verdicts, same explanations).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { WIRE_SCHEMAS } from '../../lib/qmp/wire-schemas.js';
import { isErrorReply, isEvent, isGreeting, isReturn } from '../../lib/qmp/wire.js';
import { compileSchema, type CompiledSchema } from '../../lib/schema.js';

interface SchemaCompiler {
  OUTPUT: string;
  wireValidatorSource(): Promise<string>;
}

const GENERATOR = new URL('../../../scripts/compile-schemas.mjs', import.meta.url).href;

test('lib/qmp/wire-validators.ts is what scripts/compile-schemas.mjs makes of the schemas', async () => {
  const generator = (await import(GENERATOR)) as SchemaCompiler;
  const expected = await generator.wireValidatorSource();
  assert.ok(readFileSync(generator.OUTPUT, 'utf8') === expected, 'stale: run `npm run build && node scripts/compile-schemas.mjs && npm run build`');
});

const SAMPLES: unknown[] = [
  { QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: '' }, capabilities: ['oob'] } },
  { QMP: { version: { qemu: { major: 7, minor: 2 }, package: '' }, capabilities: [] } },
  { QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' }, capabilities: [1] } },
  { event: 'STOP', timestamp: { seconds: 1795634785, microseconds: 190685 } },
  { event: 'STOP', timestamp: { seconds: 1.5, microseconds: 0 } },
  { event: 'STOP', data: [], timestamp: { seconds: 1, microseconds: 0 } },
  { event: 7, timestamp: { seconds: 1, microseconds: 0 } },
  { return: {} },
  { return: null, id: 3 },
  { id: 3 },
  { error: { class: 'GenericError', desc: 'no' } },
  { error: { class: 'GenericError' } },
  { error: 'no' },
  [],
  null,
  'text',
];

const PAIRS: Array<[string, CompiledSchema<unknown>, object]> = [
  ['greeting', isGreeting, WIRE_SCHEMAS.greeting],
  ['event', isEvent, WIRE_SCHEMAS.event],
  ['reply', isReturn, WIRE_SCHEMAS.reply],
  ['error reply', isErrorReply, WIRE_SCHEMAS.errorReply],
];

for (const [name, precompiled, schema] of PAIRS) {
  test(`${name}: the generated validator and the schema compiled now agree on every sample, explanations included`, () => {
    const compiled = compileSchema<unknown>(schema);
    let rejected = 0;
    for (const sample of SAMPLES) {
      const verdict = precompiled(sample);
      assert.is(verdict, compiled(sample), JSON.stringify(sample));
      if (!verdict) {
        rejected++;
        assert.is(precompiled.explain(), compiled.explain(), JSON.stringify(sample));
      }
    }
    assert.ok(rejected > 0 && rejected < SAMPLES.length);
  });
}

test('a schema is compiled on its first use: one that cannot compile throws then, not when declared', () => {
  const broken = compileSchema<unknown>({ type: 'object', required: ['a'], properties: {} });
  assert.throws(() => broken({}), (error: Error) => error instanceof Error && /strict mode: required property "a"/.test(error.message));
});

test.run();
