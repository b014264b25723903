/**
 * `serve --libvirt PATH`: virsh (libvirt-clients 9.0) reaches the served VM
 * through the proxy's libvirt endpoint, by the name serve knows it by,
 * beside QMP clients on the same upstream; after an upstream restart it
 * reaches the new link, and a running `virsh qemu-monitor-event --loop`
 * keeps receiving events from it.
 */
import { execFile, spawn } from 'node:child_process';
import { rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServeConfig } from '../../lib/cli/serve.js';
import { QmpxError } from '../../lib/errors.js';
import type { MonitorConfig } from '../../lib/proxy/config.js';
import { startServe, type ServeHandle } from '../../lib/proxy/daemon.js';
import { rawQmp, startQemu, startQga, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger } from './harness.js';

const run = promisify(execFile);

async function virsh(socket: string, ...args: string[]): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run('virsh', ['-q', '-c', `qemu+unix:///system?socket=${socket}`, ...args], { timeout: 30_000 });
    return { stdout, code: 0 };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: `${failed.stdout ?? ''}${failed.stderr ?? ''}`, code: failed.code ?? -1 };
  }
}

function serveWithLibvirt(dir: string, name: string, upstream: string, logger = new RecordingLogger(), extra: Partial<MonitorConfig> = {}): Promise<ServeHandle> {
  const monitor: MonitorConfig = {
    ...extra,
    name,
    upstream,
    qmp: socketPathIn(dir, 'qmp.sock'),
    libvirt: socketPathIn(dir, 'libvirt.sock'),
    socketMode: 0o600,
    maxClientBufferBytes: 8 * 1024 * 1024,
  };
  return startServe(
    { logLevel: 'debug', monitors: [monitor] },
    { logger, proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 100 } } },
  );
}

/**
 * Stops `first`, starts another QEMU, points the `upstream` symlink at it and
 * resolves with it once the proxy's second link is up.
 */
async function restartUpstream(proxy: ServeHandle['proxies'][number], first: QemuInstance, dir: string, upstream: string): Promise<QemuInstance> {
  const firstLink = (await proxy.upstream.whenUp())!;
  await first.stop();
  await firstLink.closed;
  const second = await startQemu();
  await symlink(second.qmpPath, join(dir, 'next.sock'));
  await rename(join(dir, 'next.sock'), upstream);
  let link = (await proxy.upstream.whenUp())!;
  while (link.generation < 2) {
    await new Promise((resolve) => setImmediate(resolve));
    link = (await proxy.upstream.whenUp())!;
  }
  return second;
}

test('virsh qemu-monitor-command through the proxy, by the served name, beside a QMP client', async () => {
  const dir = createTempDir('libvirt');
  const qemu = await startQemu();
  const handle = await serveWithLibvirt(dir, 'lab1', qemu.qmpPath);
  const libvirtPath = socketPathIn(dir, 'libvirt.sock');
  try {
    await handle.proxies[0]!.upstream.whenUp();
    const qmp = await rawQmp(socketPathIn(dir, 'qmp.sock'));
    await qmp.waitForLines(1);
    await qmp.send('{"execute":"qmp_capabilities"}\n');
    await qmp.waitForLines(2);
    const status = await virsh(libvirtPath, 'qemu-monitor-command', 'lab1', '{"execute":"query-status"}');
    assert.is(status.code, 0, status.stdout);
    assert.ok(status.stdout.startsWith('{"return":{"status":"prelaunch","singlestep":false,"running":false}'), status.stdout);
    const hmp = await virsh(libvirtPath, 'qemu-monitor-command', 'lab1', '--hmp', 'info', 'status');
    assert.is(hmp.stdout.trim(), 'VM status: paused (prelaunch)');
    const byId = await virsh(libvirtPath, 'qemu-monitor-command', '1', '{"execute":"query-name"}');
    assert.is(byId.code, 0, byId.stdout);
    const missing = await virsh(libvirtPath, 'qemu-monitor-command', 'nosuch', '{"execute":"query-status"}');
    assert.is(missing.code, 1);
    assert.match(missing.stdout, /failed to get domain 'nosuch'/);
    await qmp.send('{"execute":"query-status","id":"q"}\n');
    await qmp.waitForLine((line) => line.endsWith('"id": "q"}'));
    await qmp.close();
  } finally {
    await handle.stop();
    await qemu.stop();
    await removeTempDir(dir);
  }
});

