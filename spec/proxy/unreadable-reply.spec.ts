/**
 * Through the proxy, a reply QEMU prints with a non-finite double (`inf`,
 * `-inf`, `nan`) reaches the client that asked, as QEMU wrote it with only
 * the id put back, on every path: an exec-oob pending, a libvirt client's
 * command oldest, a plain relay; compact or `pretty=on`. Every later reply
 * stays with its own client. A scripted upstream, since QEMU 7.2 has no
 * command that returns a non-finite double on demand.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MonitorConfig } from '../../lib/proxy/config.js';
import { startServe } from '../../lib/proxy/daemon.js';
import { startFakePeer, type ReceivedLine } from '../helpers/fake-peer.js';
import { rawQmp, type RawClient } from '../helpers/raw-client.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { eventually, RecordingLogger, serveUpstream } from './harness.js';

const run = promisify(execFile);

/** `{"return": {"x": TOKEN}}` as QEMU writes it, compact or pretty (CRLF, 4-space indent), with `idText` where QEMU puts it. */
function returnText(token: string, pretty: boolean, idText?: string): string {
  if (!pretty) return `{"return": {"x": ${token}}${idText === undefined ? '' : `, "id": ${idText}`}}`;
  const id = idText === undefined ? '' : `,\r\n    "id": ${idText}`;
  return `{\r\n    "return": {\r\n        "x": ${token}\r\n    }${id}\r\n}`;
}

function echoed(line: ReceivedLine): string {
  if (line.echoedId === undefined) throw new Error(`${line.text}: expected a command with an id`);
  return line.echoedId;
}

async function negotiated(path: string, oob: boolean): Promise<RawClient> {
  const client = await rawQmp(path);
  await client.waitForLines(1);
  await client.send(oob ? '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}\n' : '{"execute":"qmp_capabilities"}\n');
  await client.waitForLines(2);
  return client;
}

/** Everything after the greeting and the negotiation reply, once `last` has arrived. */
async function afterNegotiation(client: RawClient, last: string): Promise<string> {
  const text = await client.waitForText(last, 10_000);
  return text.slice(text.indexOf('\r\n', text.indexOf('\r\n') + 2) + 2);
}

for (const pretty of [false, true]) {
  const style = pretty ? 'pretty' : 'compact';

  test(`two clients, an exec-oob pending, ${style}: inf, -inf and nan replies each reach the client that asked, with its id; nothing moves`, async () => {
    const peer = await startFakePeer();
    peer.autoRespond({});
    let inBandCount = 0;
    peer
      .expect('qom-get')
      .expect({ execute: 'query-yank', oob: true })
      .send(`${returnText('inf', pretty)}\r\n`)
      .reply((line) => `${returnText('-inf', pretty, echoed(line))}\r\n`)
      .expect({ execute: 'query-status', where: () => ++inBandCount > 0 })
      .send(`${returnText('nan', pretty)}\r\n`)
      .expect('query-name')
      .send('{"return": {"name": "b-own"}}\r\n');
    const served = await serveUpstream(peer.path, { name: 'vm' });
    try {
      const a = await negotiated(served.qmpPath, true);
      const b = await negotiated(served.qmpPath, false);
      await a.send('{"execute":"qom-get","arguments":{"path":"/","property":"x"},"id":"a1"}\n{"exec-oob":"query-yank","id":"a-oob"}\n');
      await eventually(() => peer.commands().includes('query-yank'), 'the OOB command upstream');
      await b.send('{"execute":"query-status","id":"b1"}\n');
      await eventually(() => inBandCount > 0, "b's first command upstream");
      await b.send('{"execute":"query-name","id":"b2"}\n');
      const bText = await afterNegotiation(b, '"id": "b2"}\r\n');
      assert.is(bText, `${returnText('nan', pretty, '"b1"')}\r\n{"return": {"name": "b-own"}, "id": "b2"}\r\n`);
      // The OOB reply leaves as soon as it arrives, the in-band one in order: each is looked for whole.
      const inBand = `${returnText('inf', pretty, '"a1"')}\r\n`;
      const outOfBand = `${returnText('-inf', pretty, '"a-oob"')}\r\n`;
      await a.waitForText(inBand, 10_000);
      const aText = await afterNegotiation(a, outOfBand);
      assert.is(aText.length, inBand.length + outOfBand.length, `a got exactly its two replies: ${JSON.stringify(aText)}`);
      await a.close();
      await b.close();
      await peer.done();
    } finally {
      await served.stop();
      await peer.close();
    }
  });
}

