/**
 * `qmpx shell -v -l FILE`: the JSON of each command is printed before its
 * reply, and the transcript file keeps each line typed (after its prompt),
 * what was sent and the reply, without colours. `--agent` talks to a guest
 * agent's socket. `transaction(` ... `)` sends the lines between as the
 * actions of one `transaction` command, as qmp-shell does. Nested
 * completion walks into the union variant a tag picks. Through a pipe, and
 * in a real terminal (tmux), where the screen is asserted as it is.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../lib/index.js';
import { startQemu, startQga } from '../helpers/qemu.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { CLI_PATH, runQmpx } from './cli-process.js';
import { openTerminal, type Terminal } from './tmux.js';

const STATUS = '{"return":{"status":"prelaunch","singlestep":false,"running":false}}';

test('-v prints the JSON sent; -l keeps the transcript (QMP and HMP lines)', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('shell-log');
  try {
    const log = join(dir, 'session.log');
    const result = await runQmpx(['shell', '-v', '-l', log, qemu.qmpPath], { input: 'query-status\nqom-get path=/machine property=type\n/hmp\ninfo status\n' });
    assert.is(result.code, 0, result.stderr);
    const sentStatus = '{"execute":"query-status"}';
    const sentQom = '{"execute":"qom-get","arguments":{"path":"/machine","property":"type"}}';
    assert.is(result.stdout, `${sentStatus}\n${STATUS}\n${sentQom}\n{"return":"none-machine"}\nVM status: paused (prelaunch)\n`);
    assert.is(
      await readFile(log, 'utf8'),
      `(QEMU) query-status\n${sentStatus}\n${STATUS}\n(QEMU) qom-get path=/machine property=type\n${sentQom}\n{"return":"none-machine"}\n(qemu) info status\nVM status: paused (prelaunch)\n`,
    );
  } finally {
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('--agent: a guest agent socket, with -v', async () => {
  const qga = await startQga();
  try {
    const result = await runQmpx(['shell', '--agent', '-v', qga.qgaPath], { input: 'guest-ping\n' });
    assert.is(result.code, 0, result.stderr);
    assert.is(result.stdout, '{"execute":"guest-ping"}\n{"return":{}}\n');
  } finally {
    await qga.stop();
  }
});

/** The screen's text from the first line that starts with `from`, trailing empty lines dropped. */
function screenFrom(screen: string, from: string): string {
  const lines = screen.split('\n');
  const start = lines.findIndex((line) => line.startsWith(from));
  assert.ok(start >= 0, `${JSON.stringify(from)} on screen:\n${screen}`);
  return lines.slice(start).join('\n').replace(/\n+$/, '\n');
}

/** The dirty bitmaps of block node `node`, asked on a QMP socket of its own. */
async function bitmapsOf(qmpPath: string, node: string): Promise<string[]> {
  const monitor = await connect(qmpPath);
  try {
    const nodes = await monitor.execute<Array<{ 'node-name': string; 'dirty-bitmaps'?: Array<{ name: string }> }>>('query-named-block-nodes');
    return (nodes.find((candidate) => candidate['node-name'] === node)?.['dirty-bitmaps'] ?? []).map((bitmap) => bitmap.name);
  } finally {
    await monitor.close();
  }
}

