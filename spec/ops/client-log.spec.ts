/**
 * serve's client lines: every socket kind (QMP, HMP, read-only, libvirt)
 * logs a client's connect and disconnect at info level, with the socket
 * kind and path, a client id and, where the listener gives them, the peer's
 * credentials; a disconnect says why (client closed, slow consumer, policy,
 * upstream lost, serve stopping) and how long the client stayed.
 */
import { execFile } from 'node:child_process';
import { connect as connectSocket } from 'node:net';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatStatus } from '../../lib/cli/status.js';
import type { ServeConfig } from '../../lib/proxy/config.js';
import type { ServeStatus } from '../../lib/proxy/control.js';
import { startServe } from '../../lib/proxy/daemon.js';
import { logClientConnected } from '../../lib/proxy/serve-logger.js';
import { rawQmp, startQemu, type RawClient } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger, type LogEntry } from '../proxy/harness.js';

const run = promisify(execFile);

/** The first entry, past or future, whose message starts with `message` and whose fields match; rejects after `deadlineMs`. */
function entryWhere(logger: RecordingLogger, message: string, matches: (fields: Record<string, unknown>) => boolean, deadlineMs = 10_000): Promise<LogEntry> {
  return logger.waitForEntry((entry) => entry.message.startsWith(message) && matches(entry.fields), `${JSON.stringify(message)} entry that matches`, deadlineMs);
}

/** No disconnect line has been logged for client `id` of a QMP or HMP socket. */
function stillConnected(logger: RecordingLogger, id: unknown): boolean {
  return !logger.entries.some((entry) => entry.message.startsWith('client disconnected') && entry.fields.client === id && entry.fields.kind !== 'libvirt');
}

/**
 * Checks a connect line; `peerPid` is the client process (this one for the
 * in-process clients), whose credentials the listener reads with SO_PEERCRED.
 */
function connectedLine(entry: LogEntry, kind: string, socket: string, peerPid = process.pid): number {
  assert.is(entry.level, 'info');
  assert.is(entry.fields.kind, kind);
  assert.is(entry.fields.socket, socket);
  assert.type(entry.fields.client, 'number');
  assert.equal(entry.fields.peer, { pid: peerPid, uid: process.getuid!(), gid: process.getgid!() });
  assert.is(entry.message, `client connected on ${kind} socket ${socket} (pid ${peerPid}, uid ${process.getuid!()})`);
  return entry.fields.client as number;
}

function disconnectedLine(entry: LogEntry, reason: string): void {
  assert.is(entry.level, 'info');
  assert.is(entry.fields.reason, reason);
  assert.type(entry.fields.connectedForMs, 'number');
  assert.match(entry.message, new RegExp(`^client disconnected \\(${reason}(: [a-z ]+)?\\) after \\d+\\.\\d s$`));
}

test('QMP, HMP, read-only and libvirt (virsh) clients: connect and disconnect at info, with kind, path, id and why', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('client-log');
  const paths = { qmp: socketPathIn(dir, 'qmp.sock'), hmp: socketPathIn(dir, 'hmp.sock'), readOnly: socketPathIn(dir, 'ro.sock'), libvirt: socketPathIn(dir, 'libvirt.sock') };
  const config: ServeConfig = {
    logLevel: 'info',
    monitors: [{ name: 'vm', upstream: qemu.qmpPath, ...paths, socketMode: 0o600, maxClientBufferBytes: 1024 }],
  };
  const logger = new RecordingLogger();
  const handle = await startServe(config, { logger, shutdownGraceMs: 500, proxy: { maxClientMessageBytes: 4096 } });
  const clients: RawClient[] = [];
  try {
    // Closed by the client.
    for (const [kind, path] of [['qmp', paths.qmp], ['hmp', paths.hmp], ['read-only', paths.readOnly]] as const) {
      const client = await rawQmp(path);
      clients.push(client);
      await client.waitForText(kind === 'hmp' ? '(qemu) ' : '"QMP"');
      const id = connectedLine(await entryWhere(logger, 'client connected', (fields) => fields.socket === path), kind, path);
      assert.is(logger.entries.find((entry) => entry.fields.client === id && entry.message.startsWith('client connected'))!.fields.monitor, 'vm');
      await client.close(2000);
      disconnectedLine(await entryWhere(logger, 'client disconnected', (fields) => fields.client === id && fields.socket === path), 'client closed');
    }

    // Policy: a message longer than the limit.
    const oversized = await rawQmp(paths.qmp);
    clients.push(oversized);
    await oversized.waitForLines(1);
    await oversized.send(`{"execute":"qmp_capabilities","arguments":{"x":"${'a'.repeat(8192)}"}}\n`);
    await oversized.waitForClose();
    const policy = await entryWhere(logger, 'client disconnected', (fields) => fields.reason === 'policy');
    disconnectedLine(policy, 'policy');
    assert.is(policy.fields.detail, 'oversized message');

    // Slow consumer: events (STOP and RESUME, from another client's stop and cont) pile up past the 1 KiB buffer of a client that reads nothing.
    const slow = connectSocket(paths.qmp);
    slow.pause();
    slow.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => slow.once('connect', resolve).once('error', reject));
    slow.write('{"execute":"qmp_capabilities"}\n');
    const slowId = connectedLine(await entryWhere(logger, 'client connected', (fields) => fields.socket === paths.qmp && stillConnected(logger, fields.client)), 'qmp', paths.qmp);
    await entryWhere(logger, 'QMP session state', (fields) => fields.client === slowId && fields.to === 'negotiated');
    const toggling = await rawQmp(paths.qmp);
    clients.push(toggling);
    await toggling.waitForLines(1);
    await toggling.send(`{"execute":"qmp_capabilities"}\n${'{"execute":"stop"}\n{"execute":"cont"}\n'.repeat(2500)}{"execute":"query-status","id":"last"}\n`);
    disconnectedLine(await entryWhere(logger, 'client disconnected', (fields) => fields.reason === 'slow consumer'), 'slow consumer');
    slow.destroy();

    // libvirt, by virsh: one connection per run.
    const virsh = run('virsh', ['-q', '-c', `qemu+unix:///system?socket=${paths.libvirt}`, 'domstate', 'vm'], { timeout: 30_000 });
    await virsh;
    const libvirtId = connectedLine(await entryWhere(logger, 'client connected', (fields) => fields.kind === 'libvirt'), 'libvirt', paths.libvirt, virsh.child.pid);
    disconnectedLine(await entryWhere(logger, 'client disconnected', (fields) => fields.kind === 'libvirt' && fields.client === libvirtId), 'client closed');

    // serve stopping, on every kind.
    const staying = await rawQmp(paths.hmp);
    clients.push(staying);
    await staying.waitForText('(qemu) ');
    const stayingId = connectedLine(await entryWhere(logger, 'client connected', (fields) => fields.socket === paths.hmp && stillConnected(logger, fields.client)), 'hmp', paths.hmp);
    await handle.stop();
    disconnectedLine(await entryWhere(logger, 'client disconnected', (fields) => fields.client === stayingId && fields.socket === paths.hmp), 'serve stopping');
  } finally {
    await handle.stop();
    await Promise.all(clients.map((client) => client.close(2000)));
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('a QEMU that goes away: its clients are disconnected as "upstream lost"', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('client-log');
  const qmp = socketPathIn(dir, 'qmp.sock');
  const logger = new RecordingLogger();
  const handle = await startServe({ logLevel: 'info', monitors: [{ name: 'vm', upstream: qemu.qmpPath, qmp, socketMode: 0o600, maxClientBufferBytes: 1024 * 1024 }] }, { logger, shutdownGraceMs: 500 });
  let client: RawClient | undefined;
  try {
    client = await rawQmp(qmp);
    await client.waitForLines(1);
    await qemu.stop();
    await client.waitForClose();
    disconnectedLine(await entryWhere(logger, 'client disconnected', (fields) => fields.socket === qmp), 'upstream lost');
  } finally {
    await handle.stop();
    await client?.close(2000);
    await removeTempDir(dir);
  }
});