test('a reply no reader makes sense of, an exec-oob pending: the client that asked gets it as QEMU wrote it with its id; the next client its own', async () => {
  const peer = await startFakePeer();
  peer.autoRespond({});
  peer
    .expect('qom-get')
    .expect({ execute: 'query-yank', oob: true })
    .send('{"return": {"x": 1.5.5}}\r\n')
    .reply((line) => `{"return": [], "id": ${echoed(line)}}\r\n`)
    .expect('query-status')
    .send('{"return": {"status": "b-own"}}\r\n');
  const served = await serveUpstream(peer.path, { name: 'vm' });
  try {
    const a = await negotiated(served.qmpPath, true);
    const b = await negotiated(served.qmpPath, false);
    await a.send('{"execute":"qom-get","arguments":{"path":"/","property":"x"},"id":"a1"}\n{"exec-oob":"query-yank","id":"a-oob"}\n');
    await eventually(() => peer.commands().includes('query-yank'), 'the OOB command upstream');
    await b.send('{"execute":"query-status","id":"b1"}\n');
    assert.equal((await b.waitForLines(3))[2], '{"return": {"status": "b-own"}, "id": "b1"}');
    const aLines = (await a.waitForLines(4)).slice(2).sort();
    assert.equal(aLines, ['{"return": [], "id": "a-oob"}', '{"return": {"x": 1.5.5}, "id": "a1"}']);
    await a.close();
    await b.close();
    await peer.done();
  } finally {
    await served.stop();
    await peer.close();
  }
});

test("a libvirt client's command oldest: virsh gets libvirt's cannot-parse error for an inf or garbled reply; the QMP client behind it and later commands get their own replies", async () => {
  const peer = await startFakePeer();
  // The libvirt endpoint asks for the domain's UUID when virsh looks it up.
  peer.autoRespond({ 'query-uuid': { return: { UUID: '6c0e0f2e-5e0a-4a43-9b1c-7d1c0c5b1f10' } } });
  let virshCommands = 0;
  peer
    .expect({ execute: 'qom-get', where: () => ++virshCommands > 0 })
    .send('{"return": inf}\r\n')
    .expect('query-status')
    .send('{"return": {"status": "running"}}\r\n')
    .expect('query-name')
    .send('{"return": {"name": "virsh-own"}}\r\n')
    .expect('query-kvm')
    .send('{"return": {"enabled": @}}\r\n')
    .expect('query-name')
    .send('{"return": {"name": "still-own"}}\r\n');
  const dir = createTempDir('unreadable');
  const libvirtPath = socketPathIn(dir, 'libvirt.sock');
  const monitor: MonitorConfig = {
    name: 'vm',
    upstream: peer.path,
    qmp: socketPathIn(dir, 'qmp.sock'),
    libvirt: libvirtPath,
    socketMode: 0o600,
    maxClientBufferBytes: 8 * 1024 * 1024,
  };
  const handle = await startServe({ logLevel: 'debug', monitors: [monitor] }, { logger: new RecordingLogger() });
  const virsh = (cmd: string): Promise<{ stdout: string; stderr: string; code: number }> =>
    run('virsh', ['-q', '-c', `qemu+unix:///system?socket=${libvirtPath}`, 'qemu-monitor-command', 'vm', cmd], { timeout: 30_000 }).then(
      ({ stdout, stderr }) => ({ stdout, stderr, code: 0 }),
      (error: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: error.stdout ?? '', stderr: error.stderr ?? '', code: error.code ?? -1 }),
    );
  try {
    const client = await negotiated(monitor.qmp!, false);
    const first = virsh('{"execute":"qom-get","arguments":{"path":"/","property":"x"}}');
    await eventually(() => virshCommands > 0, "virsh's command upstream", 30_000).catch(async (error: Error) => {
      throw new Error(`${error.message}: virsh said ${JSON.stringify(await first)}`);
    });
    await client.send('{"execute":"query-status","id":"q1"}\n');
    const failed = await first;
    assert.is(failed.code, 1, `virsh fails: ${failed.stdout}${failed.stderr}`);
    assert.match(failed.stderr, 'internal error: cannot parse json {"return": inf}');
    assert.equal((await client.waitForLines(3))[2], '{"return": {"status": "running"}, "id": "q1"}');
    const next = await virsh('{"execute":"query-name"}');
    assert.equal({ code: next.code, stdout: next.stdout.trim() }, { code: 0, stdout: '{"return":{"name":"virsh-own"},"id":"libvirt-2"}' });
    const garbled = await virsh('{"execute":"query-kvm"}');
    assert.is(garbled.code, 1);
    assert.match(garbled.stderr, 'internal error: cannot parse json {"return": {"enabled": @}}: ');
    const last = await virsh('{"execute":"query-name"}');
    assert.is(last.stdout.trim(), '{"return":{"name":"still-own"},"id":"libvirt-4"}');
    await client.close();
    await peer.done();
  } finally {
    await handle.stop();
    await peer.close();
    await removeTempDir(dir);
  }
});

test.run();
