/**
 * The audit log: one NDJSON record per downstream command with time,
 * monitor, socket, client, command and outcome; arguments only when asked
 * for, number tokens exact. Lines are bounded (long client-supplied fields
 * cut and marked), denied commands are folded past a rate per socket, and
 * a file that fails (a full disk: /dev/full) is retried until it takes
 * lines again, with the number lost recorded in it.
 */
import { readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_AUDIT_ARGUMENTS_BYTES, MAX_AUDIT_NAME_BYTES, auditLine, openAuditLog, type AuditRecord } from '../../lib/proxy/audit.js';
import { silentLogger } from '../../lib/log.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { rawQmp } from '../helpers/qemu.js';
import { eventually, serveQemu, RecordingLogger } from './harness.js';

async function records(path: string): Promise<Array<Record<string, unknown>>> {
  return (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test('records commands with their outcome, without arguments by default', async () => {
  const dir = createTempDir('audit');
  const path = join(dir, 'audit.ndjson');
  const served = await serveQemu({ name: 'lab', audit: { path, arguments: false }, hmp: true });
  try {
    const client = await served.negotiatedClient();
    await client.send('{"execute":"query-status","id":1}\n{"execute":"no-such","id":2}\n{"execute":"qom-get","arguments":{"path":"/machine","property":"type"},"id":3}\n');
    await client.waitForLines(5);
    await client.close();
    const hmp = await rawQmp(served.hmpPath);
    await hmp.waitForText('(qemu) ');
    await hmp.send('info status\n');
    await hmp.waitForText(/\(qemu\) [^]*\(qemu\) $/);
    await hmp.close();
    await eventually(() => served.proxy.sessionCount === 0, 'the clients gone');
  } finally {
    await served.stop();
  }
  const lines = await records(path);
  assert.equal(
    lines.map((record) => [record.command, record.outcome, record.errorClass]),
    [
      ['qmp_capabilities', 'ok', undefined],
      ['query-status', 'ok', undefined],
      ['no-such', 'error', 'CommandNotFound'],
      ['qom-get', 'ok', undefined],
      ['human-monitor-command', 'ok', undefined],
    ],
  );
  for (const record of lines) {
    assert.is(record.monitor, 'lab');
    assert.is(record.socket, record.command === 'human-monitor-command' ? served.hmpPath : served.qmpPath);
    assert.type(record.client, 'number');
    assert.ok(!Number.isNaN(Date.parse(record.time as string)));
    assert.not.ok('arguments' in record);
  }
  await removeTempDir(dir);
});

test('with arguments: recorded as the client wrote the numbers', async () => {
  const dir = createTempDir('audit');
  const path = join(dir, 'audit.ndjson');
  const audit = openAuditLog(path, true, silentLogger);
  audit.record({ monitor: 'm', socket: '/s', client: 1, command: 'x', outcome: 'ok', argumentsJson: '{"n":18446744073709551615}' });
  audit.record({ monitor: 'm', socket: '/s', client: 1, command: 'y', outcome: 'lost' });
  await audit.close();
  const text = await readFile(path, 'utf8');
  assert.ok(text.includes('"arguments":{"n":18446744073709551615}}'));
  assert.is(text.trim().split('\n').length, 2);
  await removeTempDir(dir);
});

/** Resolves once the file at `path` contains `text`; rejects after `timeoutMs`. */
async function fileIncludes(path: string, text: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await readFile(path, 'utf8')).includes(text)) {
    if (Date.now() > deadline) throw new Error(`${path} never contained ${text}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const entry = (command: string, extra: Partial<AuditRecord> = {}): AuditRecord => ({ monitor: 'm', socket: '/s', client: 1, command, outcome: 'ok', ...extra });

test('client-supplied fields are cut at their limit, on a character boundary, and marked with their full length', () => {
  const asciiName = 'x'.repeat(100 * 1024);
  const wideName = `${'é'.repeat(63)}€${'a'.repeat(1000)}`; // 126 bytes, then a 3-byte character across the limit
  const argumentsJson = JSON.stringify({ 'command-line': `info ${'y'.repeat(20_000)}` });
  for (const [record, expected] of [
    [entry(asciiName, { argumentsJson }), { command: 'x'.repeat(MAX_AUDIT_NAME_BYTES), cut: { command: 100 * 1024, arguments: Buffer.byteLength(argumentsJson) } }],
    [entry(wideName, { outcome: 'error', errorClass: 'E'.repeat(200) }), { command: 'é'.repeat(63), cut: { command: Buffer.byteLength(wideName), errorClass: 200 } }],
  ] as const) {
    const line = auditLine(record, true);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.is(parsed.command, expected.command);
    assert.equal(parsed.cut, expected.cut);
    assert.ok(Buffer.byteLength(line) < 2 * MAX_AUDIT_ARGUMENTS_BYTES, `line of ${Buffer.byteLength(line)} bytes`);
    if (record.argumentsJson !== undefined) {
      assert.type(parsed.arguments, 'string', 'cut arguments are a string holding the start of their text');
      assert.is(parsed.arguments, argumentsJson.slice(0, MAX_AUDIT_ARGUMENTS_BYTES));
    }
    if (record.errorClass !== undefined) assert.is(parsed.errorClass, 'E'.repeat(MAX_AUDIT_NAME_BYTES));
  }
  const fits = JSON.parse(auditLine(entry('é'.repeat(64), { argumentsJson: '{"a":1}' }), true)) as Record<string, unknown>;
  assert.equal([fits.command, fits.arguments, 'cut' in fits], ['é'.repeat(64), { a: 1 }, false], 'a field at its limit is kept whole, unmarked');
});

/** Sends `count` denied commands with `nameBytes`-byte names on a raw socket, reading (and discarding) the replies; resolves with the reply count. */
function floodDenied(path: string, count: number, nameBytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    let newlines = 0;
    const expected = count + 2; // greeting, capabilities reply, one reply per command
    socket.on('data', (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++;
      if (newlines >= expected) {
        socket.destroy();
        resolve(newlines - 2);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after ${newlines} lines`)));
    const name = 'n'.repeat(nameBytes);
    let sent = 0;
    const pump = (): void => {
      while (sent < count) {
        sent++;
        if (!socket.write(`{"execute":"${name}${sent}","id":${sent}}\n`)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.write('{"execute":"qmp_capabilities"}\n');
    pump();
  });
}

