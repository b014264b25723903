/**
 * `qmpx status` against a serve of three real QEMUs: one running, one whose
 * QEMU goes away (upstream down), one stopped with SIGSTOP (not answering).
 * Each change shows within 2 s; the control socket is mode 0600; the
 * command prints the same facts as text and as --json. libvirt clients
 * (libvirt-python holding a connection open) are listed too.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatStatus, readStatus } from '../../lib/cli/status.js';
import type { ServeConfig } from '../../lib/proxy/config.js';
import type { MonitorStatus, ServeStatus } from '../../lib/proxy/control.js';
import { startServe } from '../../lib/proxy/daemon.js';
import { startFakePeer } from '../helpers/fake-peer.js';
import { holdLibvirtConnection, type HeldLibvirtClient } from '../helpers/libvirt-client.js';
import { rawQmp, startQemu, type QemuInstance, type RawClient } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger } from '../proxy/harness.js';

const QMPX = fileURLToPath(new URL('../../lib/cli/main.js', import.meta.url));
const CHANGE_SHOWN_WITHIN_MS = 2000;

function runQmpx(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [QMPX, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function monitorOf(status: ServeStatus, name: string): MonitorStatus {
  const monitor = status.monitors.find((candidate) => candidate.name === name);
  assert.ok(monitor, `monitor ${name} in the status`);
  return monitor!;
}

/** Asks for the status until `holds` is true of it; fails if that takes more than `withinMs`. */
async function statusOnceItShows(path: string, holds: (status: ServeStatus) => boolean, what: string, withinMs: number): Promise<ServeStatus> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const status = await readStatus(path, withinMs);
    if (holds(status)) return status;
    if (Date.now() > deadline) throw new Error(`status did not show ${what} within ${withinMs} ms: ${JSON.stringify(status.monitors.map((m) => [m.name, m.upstream.state, m.runState]))}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('three monitors: running, upstream down, QEMU stopped with SIGSTOP, each shown as it is within 2 s', async () => {
  const qemus: QemuInstance[] = [];
  for (let i = 0; i < 3; i++) qemus.push(await startQemu({ hmp: false }));
  const [, leaving, stopped] = qemus as [QemuInstance, QemuInstance, QemuInstance];
  const dir = createTempDir('status');
  const control = socketPathIn(dir, 'serve.control');
  const sockets = ['running', 'leaving', 'stopped'].map((name) => ({ qmp: socketPathIn(dir, `${name}.qmp`), hmp: socketPathIn(dir, `${name}.hmp`) }));
  const config: ServeConfig = {
    logLevel: 'info',
    control,
    audit: { path: socketPathIn(dir, 'audit.ndjson'), arguments: false },
    monitors: qemus.map((qemu, index) => ({
      name: ['running', 'leaving', 'stopped'][index],
      upstream: qemu.qmpPath,
      qmp: sockets[index]!.qmp,
      hmp: sockets[index]!.hmp,
      socketMode: 0o600,
      maxClientBufferBytes: 1024 * 1024,
    })),
  };
  const handle = await startServe(config, { logger: new RecordingLogger(), shutdownGraceMs: 500, proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 200 } } });
  const clients: RawClient[] = [];
  let continued = false;
  try {
    assert.is(handle.controlPath, control);
    assert.is(statSync(control).mode & 0o777, 0o600);
    const allUp = await statusOnceItShows(control, (status) => status.monitors.every((m) => m.upstream.state === 'up'), 'every upstream up', 10_000);
    assert.is(allUp.audit, config.audit!.path);
    for (const monitor of allUp.monitors) {
      assert.match(monitor.qemuVersion ?? '', /^\d+\.\d+\.\d+$/);
      assert.equal(monitor.runState, { status: 'prelaunch', running: false });
      assert.is(monitor.tainted, false);
    }

    // Clients on the running monitor: one QMP, one HMP.
    const qmpClient = await rawQmp(sockets[0]!.qmp);
    clients.push(qmpClient);
    await qmpClient.waitForLines(1);
    await qmpClient.send('{"execute":"qmp_capabilities"}\n');
    await qmpClient.waitForLines(2);
    const hmpClient = await rawQmp(sockets[0]!.hmp);
    clients.push(hmpClient);
    await hmpClient.waitForText('(qemu) ');

    await leaving.stop();
    process.kill(stopped.pid, 'SIGSTOP');
    // A command sent to the stopped QEMU stays pending.
    const waiting = await rawQmp(sockets[2]!.qmp);
    clients.push(waiting);
    await waiting.waitForLines(1);
    await waiting.send('{"execute":"qmp_capabilities"}\n{"execute":"query-name","id":"held"}\n');
    await waiting.waitForLines(2);

    const changed = await statusOnceItShows(
      control,
      (status) =>
        monitorOf(status, 'leaving').upstream.state === 'connecting' &&
        'unavailable' in monitorOf(status, 'stopped').runState &&
        monitorOf(status, 'stopped').pending === 1 &&
        monitorOf(status, 'running').clients.length === 2,
      'the upstream down, the QEMU stopped, the clients',
      CHANGE_SHOWN_WITHIN_MS,
    );
    assert.equal(monitorOf(changed, 'leaving').runState, { unavailable: 'upstream down' });
    assert.is(monitorOf(changed, 'leaving').qemuVersion, undefined);
    assert.equal(monitorOf(changed, 'stopped').runState, { unavailable: 'not answering' });
    assert.is(monitorOf(changed, 'stopped').upstream.state, 'up');
    assert.equal(monitorOf(changed, 'running').runState, { status: 'prelaunch', running: false });
    assert.equal(
      monitorOf(changed, 'running').clients.map((client) => [client.kind, client.socket, client.pending]).sort(),
      [['hmp', sockets[0]!.hmp, 0], ['qmp', sockets[0]!.qmp, 0]],
    );
    assert.is(monitorOf(changed, 'stopped').clients[0]!.pending, 1);

    // The command line: text and --json, by the control path or the socket it is named after.
    const text = await runQmpx(['status', control]);
    assert.is(text.code, 0, text.stderr);
    assert.match(text.stdout, /monitor leaving\n {2}upstream {3}\S+: connecting for \d+s/);
    assert.match(text.stdout, /monitor stopped\n[^]*run state: not answering/);
    assert.match(text.stdout, new RegExp(`#\\d+ hmp on \\S+running\\.hmp, pid ${process.pid} uid ${process.getuid!()} gid ${process.getgid!()}, for \\d+s, pending 0`));
    assert.match(text.stdout, /events\/s {3}\d+\.\d\d/);
    const json = await runQmpx(['status', control, '--json']);
    assert.is(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as ServeStatus;
    assert.is(parsed.monitors.length, 3);
    assert.is(monitorOf(parsed, 'leaving').upstream.state, 'connecting');
    assert.ok(formatStatus(parsed, Date.now()).includes('monitor running'));

    // Resumed, the QEMU answers again, and the held command is answered.
    process.kill(stopped.pid, 'SIGCONT');
    continued = true;
    await waiting.waitForLine((line) => line.includes('"id": "held"'));
    const resumed = await statusOnceItShows(control, (status) => 'status' in monitorOf(status, 'stopped').runState, 'the resumed QEMU', CHANGE_SHOWN_WITHIN_MS);
    assert.is(monitorOf(resumed, 'stopped').pending, 0);
  } finally {
    if (!continued) process.kill(stopped.pid, 'SIGCONT');
    await handle.stop();
    await Promise.all(clients.map((client) => client.close(2000)));
    await Promise.all(qemus.map((qemu) => qemu.stop()));
    await removeTempDir(dir);
  }
});