test('after an upstream restart virsh reaches the new QEMU', async () => {
  const dir = createTempDir('libvirt');
  const first = await startQemu();
  const upstream = join(dir, 'upstream.sock');
  await symlink(first.qmpPath, upstream);
  const handle = await serveWithLibvirt(dir, 'lab2', upstream);
  const libvirtPath = socketPathIn(dir, 'libvirt.sock');
  let second: QemuInstance | undefined;
  try {
    const proxy = handle.proxies[0]!;
    await proxy.upstream.whenUp();
    assert.is((await virsh(libvirtPath, 'qemu-monitor-command', 'lab2', '{"execute":"query-status"}')).code, 0);
    second = await restartUpstream(proxy, first, dir, upstream);
    assert.is(proxy.upstream.current?.generation, 2);
    const after = await virsh(libvirtPath, 'qemu-monitor-command', 'lab2', '--hmp', 'info', 'status');
    assert.is(after.stdout.trim(), 'VM status: paused (prelaunch)', after.stdout);
  } finally {
    await handle.stop();
    await first.stop();
    await second?.stop();
    await removeTempDir(dir);
  }
});

test('--agent reaches the guest agent for qemu-agent-command; --libvirt-read-only refuses monitor commands as libvirt does', async () => {
  const dir = createTempDir('libvirt');
  const qemu = await startQemu();
  const qga = await startQga();
  const readOnlyPath = socketPathIn(dir, 'libvirt-ro.sock');
  const handle = await serveWithLibvirt(dir, 'lab4', qemu.qmpPath, new RecordingLogger(), { libvirtReadOnly: readOnlyPath, agent: qga.qgaPath });
  try {
    await handle.proxies[0]!.upstream.whenUp();
    const ping = await virsh(socketPathIn(dir, 'libvirt.sock'), 'qemu-agent-command', 'lab4', '{"execute":"guest-ping"}');
    assert.is(ping.code, 0, ping.stdout);
    assert.is(ping.stdout.trim(), '{"return":{}}');
    const denied = await virsh(readOnlyPath, 'qemu-monitor-command', 'lab4', '{"execute":"stop"}');
    assert.is(denied.code, 1);
    assert.match(denied.stdout, 'operation forbidden: read only access prevents virDomainQemuMonitorCommand');
    const lookup = await virsh(readOnlyPath, 'domuuid', 'lab4');
    assert.is(lookup.code, 0, lookup.stdout);
    assert.match(lookup.stdout.trim(), /^[0-9a-f-]{36}$/);
  } finally {
    await handle.stop();
    await qga.stop();
    await qemu.stop();
    await removeTempDir(dir);
  }
});

/** Runs `command` on a fresh negotiated QMP client of the proxy and waits for its reply. */
async function runThroughProxy(qmpPath: string, command: string): Promise<void> {
  const client = await rawQmp(qmpPath);
  await client.waitForLines(1);
  await client.send('{"execute":"qmp_capabilities"}\n');
  await client.waitForLines(2);
  await client.send(`{"execute":"${command}","id":"x"}\n`);
  await client.waitForLine((line) => line.includes('"id": "x"'));
  await client.close();
}