// Through the proxy the names are 8 KiB: the client's bytes cost the proxy ~90 µs per KiB to read and
// answer (a 100 KiB name, ~9 ms), so 10,000 of 100 KiB would take minutes; the next test gives the sink those.
test('a read-only client sending 10,000 denied commands with long names leaves a bounded audit file that counts every one', async () => {
  const dir = createTempDir('audit');
  const path = join(dir, 'audit.ndjson');
  const served = await serveQemu({ readOnly: true, audit: { path, arguments: true } });
  const commands = 10_000;
  const nameBytes = 8 * 1024;
  try {
    assert.is(await floodDenied(served.readOnlyPath, commands, nameBytes), commands);
    await eventually(() => served.proxy.sessionCount === 0, 'the client gone');
  } finally {
    await served.stop();
  }
  const bytes = (await stat(path)).size;
  const lines = await records(path);
  const denied = lines.filter((record) => record.outcome === 'denied' && record.folded === undefined);
  const folds = lines.filter((record) => record.outcome === 'denied' && record.folded !== undefined);
  const folded = folds.reduce((sum, record) => sum + (record.folded as number), 0);
  assert.is(denied.length + folded, commands, 'every denied command is written or counted in a fold line');
  assert.ok(folds.length >= 1, 'the flood was folded');
  assert.ok(denied.length <= 10 * (folds.length + 1), `at most 10 written per window: ${denied.length} written, ${folds.length} folds`);
  for (const record of denied) {
    assert.is((record.command as string).length, MAX_AUDIT_NAME_BYTES);
    assert.ok((record.cut as { command: number }).command > nameBytes);
  }
  for (const record of folds) assert.equal([record.socket, record.clients], [served.readOnlyPath, 1]);
  assert.ok(bytes < (lines.length + 1) * 1024, `${bytes} bytes for ${lines.length} lines`);
  await removeTempDir(dir);
});

test('10,000 denied commands with 100 KB names given to the audit log: 10 lines, one fold line with the rest, a file of a few KB', async () => {
  const dir = createTempDir('audit');
  const path = join(dir, 'audit.ndjson');
  const audit = openAuditLog(path, true, silentLogger, { deniedWindowMs: 60_000 });
  const name = 'n'.repeat(100 * 1024);
  const argumentsJson = JSON.stringify({ blob: 'b'.repeat(100 * 1024) });
  for (let i = 0; i < 10_000; i++) audit.record(entry(name, { outcome: 'denied', client: 1 + (i % 3), argumentsJson }));
  await audit.close();
  const lines = await records(path);
  assert.is(lines.length, 11);
  assert.equal(lines.at(-1)!.folded, 9_990);
  assert.equal(lines.at(-1)!.clients, 3);
  assert.equal(lines[0]!.cut, { command: 100 * 1024, arguments: Buffer.byteLength(argumentsJson) });
  const bytes = (await stat(path)).size;
  assert.ok(bytes < 11 * (MAX_AUDIT_NAME_BYTES + MAX_AUDIT_ARGUMENTS_BYTES + 512), `${bytes} bytes`);
  await removeTempDir(dir);
});

