import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { connect, silentLogger } from '../../lib/index.js';
import { emitTypes } from '../../lib/qapi/emit.js';
import { readSchema } from '../../lib/qapi/model.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { REPO_ROOT, runQmpx } from '../cli/cli-process.js';

const test = suite<{ qemu: QemuInstance }>('generated types for the installed QEMU');
const SHIPPED = join(REPO_ROOT, 'lib', 'qapi', 'qemu-7.2.ts');
const FIXTURE = join(REPO_ROOT, 'spec', 'qapi', 'fixtures', 'typed-execute.ts');

test.before(async (context) => {
  context.qemu = await startQemu();
});

test.after(async (context) => {
  await context.qemu.stop();
});

test('the shipped lib/qapi/qemu-7.2.ts is exactly what `qmpx schema types` writes for this QEMU', async ({ qemu }) => {
  const result = await runQmpx(['schema', 'types', qemu.qmpPath]);
  assert.is(result.code, 0, result.stderr);
  assert.ok(result.stdout.includes("'blockdev-add': { arguments: BlockdevAddArguments; returns: Empty };"));
  // Compared whole, so a change of QEMU or of the emitter shows as a failure here until the file is regenerated.
  assert.fixture(readFileSync(SHIPPED, 'utf8'), result.stdout);
});

test('the library emitter writes the same text from the live schema', async ({ qemu }) => {
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  try {
    const schema = readSchema(await monitor.execute('query-qmp-schema'));
    assert.is(schema.commands.size, 216);
    assert.is(schema.events.size, 52);
    assert.is(emitTypes(schema, { source: 'QEMU 7.2.22' }), readFileSync(SHIPPED, 'utf8'));
  } finally {
    await monitor.close();
  }
});

/** tsc's diagnostics for the fixture, with `text` in place of the file's contents. */
function diagnosticsFor(text: string): { line: number; message: string }[] {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (path) => (path === FIXTURE ? text : readFile(path));
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (path, language, onError) =>
    path === FIXTURE ? ts.createSourceFile(path, text, language) : getSourceFile(path, language, onError);
  const program = ts.createProgram([FIXTURE], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((diagnostic) => diagnostic.file?.fileName === FIXTURE)
    .map((diagnostic) => ({
      line: diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line,
      message: ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'),
    }));
}

const isMarker = (line: string): boolean => line.trimStart().startsWith('// @ts-expect-error');

test('tsc: the fixture compiles, so every @ts-expect-error line is an error; without the markers each of them fails', () => {
  const source = readFileSync(FIXTURE, 'utf8');
  assert.equal(diagnosticsFor(source), [], 'the fixture as written compiles');
  const lines = source.split('\n');
  const expected = lines.flatMap((line, index) => (isMarker(line) ? [index + 1] : []));
  assert.is(expected.length, 8);
  const unmarked = lines.map((line) => (isMarker(line) ? '' : line)).join('\n');
  const failing = new Set(diagnosticsFor(unmarked).map((diagnostic) => diagnostic.line));
  assert.equal([...failing].sort((a, b) => a - b), expected, 'exactly the marked lines fail');
});

test.run();