test('virsh qemu-monitor-event --loop keeps receiving events across an upstream restart', async () => {
  const dir = createTempDir('libvirt');
  const first = await startQemu();
  const upstream = join(dir, 'upstream.sock');
  await symlink(first.qmpPath, upstream);
  const logger = new RecordingLogger();
  const handle = await serveWithLibvirt(dir, 'lab3', upstream, logger);
  const libvirtPath = socketPathIn(dir, 'libvirt.sock');
  const qmpPath = socketPathIn(dir, 'qmp.sock');
  let second: QemuInstance | undefined;
  // Line-buffered, so each event line can be waited for as it is printed.
  const watcher = spawn('stdbuf', ['-oL', 'virsh', '-q', '-c', `qemu+unix:///system?socket=${libvirtPath}`, 'qemu-monitor-event', 'lab3', '--event', 'STOP', '--loop', '--timeout', '120'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let onOutput = (): void => undefined;
  watcher.stdout.setEncoding('utf8').on('data', (text: string) => {
    output += text;
    onOutput();
  });
  const stopLine = /^event STOP at \d+\.\d{6} for domain 'lab3': <null>$/gm;
  const untilStopLines = (count: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${count} STOP lines from virsh, got ${JSON.stringify(output)}`)), 20_000);
      onOutput = () => {
        if ((output.match(stopLine) ?? []).length < count) return;
        clearTimeout(timer);
        resolve();
      };
      onOutput();
    });
  const exited = new Promise<number | null>((resolve) => watcher.once('exit', (code) => resolve(code)));
  try {
    const proxy = handle.proxies[0]!;
    await proxy.upstream.whenUp();
    await logger.waitFor('monitor event callback registered', 30_000);
    // A VM still in prelaunch raises no STOP: run it first.
    await runThroughProxy(qmpPath, 'cont');
    await runThroughProxy(qmpPath, 'stop');
    await untilStopLines(1);
    second = await restartUpstream(proxy, first, dir, upstream);
    await runThroughProxy(qmpPath, 'cont');
    await runThroughProxy(qmpPath, 'stop');
    await untilStopLines(2);
    watcher.kill('SIGINT');
    await exited;
    const lines = output.trim().split('\n');
    assert.is((output.match(stopLine) ?? []).length, 2, output);
    assert.equal(lines.slice(-2), ['event loop interrupted', 'events received: 2'], output);
  } finally {
    watcher.kill('SIGINT');
    await handle.stop();
    await first.stop();
    await second?.stop();
    await removeTempDir(dir);
  }
});

test('virsh event --event lifecycle: a QMP quit is Shutdown (after host request) then Stopped, the QEMU that takes its place Started', async () => {
  const dir = createTempDir('libvirt');
  const first = await startQemu();
  const upstream = join(dir, 'upstream.sock');
  await symlink(first.qmpPath, upstream);
  const logger = new RecordingLogger();
  const handle = await serveWithLibvirt(dir, 'lab5', upstream, logger);
  const libvirtPath = socketPathIn(dir, 'libvirt.sock');
  let second: QemuInstance | undefined;
  const watcher = spawn('stdbuf', ['-oL', 'virsh', '-q', '-c', `qemu+unix:///system?socket=${libvirtPath}`, 'event', 'lab5', '--event', 'lifecycle', '--loop'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let onOutput = (): void => undefined;
  watcher.stdout.setEncoding('utf8').on('data', (text: string) => {
    output += text;
    onOutput();
  });
  const untilLines = (count: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${count} event lines from virsh, got ${JSON.stringify(output)}`)), 20_000);
      onOutput = () => {
        if ((output.match(/^event /gm) ?? []).length < count) return;
        clearTimeout(timer);
        resolve();
      };
      onOutput();
    });
  try {
    const proxy = handle.proxies[0]!;
    await proxy.upstream.whenUp();
    await logger.waitFor('domain event callback registered', 30_000);
    const firstLink = (await proxy.upstream.whenUp())!;
    await runThroughProxy(socketPathIn(dir, 'qmp.sock'), 'quit');
    await firstLink.closed;
    await untilLines(2);
    const down = await virsh(libvirtPath, 'list', '--all');
    assert.is(down.stdout, ' -   lab5   shut off\n', 'listed shut off while the upstream is gone');
    second = await startQemu();
    await symlink(second.qmpPath, join(dir, 'next.sock'));
    await rename(join(dir, 'next.sock'), upstream);
    await untilLines(3);
    assert.is(
      output,
      "event 'lifecycle' for domain 'lab5': Shutdown Finished after host request\n" +
        "event 'lifecycle' for domain 'lab5': Stopped Shutdown\n" +
        "event 'lifecycle' for domain 'lab5': Started Booted\n",
    );
    const state = await virsh(libvirtPath, 'domstate', 'lab5', '--reason');
    assert.is(state.stdout.trim(), 'paused (user)');
  } finally {
    watcher.kill('SIGINT');
    await handle.stop();
    await first.stop();
    await second?.stop();
    await removeTempDir(dir);
  }
});

test('a VM whose upstream comes up while virsh event listens is announced Started, and its events follow', async () => {
  const dir = createTempDir('libvirt');
  const upstream = join(dir, 'upstream.sock');
  const logger = new RecordingLogger();
  const handle = await serveWithLibvirt(dir, 'lab6', upstream, logger);
  const libvirtPath = socketPathIn(dir, 'libvirt.sock');
  let qemu: QemuInstance | undefined;
  const watcher = spawn('stdbuf', ['-oL', 'virsh', '-q', '-c', `qemu+unix:///system?socket=${libvirtPath}`, 'event', '--event', 'lifecycle', '--loop'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let onOutput = (): void => undefined;
  watcher.stdout.setEncoding('utf8').on('data', (text: string) => {
    output += text;
    onOutput();
  });
  const untilLines = (count: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${count} event lines from virsh, got ${JSON.stringify(output)}`)), 20_000);
      onOutput = () => {
        if ((output.match(/^event /gm) ?? []).length < count) return;
        clearTimeout(timer);
        resolve();
      };
      onOutput();
    });
  try {
    await logger.waitFor('domain event callback registered', 30_000);
    assert.is((await virsh(libvirtPath, 'list', '--all')).stdout, ' -   lab6   shut off\n');
    qemu = await startQemu();
    await symlink(qemu.qmpPath, upstream);
    await untilLines(1);
    await runThroughProxy(socketPathIn(dir, 'qmp.sock'), 'cont');
    await untilLines(2);
    assert.is(output, "event 'lifecycle' for domain 'lab6': Started Booted\nevent 'lifecycle' for domain 'lab6': Resumed Unpaused\n");
  } finally {
    watcher.kill('SIGINT');
    await handle.stop();
    await qemu?.stop();
    await removeTempDir(dir);
  }
});

test('config: a top-level libvirt path (or --libvirt with only --config) is the whole process\'s socket, with the top-level mode', async () => {
  const dir = createTempDir('libvirt');
  try {
    const file = join(dir, 'serve.json');
    const monitors = [{ name: 'a', upstream: '/run/a.sock', qmp: join(dir, 'a.qmp') }];
    await writeFile(file, JSON.stringify({ socketMode: '0660', libvirt: join(dir, 'all.sock'), monitors }));
    const fromFile = await buildServeConfig({ config: file }, []);
    assert.equal(fromFile.libvirt, { path: join(dir, 'all.sock'), socketMode: 0o660 });
    const fromFlag = await buildServeConfig({ config: file, libvirt: join(dir, 'flag.sock') }, []);
    assert.equal(fromFlag.libvirt, { path: join(dir, 'flag.sock'), socketMode: 0o660 });
    const perMonitor = await buildServeConfig({ upstream: '/run/b.sock', qmp: join(dir, 'b.qmp'), libvirt: join(dir, 'b.sock') }, []);
    assert.is(perMonitor.libvirt, undefined);
    assert.is(perMonitor.monitors[0]!.libvirt, join(dir, 'b.sock'));
    await writeFile(file, JSON.stringify({ libvirt: join(dir, 'a.qmp'), monitors }));
    const refused = await buildServeConfig({ config: file }, []).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.instance(refused, QmpxError);
    assert.match((refused as QmpxError).message, /a\.qmp is also the libvirt socket of serve/);
  } finally {
    await removeTempDir(dir);
  }
});

test.run();