test('peer credentials, where the listener gives them, are in the connect line and in the status', () => {
  const logger = new RecordingLogger();
  const peer = { pid: 4242, uid: 1000, gid: 100 };
  const disconnected = logClientConnected(logger, { monitor: 'vm', kind: 'qmp', socket: '/run/vm.qmp', client: 7, peer });
  disconnected('client closed');
  const [connected, gone] = logger.entries as [LogEntry, LogEntry];
  assert.equal(connected.fields, { monitor: 'vm', kind: 'qmp', socket: '/run/vm.qmp', client: 7, peer });
  assert.is(connected.message, 'client connected on qmp socket /run/vm.qmp (pid 4242, uid 1000)');
  assert.equal(gone.fields.peer, peer);
  assert.is(gone.fields.reason, 'client closed');

  const without = new RecordingLogger();
  logClientConnected(without, { kind: 'libvirt', socket: '/run/libvirt.sock', client: 1, peer: undefined });
  assert.equal(without.entries[0]!.fields, { kind: 'libvirt', socket: '/run/libvirt.sock', client: 1 });

  const now = Date.now();
  const status: ServeStatus = {
    pid: 1,
    startedAt: now,
    audit: null,
    metrics: null,
    monitors: [
      {
        name: 'vm',
        upstream: { target: '/run/vm/qmp.sock', state: 'up', since: now, links: 1, protocol: 'qmp' },
        qemuVersion: '7.2.0',
        tainted: false,
        clients: [
          { id: 7, kind: 'qmp', socket: '/run/vm.qmp', connectedAt: now, pending: 2, peer },
          { id: 8, kind: 'hmp', socket: '/run/vm.hmp', connectedAt: now, pending: 0 },
        ],
        pending: 2,
        eventsTotal: 0,
        eventsPerSecond: 0,
        runState: { status: 'running', running: true },
        watchdog: { thresholdSeconds: 10, oldestPending: { command: 'query-name', ageMs: 12_300 }, stalled: true, stalls: 1 },
      },
    ],
    libvirt: { socket: '/run/qmpx-libvirt.sock', clients: [{ id: 3, kind: 'libvirt', socket: '/run/qmpx-libvirt.sock', connectedAt: now, pending: 1, peer }] },
  };
  const text = formatStatus(status, now);
  assert.ok(text.includes('    #7 qmp on /run/vm.qmp, pid 4242 uid 1000 gid 100, for 0s, pending 2\n'), text);
  assert.ok(text.includes('    #8 hmp on /run/vm.hmp, peer unknown, for 0s, pending 0\n'), text);
  assert.ok(text.includes('  pending    2; oldest query-name, waiting 12.3 s, stalled (watchdog: 10 s)\n'), text);
  assert.ok(text.includes('\nlibvirt /run/qmpx-libvirt.sock\n  clients    1\n    #3 libvirt on /run/qmpx-libvirt.sock, pid 4242 uid 1000 gid 100, for 0s, pending 1\n'), text);
});

test.run();
