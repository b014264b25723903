/**
 * 500 hostile read-only clients, each sending an unfinished message of
 * one-byte tokens just under the message limit, against `qmpx serve` as a
 * process in front of a real QEMU: serve stays up, and a client on the full
 * socket gets correct answers all through the flood. (Its latency and
 * serve's peak memory are figures: bench/flood.bench.ts.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawQmp, startQemu } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';

const SERVE_MODULE = fileURLToPath(new URL('../../lib/cli/serve.js', import.meta.url));
const BOOTSTRAP = `const { serveCommand } = await import(process.argv[1]); await serveCommand().parseAsync(process.argv.slice(2), { from: 'user' });`;
const HOSTILE_CLIENTS = 500;
/** Just under the 1 MiB message limit: `[` and then `1,` pairs, never closed. */
const FLOOD = Buffer.from(`[${'1,'.repeat((1024 * 1024 - 64) / 2)}`, 'latin1');

function waitForText(child: ChildProcess, stderr: { text: string }, needle: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not log ${needle}: ${stderr.text.slice(-2000)}`)), timeoutMs);
    const check = (): void => {
      if (!stderr.text.includes(needle)) return;
      clearTimeout(timer);
      child.stderr!.off('data', check);
      resolve();
    };
    child.stderr!.on('data', check);
    check();
  });
}

/** Opens one hostile connection and writes the flood; resolves when the write ended (sent, or the connection closed). */
function hostile(path: string): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = connect(path);
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.on('data', () => undefined);
    socket.once('connect', () => socket.write(FLOOD, () => resolve()));
  });
}

test('500 hostile read-only floods: serve stays up and the full-socket client is answered correctly throughout', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('flood');
  const qmpPath = socketPathIn(dir, 'qmp.sock');
  const readOnlyPath = socketPathIn(dir, 'ro.sock');
  const serve = spawn(process.execPath, ['--input-type=module', '-e', BOOTSTRAP, SERVE_MODULE, '--upstream', qemu.qmpPath, '--qmp', qmpPath, '--read-only', readOnlyPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr = { text: '' };
  serve.stderr!.setEncoding('utf8');
  serve.stderr!.on('data', (text: string) => (stderr.text = (stderr.text + text).slice(-1_000_000)));
  const hostileSockets: Array<Promise<void>> = [];
  try {
    await waitForText(serve, stderr, '"msg":"upstream monitor connected"');
    const good = await rawQmp(qmpPath);
    await good.waitForLines(1);
    await good.send('{"execute":"qmp_capabilities"}\n');
    await good.waitForLines(2);
    for (let i = 0; i < HOSTILE_CLIENTS; i++) hostileSockets.push(hostile(readOnlyPath));
    let floodOver = false;
    const flood = Promise.all(hostileSockets).then(() => (floodOver = true));
    let answered = 0;
    // Round trips while the flood is being written, and one after it.
    for (let id = 1; !floodOver || answered < 5; id++) {
      await good.send(`{"execute":"query-status","id":${id}}\n`);
      const reply = (await good.waitForLines(2 + id, 30_000))[1 + id]!;
      assert.is(reply, `{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": ${id}}`);
      answered++;
    }
    await flood;
    assert.ok(serve.exitCode === null && serve.signalCode === null, `serve is still running: ${stderr.text.slice(-2000)}`);
    assert.not.match(stderr.text, /heap out of memory/);
    assert.match(stderr.text, /connection refused: per socket connection limit reached/);
    await good.close();
  } finally {
    serve.kill('SIGKILL');
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test.run();
