import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isProcessAlive } from './daemon.js';
import { rawQmp, startQemu, startQga, type QemuInstance, type RawClient } from './qemu.js';
import { rejectionOf } from './rejection.js';

/** docs/monitor-facts.md §2: one compact line, `", "` / `": "` separators, CRLF. */
const QMP_GREETING =
  /^\{"QMP": \{"version": \{"qemu": \{"micro": \d+, "minor": \d+, "major": \d+\}, "package": "[^"]*"\}, "capabilities": \["oob"\]\}\}$/;
/** docs/monitor-facts.md §3: the banner, then the prompt with no newline after it. */
const HMP_BANNER = /^QEMU \d+\.\d+\.\d+ monitor - type 'help' for more information\r\n\(qemu\) $/;

/** Runs `body` against a fresh QEMU, always stopping it. */
async function withQemu(options: Parameters<typeof startQemu>[0], body: (qemu: QemuInstance) => Promise<void>): Promise<void> {
  const qemu = await startQemu(options);
  try {
    await body(qemu);
  } finally {
    await qemu.stop();
  }
}

/** Connects, waits for the greeting and negotiates capabilities. */
async function negotiatedClient(path: string): Promise<RawClient> {
  const client = await rawQmp(path);
  await client.waitForLines(1);
  await client.send('{"execute":"qmp_capabilities"}\n');
  assert.is((await client.waitForLines(2))[1], '{"return": {}}');
  return client;
}

function connectError(path: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', resolve);
  });
}

test('QMP greets with the docs/monitor-facts.md §2 greeting: one compact line ending in CRLF', async () => {
  await withQemu({}, async (qemu) => {
    const client = await rawQmp(qemu.qmpPath);
    const [greeting] = await client.waitForLines(1);
    assert.match(greeting ?? '', QMP_GREETING);
    assert.is(client.bytes().toString('latin1'), `${greeting}\r\n`);
    await client.close();
  });
});

test('HMP greets with the banner and the (qemu) prompt', async () => {
  await withQemu({}, async (qemu) => {
    const client = await rawQmp(qemu.hmpPath);
    assert.match(await client.waitForText('(qemu) '), HMP_BANNER);
    await client.close();
  });
});

test('a negotiated QMP client sees QEMU paused in prelaunch', async () => {
  await withQemu({}, async (qemu) => {
    const client = await negotiatedClient(qemu.qmpPath);
    await client.send('{"execute":"query-status"}\n');
    const [, , reply] = await client.waitForLines(3);
    assert.equal(JSON.parse(reply ?? ''), { return: { status: 'prelaunch', singlestep: false, running: false } });
    await client.close();
  });
});

test('extra QMP sockets each serve their own client at the same time', async () => {
  await withQemu({ extraQmpSockets: 2 }, async (qemu) => {
    assert.is(qemu.extraQmpPaths.length, 2);
    const clients = await Promise.all([qemu.qmpPath, ...qemu.extraQmpPaths].map(negotiatedClient));
    await Promise.all(clients.map((client) => client.close()));
  });
});

test('pretty: true makes every QMP monitor print indented multi-line JSON with CRLF', async () => {
  await withQemu({ pretty: true, extraQmpSockets: 1 }, async (qemu) => {
    for (const path of [qemu.qmpPath, ...qemu.extraQmpPaths]) {
      const client = await rawQmp(path);
      await client.waitForLine((line) => line === '}');
      const text = client.bytes().toString('latin1');
      assert.ok(text.startsWith('{\r\n    "QMP": {\r\n        "version": {'), text);
      assert.ok(text.endsWith('\r\n}\r\n'), text);
      assert.match(JSON.stringify(JSON.parse(text)), /"capabilities":\["oob"\]/);
      await client.close();
    }
  });
});

test('qmp: false and hmp: false leave those paths unserved', async () => {
  await withQemu({ qmp: false }, async (qemu) => {
    assert.is((await connectError(qemu.qmpPath))?.code, 'ENOENT');
    const client = await rawQmp(qemu.hmpPath);
    await client.waitForText('(qemu) ');
    await client.close();
  });
  await withQemu({ hmp: false }, async (qemu) => {
    assert.is((await connectError(qemu.hmpPath))?.code, 'ENOENT');
  });
});