test('denied commands past the rate are folded per socket, one line per window with the count', async () => {
  const dir = createTempDir('audit');
  const path = join(dir, 'audit.ndjson');
  const audit = openAuditLog(path, false, silentLogger, { deniedPerWindow: 3, deniedWindowMs: 60_000 });
  for (let i = 0; i < 10; i++) audit.record(entry(`c${i}`, { outcome: 'denied', client: i % 2, socket: '/ro1' }));
  audit.record(entry('d', { outcome: 'denied', socket: '/ro2' }));
  audit.record(entry('allowed', { socket: '/ro1' }));
  await audit.close();
  const lines = await records(path);
  assert.equal(
    lines.map((record) => [record.socket, record.command, record.outcome, record.folded, record.clients]),
    [
      ['/ro1', 'c0', 'denied', undefined, undefined],
      ['/ro1', 'c1', 'denied', undefined, undefined],
      ['/ro1', 'c2', 'denied', undefined, undefined],
      ['/ro2', 'd', 'denied', undefined, undefined],
      ['/ro1', 'allowed', 'ok', undefined, undefined],
      ['/ro1', undefined, 'denied', 7, 2],
    ],
  );
  await removeTempDir(dir);
});

test('a full disk: retried, entries kept up to the queue limit and the rest counted, the loss recorded in the file once it takes lines again', async () => {
  const dir = createTempDir('audit');
  const path = join(dir, 'audit.ndjson');
  const real = join(dir, 'real.ndjson');
  await symlink('/dev/full', path); // writes fail with ENOSPC
  const logger = new RecordingLogger();
  const audit = openAuditLog(path, false, logger, { retryMs: 5, maxRetryMs: 20, maxQueuedBytes: 4096 });
  audit.record(entry('first'));
  const failing = await logger.waitFor('audit log cannot be written');
  assert.match(failing.fields.err as string, /ENOSPC/);
  const recorded = 100;
  for (let i = 0; i < recorded; i++) audit.record(entry(`while-full-${i}`));
  await writeFile(real, '');
  await symlink(real, `${path}.new`);
  await rename(`${path}.new`, path); // the disk has space again
  const resumed = await logger.waitFor('audit log writable again');
  const lastKept = `while-full-${recorded - (resumed.fields.lost as number) - 1}`;
  await fileIncludes(real, `"command":"${lastKept}"`); // the queue has room again
  audit.record(entry('after'));
  await audit.close();
  const lines = await records(real);
  const gap = lines[0]!;
  assert.is(gap.outcome, 'audit-gap');
  assert.match(gap.error as string, /ENOSPC/);
  assert.is(gap.lost, resumed.fields.lost, 'the log line and the file give the same count');
  const kept = lines.slice(1, -1).map((record) => record.command as string);
  assert.ok((gap.lost as number) > 0 && kept.length > 0, `${kept.length} kept, ${String(gap.lost)} lost`);
  assert.is(kept.length + (gap.lost as number), recorded + 1, 'every entry is written or counted');
  assert.equal(kept, ['first', ...Array.from({ length: kept.length - 1 }, (_, i) => `while-full-${i}`)], 'the oldest are kept, in order');
  assert.is(lines.at(-1)!.command, 'after');
  assert.is(logger.entries.filter((logged) => logged.message.includes('cannot be written')).length, 1, 'one error per episode, however many retries');
  await removeTempDir(dir);
});

test('a file that never comes back: logged once, serving goes on, the loss logged at close', async () => {
  const logger = new RecordingLogger();
  const audit = openAuditLog('/nonexistent-dir/qmpx/audit.ndjson', false, logger, { retryMs: 5, maxRetryMs: 10 });
  audit.record(entry('x'));
  await logger.waitFor('audit log cannot be written');
  audit.record(entry('y'));
  await audit.close();
  assert.equal(
    logger.entries.filter((logged) => logged.message.includes('audit log')).map((logged) => [logged.level, logged.message.split(';')[0], logged.fields.lost]),
    [
      ['error', 'audit log cannot be written', undefined],
      ['error', 'audit log closed while it could not be written', 2],
    ],
  );
});

test.run();
