/**
 * serve --metrics against a real QEMU: three clients (two on the QMP
 * socket, one on the read-only socket) send 1,000 commands pipelined;
 * /metrics is scraped while they run and after, and the counters are
 * checked against what was sent. Every scrape is checked by a strict
 * reading of the text format (./exposition.ts), and by `promtool check
 * metrics` too where promtool is installed.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServeConfig } from '../../lib/proxy/config.js';
import { startServe } from '../../lib/proxy/daemon.js';
import { connect as connectSocket } from 'node:net';
import { qmpEvent, startFakePeer } from '../helpers/fake-peer.js';
import { rawQmp, startQemu, type RawClient } from '../helpers/qemu.js';
import { holdLibvirtConnection, type HeldLibvirtClient } from '../helpers/libvirt-client.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger } from '../proxy/harness.js';
import { checkExposition, sampleKey, type Sample } from './exposition.js';

const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();

async function scrape(url: string): Promise<Map<string, Sample>> {
  const response = await fetch(url);
  assert.is(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  if (promtool !== '') {
    const checked = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.is(checked.status, 0, `promtool: ${checked.stdout}${checked.stderr}`);
  }
  return checkExposition(text);
}

function value(samples: Map<string, Sample>, name: string, labels: Record<string, string>): number {
  return samples.get(sampleKey(name, labels))?.value ?? 0;
}

async function negotiated(path: string): Promise<RawClient> {
  const client = await rawQmp(path);
  await client.waitForLines(1);
  await client.send('{"execute":"qmp_capabilities"}\n');
  await client.waitForLines(2);
  return client;
}

function commands(prefix: string, list: Array<[string, number]>): string {
  let text = '';
  let index = 0;
  for (const [command, count] of list) for (let i = 0; i < count; i++) text += `{"execute":"${command}","id":"${prefix}-${index++}"}\n`;
  return text;
}

test('counters of a 1,000-command run of 3 clients match what was sent, during the run and after it', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('metrics');
  const qmp = socketPathIn(dir, 'qmp.sock');
  const readOnly = socketPathIn(dir, 'ro.sock');
  const config: ServeConfig = {
    logLevel: 'info',
    metrics: '127.0.0.1:0',
    monitors: [{ name: 'vm', upstream: qemu.qmpPath, qmp, readOnly, socketMode: 0o600, maxClientBufferBytes: 8 * 1024 * 1024 }],
  };
  const handle = await startServe(config, { logger: new RecordingLogger(), shutdownGraceMs: 2000, proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 200 } } });
  const clients: RawClient[] = [];
  try {
    const url = `http://127.0.0.1:${handle.metricsAddress!.port}/metrics`;
    const a = await negotiated(qmp);
    const b = await negotiated(readOnly);
    const c = await negotiated(qmp);
    clients.push(a, b, c);
    // a: 400 (with cont and stop: one RESUME and one STOP event); b: 300 on the read-only socket, 100 refused there; c: 300, 100 unknown to QEMU.
    const sentA = commands('a', [['query-status', 398], ['cont', 1], ['stop', 1]]);
    const sentB = commands('b', [['query-version', 200], ['stop', 100]]);
    const sentC = commands('c', [['query-kvm', 200], ['no-such-command', 100]]);
    await Promise.all([a.send(sentA), b.send(sentB), c.send(sentC)]);

    const during = await scrape(url);
    const settledDuring = [...during.values()].filter((sample) => sample.name === 'qmpx_commands_total').reduce((sum, sample) => sum + sample.value, 0);
    assert.ok(settledDuring >= 3 && settledDuring <= 1003, `settled during the run: ${settledDuring}`);

    await Promise.all([
      a.waitForLine((line) => line.includes('"id": "a-399"')),
      b.waitForLine((line) => line.includes('"id": "b-299"')),
      c.waitForLine((line) => line.includes('"id": "c-299"')),
      a.waitForLine((line) => line.includes('"event": "STOP"')),
    ]);
    const after = await scrape(url);
    const commandsTotal = (origin: string, command: string, outcome: string): number => value(after, 'qmpx_commands_total', { monitor: 'vm', origin, command, outcome });
    assert.is(commandsTotal('qmp', 'qmp_capabilities', 'ok'), 2);
    assert.is(commandsTotal('read-only', 'qmp_capabilities', 'ok'), 1);
    assert.is(commandsTotal('qmp', 'query-status', 'ok'), 398);
    assert.is(commandsTotal('qmp', 'cont', 'ok'), 1);
    assert.is(commandsTotal('qmp', 'stop', 'ok'), 1);
    assert.is(commandsTotal('read-only', 'query-version', 'ok'), 200);
    assert.is(commandsTotal('read-only', 'stop', 'denied'), 100);
    assert.is(commandsTotal('qmp', 'query-kvm', 'ok'), 200);
    // A name QEMU does not list never becomes a label value.
    assert.is(commandsTotal('qmp', 'other', 'error'), 100);
    assert.not.ok([...after.values()].some((sample) => sample.labels.command === 'no-such-command'));
    const all = [...after.values()].filter((sample) => sample.name === 'qmpx_commands_total').reduce((sum, sample) => sum + sample.value, 0);
    assert.is(all, 1003);

    assert.is(value(after, 'qmpx_command_round_trip_seconds_count', { monitor: 'vm', origin: 'qmp' }), 700);
    assert.is(value(after, 'qmpx_command_round_trip_seconds_count', { monitor: 'vm', origin: 'read-only' }), 200);
    assert.is(value(after, 'qmpx_events_total', { monitor: 'vm', event: 'RESUME' }), 1);
    assert.is(value(after, 'qmpx_events_total', { monitor: 'vm', event: 'STOP' }), 1);
    assert.is(value(after, 'qmpx_clients', { monitor: 'vm', kind: 'qmp' }), 2);
    assert.is(value(after, 'qmpx_clients', { monitor: 'vm', kind: 'read-only' }), 1);
    assert.is(value(after, 'qmpx_clients', { monitor: 'vm', kind: 'hmp' }), 0);
    assert.is(value(after, 'qmpx_pending_commands', { monitor: 'vm' }), 0);
    assert.is(value(after, 'qmpx_upstream_up', { monitor: 'vm' }), 1);
    assert.is(value(after, 'qmpx_upstream_reconnects_total', { monitor: 'vm' }), 0);
    assert.is(value(after, 'qmpx_tainted', { monitor: 'vm' }), 0);
    assert.is(value(after, 'qmpx_slow_consumer_disconnects_total', { monitor: 'vm', origin: 'qmp' }), 0);
    assert.ok(after.has('qmpx_process_cpu_user_seconds_total'), 'process metrics');
    assert.ok(after.has('qmpx_process_start_time_seconds'), 'process metrics');

    // The upstream going away shows as down, and its return as a reconnect.
    await qemu.stop();
    let down = await scrape(url);
    const deadline = Date.now() + 10_000;
    while (value(down, 'qmpx_upstream_up', { monitor: 'vm' }) !== 0 && Date.now() < deadline) down = await scrape(url);
    assert.is(value(down, 'qmpx_upstream_up', { monitor: 'vm' }), 0);
  } finally {
    await handle.stop();
    await Promise.all(clients.map((client) => client.close(2000)));
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('a scrape of anything but GET /metrics is answered 404', async () => {
  const dir = createTempDir('metrics');
  const config: ServeConfig = {
    logLevel: 'info',
    metrics: '127.0.0.1:0',
    monitors: [{ name: 'vm', upstream: socketPathIn(dir, 'absent.sock'), qmp: socketPathIn(dir, 'qmp.sock'), socketMode: 0o600, maxClientBufferBytes: 1024 * 1024 }],
  };
  const handle = await startServe(config, { logger: new RecordingLogger(), shutdownGraceMs: 100 });
  try {
    const response = await fetch(`http://127.0.0.1:${handle.metricsAddress!.port}/`);
    assert.is(response.status, 404);
    const samples = await scrape(`http://127.0.0.1:${handle.metricsAddress!.port}/metrics`);
    assert.is(value(samples, 'qmpx_upstream_up', { monitor: 'vm' }), 0);
  } finally {
    await handle.stop();
    await removeTempDir(dir);
  }
});

test('virsh through the libvirt socket: monitor commands counted as pass-through by QMP name, other calls by API, the taint, libvirt clients and their pending calls', async () => {
  const qemu = await startQemu();
  const dir = createTempDir('metrics');
  const qmp = socketPathIn(dir, 'qmp.sock');
  const libvirt = socketPathIn(dir, 'libvirt.sock');
  const sharedLibvirt = socketPathIn(dir, 'serve-libvirt.sock');
  const config: ServeConfig = {
    logLevel: 'info',
    metrics: '127.0.0.1:0',
    libvirt: { path: sharedLibvirt, socketMode: 0o600 },
    monitors: [{ name: 'lab1', upstream: qemu.qmpPath, qmp, libvirt, socketMode: 0o600, maxClientBufferBytes: 1024 * 1024 }],
  };
  const handle = await startServe(config, { logger: new RecordingLogger(), shutdownGraceMs: 500, proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 200 } } });
  let client: RawClient | undefined;
  const held: HeldLibvirtClient[] = [];
  let qemuStopped = false;
  try {
    const url = `http://127.0.0.1:${handle.metricsAddress!.port}/metrics`;
    // A reply on the link comes after that of the link's own query-commands: the command list is in.
    client = await negotiated(qmp);
    await client.send('{"execute":"query-name","id":"ready"}\n');
    await client.waitForLine((line) => line.includes('"id": "ready"'));
    const virsh = (...args: string[]) => promisify(execFile)('virsh', ['-q', '-c', `qemu+unix:///system?socket=${libvirt}`, ...args], { timeout: 30_000 });
    await virsh('qemu-monitor-command', 'lab1', '{"execute":"query-status"}');
    await virsh('qemu-monitor-command', 'lab1', '{"execute":"query-status"}');
    await virsh('qemu-monitor-command', 'lab1', '{"execute":"no-such-command"}').catch(() => undefined);
    await virsh('domstate', 'lab1');
    const samples = await scrape(url);
    const total = (origin: string, command: string, outcome: string): number => value(samples, 'qmpx_commands_total', { monitor: 'lab1', origin, command, outcome });
    assert.is(total('pass-through', 'query-status', 'ok'), 2);
    assert.is(total('pass-through', 'other', 'error'), 1);
    assert.ok(total('libvirt', 'virDomainGetState', 'ok') >= 1, 'virsh domstate asks virDomainGetState');
    assert.is(total('qmp', 'query-name', 'ok'), 1);
    assert.not.ok([...samples.values()].some((sample) => sample.labels.command === 'no-such-command'));
    assert.is(value(samples, 'qmpx_tainted', { monitor: 'lab1' }), 1);

    // libvirt-python holding a connection on the monitor's libvirt socket and one on serve's own.
    held.push(await holdLibvirtConnection(libvirt), await holdLibvirtConnection(sharedLibvirt));
    const connected = await scrape(url);
    assert.is(value(connected, 'qmpx_clients', { monitor: 'lab1', kind: 'libvirt' }), 1);
    assert.is(value(connected, 'qmpx_clients', { monitor: '', kind: 'libvirt' }), 1);
    assert.is(value(connected, 'qmpx_clients', { monitor: 'lab1', kind: 'qmp' }), 1);

    // A call QEMU cannot answer while stopped is pending on its monitor until QEMU runs again.
    process.kill(qemu.pid, 'SIGSTOP');
    qemuStopped = true;
    const heldCall = virsh('qemu-monitor-command', 'lab1', '{"execute":"query-status"}');
    let waiting = await scrape(url);
    const deadline = Date.now() + 10_000;
    while (value(waiting, 'qmpx_pending_commands', { monitor: 'lab1' }) === 0 && Date.now() < deadline) waiting = await scrape(url);
    assert.is(value(waiting, 'qmpx_pending_commands', { monitor: 'lab1' }), 1);
    process.kill(qemu.pid, 'SIGCONT');
    qemuStopped = false;
    assert.match((await heldCall).stdout, /"status"/);
    assert.is(value(await scrape(url), 'qmpx_pending_commands', { monitor: 'lab1' }), 0);
  } finally {
    if (qemuStopped) process.kill(qemu.pid, 'SIGCONT');
    await Promise.all(held.map((libvirtClient) => libvirtClient.close()));
    await handle.stop();
    await client?.close(2000);
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('a client that stops reading while events flood is counted as a slow-consumer disconnect; event names counted', async () => {
  const count = 60_000;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const peer = await startFakePeer();
  // An upstream whose query-commands answers no list: no command gets a label of its own, and nothing breaks.
  peer.autoRespond({ 'query-commands': { return: {} } });
  peer.waitUntil(released, 'clients ready').flood(count, (index) => qmpEvent('BALLOON_CHANGE', { actual: index }));
  const dir = createTempDir('metrics');
  const qmp = socketPathIn(dir, 'qmp.sock');
  const config: ServeConfig = {
    logLevel: 'info',
    metrics: '127.0.0.1:0',
    monitors: [{ name: 'vm', upstream: peer.path, qmp, socketMode: 0o600, maxClientBufferBytes: 1024 * 1024 }],
  };
  const logger = new RecordingLogger();
  const handle = await startServe(config, { logger, shutdownGraceMs: 500, proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 200 } } });
  try {
    const url = `http://127.0.0.1:${handle.metricsAddress!.port}/metrics`;
    const reader = await negotiated(qmp);
    const stalled = connectSocket(qmp);
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    stalled.on('error', () => undefined);
    stalled.write('{"execute":"qmp_capabilities"}\n');
    const proxy = handle.proxies[0]!;
    const deadline = Date.now() + 10_000;
    while (proxy.sessionCount < 2 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    stalled.pause();
    release();
    await logger.waitFor('client is not reading', 30_000);
    await reader.waitForLines(2 + count, 30_000);
    stalled.destroy();
    const samples = await scrape(url);
    assert.is(value(samples, 'qmpx_slow_consumer_disconnects_total', { monitor: 'vm', origin: 'qmp' }), 1);
    assert.is(value(samples, 'qmpx_events_total', { monitor: 'vm', event: 'BALLOON_CHANGE' }), count);
    // Without a command list, only the command qmpx answers itself has a label of its own.
    assert.is(value(samples, 'qmpx_commands_total', { monitor: 'vm', origin: 'qmp', command: 'qmp_capabilities', outcome: 'ok' }), 2);
    await reader.close(2000);
  } finally {
    await handle.stop();
    await peer.close();
    await removeTempDir(dir);
  }
});

test.run();