test('tmux: transaction( ... ) is ONE transaction command sent at ")"; -v shows it; -l keeps the TRANS> lines', async () => {
  const qemu = await startQemu({ extraQmpSockets: 1 });
  const dir = createTempDir('shell-transaction');
  let terminal: Terminal | undefined;
  try {
    const log = join(dir, 'session.log');
    terminal = await openTerminal([process.execPath, CLI_PATH, 'shell', '-v', '-l', log, '--history', join(dir, 'history'), qemu.qmpPath], { NO_COLOR: '1' }, 240, 40);
    await terminal.waitFor(/^\(QEMU\) $/m);
    await terminal.type('blockdev-add driver=null-co node-name=n0');
    await terminal.keys('Enter');
    await terminal.waitFor(/^\{"return":\{\}\}\n\(QEMU\) $/m);

    await terminal.type('transaction(');
    await terminal.keys('Enter');
    await terminal.waitFor(/^TRANS> $/m);
    await terminal.type('block-dirty-bitmap-add node=n0 name=b1');
    await terminal.keys('Enter');
    await terminal.waitFor(/^TRANS> block-dirty-bitmap-add node=n0 name=b1\nTRANS> $/m);
    // Kept, not run: QEMU has no such bitmap yet.
    assert.equal(await bitmapsOf(qemu.extraQmpPaths[0]!, 'n0'), []);
    // The same bitmap twice: QEMU refuses the transaction as a whole, so not even the first is made.
    await terminal.type('block-dirty-bitmap-add node=n0 name=b1');
    await terminal.keys('Enter');
    await terminal.type(')');
    await terminal.keys('Enter');
    await terminal.waitFor(/Bitmap already exists: b1"\}\}\n\(QEMU\) $/m);
    assert.equal(await bitmapsOf(qemu.extraQmpPaths[0]!, 'n0'), []);

    await terminal.type('transaction( block-dirty-bitmap-add node=n0 name=b2 granularity=65536 )');
    await terminal.keys('Enter');
    const screen = await terminal.waitFor(/^\{"return":\{\}\}\n\(QEMU\) $/m);
    const actions = (names: string[], extra = ''): string =>
      names.map((name) => `{"type":"block-dirty-bitmap-add","data":{"node":"n0","name":"${name}"${extra}}}`).join(',');
    const twice = `{"execute":"transaction","arguments":{"actions":[${actions(['b1', 'b1'])}]}}`;
    const once = `{"execute":"transaction","arguments":{"actions":[${actions(['b2'], ',"granularity":65536')}]}}`;
    assert.is(
      screenFrom(screen, '(QEMU) transaction('),
      [
        '(QEMU) transaction(',
        'TRANS> block-dirty-bitmap-add node=n0 name=b1',
        'TRANS> block-dirty-bitmap-add node=n0 name=b1',
        'TRANS> )',
        twice,
        '{"error":{"class":"GenericError","desc":"Bitmap already exists: b1"}}',
        '(QEMU) transaction( block-dirty-bitmap-add node=n0 name=b2 granularity=65536 )',
        once,
        '{"return":{}}',
        '(QEMU) ',
      ].join('\n') + '\n',
    );
    assert.equal(await bitmapsOf(qemu.extraQmpPaths[0]!, 'n0'), ['b2']);

    await terminal.keys('C-d');
    assert.is(await terminal.waitForExit(), 0);
    assert.is(
      await readFile(log, 'utf8'),
      [
        '(QEMU) blockdev-add driver=null-co node-name=n0',
        '{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n0"}}',
        '{"return":{}}',
        '(QEMU) transaction(',
        'TRANS> block-dirty-bitmap-add node=n0 name=b1',
        'TRANS> block-dirty-bitmap-add node=n0 name=b1',
        'TRANS> )',
        twice,
        '{"error":{"class":"GenericError","desc":"Bitmap already exists: b1"}}',
        '(QEMU) transaction( block-dirty-bitmap-add node=n0 name=b2 granularity=65536 )',
        once,
        '{"return":{}}',
      ].join('\n') + '\n',
    );
  } finally {
    await terminal?.close();
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('tmux: Ctrl-C on an empty TRANS> line drops the transaction, and nothing is sent', async () => {
  const qemu = await startQemu({ extraQmpSockets: 1 });
  const dir = createTempDir('shell-transaction');
  let terminal: Terminal | undefined;
  try {
    terminal = await openTerminal([process.execPath, CLI_PATH, 'shell', '--history', join(dir, 'history'), qemu.qmpPath], { NO_COLOR: '1' });
    await terminal.waitFor(/^\(QEMU\) $/m);
    await terminal.type('blockdev-add driver=null-co node-name=n0');
    await terminal.keys('Enter');
    await terminal.waitFor(/^\{"return":\{\}\}\n\(QEMU\) $/m);
    await terminal.type('transaction(');
    await terminal.keys('Enter');
    await terminal.type('block-dirty-bitmap-add node=n0 name=b1');
    await terminal.keys('Enter');
    await terminal.waitFor(/^TRANS> block-dirty-bitmap-add node=n0 name=b1\nTRANS> $/m);
    await terminal.keys('C-c');
    await terminal.waitFor(/^TRANS> block-dirty-bitmap-add node=n0 name=b1\n\(transaction cancelled: nothing was sent\)\n\(QEMU\) $/m);
    await terminal.type(')');
    await terminal.keys('Enter');
    // Outside a transaction ")" is no command.
    await terminal.waitFor(/^\(QEMU\) \)\n\{"error":\{"class":"CommandNotFound","desc":"The command \) has not been found"\}\}\n\(QEMU\) $/m);
    assert.equal(await bitmapsOf(qemu.extraQmpPaths[0]!, 'n0'), []);
  } finally {
    await terminal?.close();
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('a piped transaction: one line or several, each one transaction command', async () => {
  const qemu = await startQemu();
  try {
    const input = 'blockdev-add driver=null-co node-name=n0\ntransaction(\nblock-dirty-bitmap-add node=n0 name=b1\nblock-dirty-bitmap-add node=n0 name=b2 )\nquery-named-block-nodes\n';
    const result = await runQmpx(['shell', '-v', qemu.qmpPath], { input });
    assert.is(result.code, 0, result.stderr);
    const lines = result.stdout.split('\n');
    assert.is(lines[2], '{"execute":"transaction","arguments":{"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"n0","name":"b1"}},{"type":"block-dirty-bitmap-add","data":{"node":"n0","name":"b2"}}]}}');
    assert.is(lines[3], '{"return":{}}');
    assert.match(lines[5]!, /"dirty-bitmaps":\[\{[^\]]*"name":"b2"[^\]]*\},\{[^\]]*"name":"b1"/);
  } finally {
    await qemu.stop();
  }
});

test('tmux: nested completion: blockdev-add driver=qcow2 file. walks into the variant file.driver picks', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('shell-completion');
  let terminal: Terminal | undefined;
  try {
    terminal = await openTerminal([process.execPath, CLI_PATH, 'shell', '--history', join(dir, 'history'), qemu.qmpPath], { NO_COLOR: '1' }, 100, 30);
    await terminal.waitFor(/^\(QEMU\) $/m);
    await terminal.type('blockdev-add driver=qcow2 file.dri');
    await terminal.keys('Tab');
    await terminal.waitFor(/^\(QEMU\) blockdev-add driver=qcow2 file\.driver=$/m);
    await terminal.type('fi');
    await terminal.keys('Tab');
    await terminal.waitFor(/^\(QEMU\) blockdev-add driver=qcow2 file\.driver=file$/m);
    await terminal.type(' file.');
    await terminal.keys('Tab');
    await terminal.keys('Tab');
    const listed = await terminal.waitFor(/^\(QEMU\) blockdev-add driver=qcow2 file\.driver=file file\.\n(.+\n)+\n\(QEMU\) blockdev-add driver=qcow2 file\.driver=file file\.$/m);
    assert.is(
      screenFrom(listed, '(QEMU) blockdev-add'),
      [
        '(QEMU) blockdev-add driver=qcow2 file.driver=file file.',
        'file.aio-max-batch=          file.aio=                    file.auto-read-only=',
        'file.cache.                  file.detect-zeroes=          file.discard=',
        'file.drop-cache=             file.filename=               file.force-share=',
        'file.locking=                file.node-name=              file.pr-manager=',
        'file.read-only=              file.x-check-cache-dropped=',
        '',
        '(QEMU) blockdev-add driver=qcow2 file.driver=file file.',
      ].join('\n') + '\n',
    );
    await terminal.type('fil');
    await terminal.keys('Tab');
    await terminal.waitFor(/^\(QEMU\) blockdev-add driver=qcow2 file\.driver=file file\.filename=$/m);
  } finally {
    await terminal?.close();
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test.run();