test("machine: 'pc' can hot-unplug a USB keyboard, raising DEVICE_DELETED", async () => {
  await withQemu({ machine: 'pc', hmp: false }, async (qemu) => {
    const client = await negotiatedClient(qemu.qmpPath);
    await client.send('{"execute":"device_add","arguments":{"driver":"usb-kbd","id":"kbd0"}}\n');
    await client.send('{"execute":"device_del","arguments":{"id":"kbd0"}}\n');
    const event = await client.waitForLine((line) => line.includes('"DEVICE_DELETED"'));
    assert.equal(JSON.parse(event).data, { device: 'kbd0', path: '/machine/peripheral/kbd0' });
    await client.close();
  });
});

test('stop(): SIGTERM makes QEMU report SHUTDOWN host-signal and exit 0; the dir is removed', async () => {
  const qemu = await startQemu();
  const client = await negotiatedClient(qemu.qmpPath);
  const status = await qemu.stop();
  assert.equal(status, { code: 0, signal: null });
  const shutdown = await client.waitForLine((line) => line.includes('"SHUTDOWN"'));
  assert.equal(JSON.parse(shutdown).data, { guest: false, reason: 'host-signal' });
  await client.waitForClose();
  assert.not.ok(existsSync(qemu.dir));
  assert.equal(await qemu.stop(), status, 'stop() is idempotent');
});

test('kill() SIGKILLs QEMU and removes the dir', async () => {
  const qemu = await startQemu();
  assert.equal(await qemu.kill(), { code: null, signal: 'SIGKILL' });
  assert.not.ok(existsSync(qemu.dir));
});

test('waitForExit() sees QEMU quit on its own', async () => {
  const qemu = await startQemu({ hmp: false });
  try {
    const client = await negotiatedClient(qemu.qmpPath);
    await client.send('{"execute":"quit"}\n');
    assert.equal(await qemu.waitForExit(), { code: 0, signal: null });
    await client.waitForClose();
  } finally {
    await qemu.stop();
  }
  assert.not.ok(existsSync(qemu.dir));
});

test('a QEMU the test forgot to stop dies with the test process, and its dir is removed', async () => {
  const helper = new URL('./qemu.js', import.meta.url).href;
  const script = `const { startQemu } = await import(${JSON.stringify(helper)});
    const qemu = await startQemu();
    console.log(JSON.stringify({ pid: qemu.pid, dir: qemu.dir }));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exitCode = await new Promise((resolve) => child.once('close', resolve));
  assert.is(exitCode, 0, stderr);
  const { pid, dir } = JSON.parse(stdout) as { pid: number; dir: string };
  assert.not.ok(isProcessAlive(pid), `QEMU pid ${pid} outlived its test process`);
  assert.not.ok(existsSync(dir), `${dir} outlived its test process`);
  assert.match(stderr, /was still running at exit; killed it/);
});

test('QEMU exiting during start rejects with its stderr', async () => {
  const failure = await rejectionOf(startQemu({ args: ['-no-such-option'] }));
  assert.match(failure.message, /exited \(code 1\) before serving .*qmp\.sock; stderr:\n.*-no-such-option/);
});

test('a missing QEMU binary fails loudly, naming the Debian package', async () => {
  assert.match((await rejectionOf(startQemu({ binary: 'qemu-system-nonexistent' }))).message, /not found.*install the Debian package qemu-system-x86/);
  assert.match((await rejectionOf(startQemu({ binary: '/nonexistent/qemu' }))).message, /\/nonexistent\/qemu not found/);
});

test('startQga: no greeting, guest-sync echoes its id on an LF-terminated line', async () => {
  const qga = await startQga();
  try {
    const client = await rawQmp(qga.qgaPath);
    await client.send('{"execute":"guest-sync","arguments":{"id":12345}}\n');
    // Anything the agent sent on accept would come before this reply.
    assert.equal(await client.waitForLines(1), ['{"return": 12345}']);
    assert.is(client.bytes().toString('latin1'), '{"return": 12345}\n');
    await client.close();
  } finally {
    await qga.stop();
  }
  assert.not.ok(existsSync(qga.dir));
});

test.run();
