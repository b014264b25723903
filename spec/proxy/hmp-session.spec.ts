/**
 * The downstream text monitor: QEMU's banner and prompt, no echo, no
 * terminal escapes, lines run in order, over a QMP upstream (through
 * human-monitor-command) and over a text-only upstream.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, silentLogger } from '../../lib/index.js';
import { rawQmp, startQemu } from '../helpers/qemu.js';
import { serveQemu, serveUpstream, type ServedQemu } from './harness.js';

const PROMPT = '(qemu) ';
let served: ServedQemu;

test.before(async () => {
  served = await serveQemu({ hmp: true });
});

test.after(async () => {
  await served?.stop();
});

test('greets with QEMU’s own banner and prompt', async () => {
  const own = await rawQmp(served.qemu.hmpPath);
  const ownGreeting = await own.waitForText(PROMPT);
  await own.close();
  const client = await rawQmp(served.hmpPath);
  const greeting = await client.waitForText(PROMPT);
  assert.is(greeting, ownGreeting);
  assert.is(greeting, "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ");
  await client.close();
});

test('a line gives its output and a prompt: no echo, no escapes', async () => {
  const client = await rawQmp(served.hmpPath);
  const banner = await client.waitForText(PROMPT);
  await client.send('info status\n');
  const text = await client.waitForText(/\(qemu\) [^]*\(qemu\) $/);
  assert.is(text.slice(banner.length), 'VM status: paused (prelaunch)\r\n(qemu) ');
  assert.not.ok(text.includes('\x1b'));
  await client.close();
});

test('lines typed ahead run in order; empty lines and CRLF give one prompt each', async () => {
  const client = await rawQmp(served.hmpPath);
  const banner = await client.waitForText(PROMPT);
  await client.send('info status\r\ninfo version\n\nfrobnicate\rinfo name\n');
  const expected =
    'VM status: paused (prelaunch)\r\n(qemu) ' +
    '7.2.22Debian 1:7.2+dfsg-7+deb12u18+b3\r\n(qemu) ' +
    '(qemu) ' +
    "unknown command: 'frobnicate'\r\n(qemu) " +
    '(qemu) ';
  const text = await client.waitForText(new RegExp(`^${escape(banner + expected)}$`));
  assert.is(text, banner + expected);
  await client.close();
});

test('a line split across writes runs once, when it ends', async () => {
  const client = await rawQmp(served.hmpPath);
  const banner = await client.waitForText(PROMPT);
  for (const piece of ['in', 'fo st', 'atus', '\n']) await client.send(piece);
  const text = await client.waitForText(/\(qemu\) [^]*\(qemu\) $/);
  assert.is(text.slice(banner.length), 'VM status: paused (prelaunch)\r\n(qemu) ');
  await client.close();
});

test('a line longer than QEMU’s 4,095 bytes is cut there, as QEMU’s editor cuts it', async () => {
  const client = await rawQmp(served.hmpPath);
  const banner = await client.waitForText(PROMPT);
  await client.send(`echo ${'x'.repeat(5000)}\n`);
  const text = await client.waitForText(/\(qemu\) [^]*\(qemu\) $/);
  // `echo` is not an HMP command: QEMU names the first word only; the point is one answer, not two.
  assert.is(text.slice(banner.length), "unknown command: 'echo'\r\n(qemu) ");
  assert.is(served.proxy.pendingCount, 0);
  await client.close();
});

test('over a text-only upstream: its banner, its output; QMP clients are refused', async () => {
  const qemu = await startQemu({ qmp: false });
  const textOnly = await serveUpstream(qemu.hmpPath, { hmp: true, name: 'text' });
  try {
    const client = await rawQmp(textOnly.hmpPath);
    const banner = await client.waitForText(PROMPT);
    assert.is(banner, "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ");
    await client.send('info status\n');
    const text = await client.waitForText(/\(qemu\) [^]*\(qemu\) $/);
    assert.is(text.slice(banner.length), 'VM status: paused (prelaunch)\r\n(qemu) ');
    const qmp = await rawQmp(textOnly.qmpPath);
    await qmp.waitForClose();
    assert.is(qmp.text(), '');
    await textOnly.logger.waitFor('QMP clients cannot be served');
    await client.close();
  } finally {
    await textOnly.stop();
    await qemu.stop();
  }
});

test('the library drives the proxy’s text socket as it drives QEMU’s own: auto-detected HMP, same outputs', async () => {
  const direct = await connect(served.qemu.hmpPath, { logger: silentLogger });
  const proxied = await connect(served.hmpPath, { logger: silentLogger, commandTimeoutMs: 10_000 });
  try {
    assert.is(proxied.protocol, 'hmp');
    for (const line of ['info status', 'info version', 'frobnicate', '', 'info name']) {
      assert.is(await proxied.hmp(line), await direct.hmp(line), line);
    }
    assert.equal(await proxied.execute('query-status'), await direct.execute('query-status'));
  } finally {
    await proxied.close();
    await direct.close();
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test.run();