test('libvirt clients: a monitor\'s libvirt socket and serve\'s own, each client held open by libvirt-python, shown with its peer in text and --json', async () => {
  const qemu = await startQemu({ hmp: false });
  const dir = createTempDir('status-libvirt');
  const control = socketPathIn(dir, 'serve.control');
  const monitorLibvirt = socketPathIn(dir, 'vm.libvirt');
  const serveLibvirt = socketPathIn(dir, 'serve.libvirt');
  const config: ServeConfig = {
    logLevel: 'info',
    control,
    libvirt: { path: serveLibvirt, socketMode: 0o600 },
    monitors: [{ name: 'vm', upstream: qemu.qmpPath, qmp: socketPathIn(dir, 'vm.qmp'), libvirt: monitorLibvirt, socketMode: 0o600, maxClientBufferBytes: 1024 * 1024 }],
  };
  const servedFrom = Date.now();
  const handle = await startServe(config, { logger: new RecordingLogger(), shutdownGraceMs: 500, proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 200 } } });
  const held: HeldLibvirtClient[] = [];
  try {
    await statusOnceItShows(control, (status) => monitorOf(status, 'vm').upstream.state === 'up', 'the upstream up', 10_000);
    const none = await readStatus(control, 5000);
    assert.equal(monitorOf(none, 'vm').clients, []);
    assert.equal(none.libvirt, { socket: serveLibvirt, clients: [] });

    const onMonitor = await holdLibvirtConnection(monitorLibvirt);
    held.push(onMonitor);
    const onServe = await holdLibvirtConnection(serveLibvirt);
    held.push(onServe);
    const shown = await statusOnceItShows(
      control,
      (status) => monitorOf(status, 'vm').clients.length === 1 && status.libvirt?.clients.length === 1,
      'both libvirt clients',
      CHANGE_SHOWN_WITHIN_MS,
    );
    const uid = process.getuid!();
    const gid = process.getgid!();
    const monitorClient = monitorOf(shown, 'vm').clients[0]!;
    assert.equal([monitorClient.kind, monitorClient.socket, monitorClient.peer, monitorClient.pending], ['libvirt', monitorLibvirt, { pid: onMonitor.pid, uid, gid }, 0]);
    const serveClient = shown.libvirt!.clients[0]!;
    assert.equal([serveClient.kind, serveClient.socket, serveClient.peer, serveClient.pending], ['libvirt', serveLibvirt, { pid: onServe.pid, uid, gid }, 0]);
    assert.ok(serveClient.connectedAt <= Date.now() && serveClient.connectedAt >= servedFrom, 'connected since the serve started');

    const text = await runQmpx(['status', control]);
    assert.is(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`monitor vm\\n[^]*  clients    1\\n    #\\d+ libvirt on \\S+vm\\.libvirt, pid ${onMonitor.pid} uid ${uid} gid ${gid}, for \\d+s, pending 0\\n`));
    assert.match(text.stdout, new RegExp(`\\nlibvirt \\S+serve\\.libvirt\\n  clients    1\\n    #\\d+ libvirt on \\S+serve\\.libvirt, pid ${onServe.pid} uid ${uid} gid ${gid}, for \\d+s, pending 0\\n`));
    const json = await runQmpx(['status', control, '--json']);
    assert.is(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as ServeStatus;
    assert.equal(monitorOf(parsed, 'vm').clients.map((client) => [client.kind, client.peer?.pid]), [['libvirt', onMonitor.pid]]);
    assert.equal(parsed.libvirt?.clients.map((client) => [client.kind, client.socket, client.peer?.pid]), [['libvirt', serveLibvirt, onServe.pid]]);

    // Gone once the client closes its connection.
    await onServe.close();
    const after = await statusOnceItShows(control, (status) => status.libvirt?.clients.length === 0, 'the closed libvirt client gone', CHANGE_SHOWN_WITHIN_MS);
    assert.is(monitorOf(after, 'vm').clients.length, 1);
  } finally {
    await Promise.all(held.map((client) => client.close()));
    await handle.stop();
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('a QEMU that never answers is asked its run state once, however often status is read', async () => {
  // A silent peer: what a stopped QEMU does, but one whose received commands can be counted.
  const peer = await startFakePeer();
  peer.expect('qmp_capabilities').reply({ return: {} }).silence();
  const dir = createTempDir('status');
  const control = socketPathIn(dir, 'serve.control');
  const config: ServeConfig = {
    logLevel: 'info',
    control,
    monitors: [{ name: 'silent', upstream: peer.path, qmp: socketPathIn(dir, 'silent.qmp'), socketMode: 0o600, maxClientBufferBytes: 1024 * 1024 }],
  };
  const handle = await startServe(config, { logger: new RecordingLogger(), shutdownGraceMs: 200 });
  try {
    await statusOnceItShows(control, (status) => status.monitors[0]!.upstream.state === 'up', 'the upstream up', 10_000);
    for (let i = 0; i < 3; i++) {
      const status = await readStatus(control, 5000);
      assert.equal(status.monitors[0]!.runState, { unavailable: 'not answering' });
    }
    assert.equal(peer.commands().filter((command) => command === 'query-status'), ['query-status']);
  } finally {
    await handle.stop();
    await peer.close();
    await removeTempDir(dir);
  }
});

test('qmpx status on a path where nothing listens: exit 2 and a reason', async () => {
  const dir = createTempDir('status');
  try {
    const result = await runQmpx(['status', socketPathIn(dir, 'none.control')]);
    assert.is(result.code, 2);
    assert.match(result.stderr, /qmpx status: error: cannot reach the control socket \S+none\.control: ENOENT/);
  } finally {
    await removeTempDir(dir);
  }
});

test('qmpx --help lists status; qmpx status --help shows its options', async () => {
  const help = await runQmpx(['--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^ {2}status /m);
  const own = await runQmpx(['status', '--help']);
  assert.is(own.code, 0);
  assert.match(own.stdout, /^Usage: qmpx status \[options\] <path>/m);
  for (const option of ['--json', '--timeout <seconds>']) assert.ok(own.stdout.includes(`  ${option}`), own.stdout);
});

test.run();
