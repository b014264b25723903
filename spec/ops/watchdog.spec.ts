/**
 * The command watchdog against a real QEMU stopped with SIGSTOP: a warn
 * line names the monitor, the oldest command not answered and how long it
 * has waited; while the stall lasts it is told again with backoff (each
 * time at least twice the age of the last), never once per check; a line
 * when QEMU answers again. The metrics show the oldest pending command's
 * age and count the stall; `qmpx status` shows it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readStatus } from '../../lib/cli/status.js';
import { buildServeConfig } from '../../lib/cli/serve.js';
import type { ServeConfig } from '../../lib/proxy/config.js';
import { startServe, type ServeHandle } from '../../lib/proxy/daemon.js';
import { DEFAULT_WATCHDOG_SECONDS } from '../../lib/proxy/watchdog.js';
import { rawQmp, startQemu, type QemuInstance, type RawClient } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger, type LogEntry } from '../proxy/harness.js';
import { checkExposition, sampleKey } from './exposition.js';

async function scrape(port: number): Promise<Map<string, { value: number }>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  return checkExposition(await response.text());
}

/** Resolves with the `count`th entry whose message contains `text`; rejects with what was logged after `deadlineMs`. */
async function nthEntry(logger: RecordingLogger, text: string, count: number, deadlineMs = 10_000): Promise<LogEntry> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const found = logger.entries.filter((entry) => entry.message.includes(text));
    if (found.length >= count) return found[count - 1]!;
    if (Date.now() > deadline) throw new Error(`fewer than ${count} log entries containing ${JSON.stringify(text)} within ${deadlineMs} ms: ${logger.entries.map((e) => e.message).join(' | ')}`);
    await logger.waitFor(text, deadline - Date.now()).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

interface WatchedServe {
  qemu: QemuInstance;
  handle: ServeHandle;
  logger: RecordingLogger;
  /** serve's QMP socket, control socket and libvirt socket. */
  qmp: string;
  control: string;
  libvirt: string;
  /** Resumes QEMU if a test left it stopped, then stops serve and QEMU and removes the files. */
  stop(): Promise<void>;
}

/** A real QEMU and `serve` in front of it (QMP, control, metrics and libvirt sockets) with the watchdog at `watchdogSeconds`. */
async function startWatchedServe(watchdogSeconds: number): Promise<WatchedServe> {
  const qemu = await startQemu();
  const dir = createTempDir('watchdog');
  const qmp = socketPathIn(dir, 'qmp.sock');
  const control = socketPathIn(dir, 'serve.control');
  const libvirt = socketPathIn(dir, 'libvirt.sock');
  const config: ServeConfig = {
    logLevel: 'info',
    metrics: '127.0.0.1:0',
    control,
    watchdogSeconds,
    libvirt: { path: libvirt, socketMode: 0o600 },
    monitors: [{ name: 'vm', upstream: qemu.qmpPath, qmp, socketMode: 0o600, maxClientBufferBytes: 1024 * 1024 }],
  };
  const logger = new RecordingLogger();
  const handle = await startServe(config, { logger, shutdownGraceMs: 500 });
  return {
    qemu,
    handle,
    logger,
    qmp,
    control,
    libvirt,
    async stop() {
      process.kill(qemu.pid, 'SIGCONT');
      await handle.stop();
      await qemu.stop();
      await removeTempDir(dir);
    },
  };
}

test('SIGSTOP: a warn line names the monitor, the command and its age, repeated with backoff; a line when QEMU answers again', async () => {
  const { qemu, handle, logger, qmp, control, stop } = await startWatchedServe(0.3);
  let client: RawClient | undefined;
  try {
    client = await rawQmp(qmp);
    await client.waitForLines(1);
    await client.send('{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":"before"}\n');
    await client.waitForLine((line) => line.includes('"id": "before"'));

    process.kill(qemu.pid, 'SIGSTOP');
    await client.send('{"execute":"query-name","id":"held"}\n{"execute":"query-version","id":"behind"}\n');

    const first = await nthEntry(logger, 'not answered', 1);
    assert.is(first.level, 'warn');
    assert.is(first.fields.monitor, 'vm');
    assert.is(first.fields.command, 'query-name');
    assert.is(first.fields.pending, 2);
    assert.ok((first.fields.pendingForMs as number) >= 300, JSON.stringify(first.fields));
    assert.match(first.message, /^QEMU has not answered query-name for \d+\.\d s/);

    const second = await nthEntry(logger, 'not answered', 2);
    const third = await nthEntry(logger, 'not answered', 3);
    assert.match(second.message, /^QEMU still has not answered query-name for/);
    // Backoff: each repetition comes once the command has waited at least twice as long as at the last one.
    assert.ok((second.fields.pendingForMs as number) >= 2 * (first.fields.pendingForMs as number), JSON.stringify([first.fields, second.fields]));
    assert.ok((third.fields.pendingForMs as number) >= 2 * (second.fields.pendingForMs as number), JSON.stringify([second.fields, third.fields]));

    const stalled = await scrape(handle.metricsAddress!.port);
    assert.is(stalled.get(sampleKey('qmpx_watchdog_stalls_total', { monitor: 'vm' }))?.value, 1);
    assert.ok((stalled.get(sampleKey('qmpx_oldest_pending_command_seconds', { monitor: 'vm' }))?.value ?? 0) >= 4 * 0.3);

    const status = await readStatus(control, 5000);
    const monitor = status.monitors[0]!;
    assert.equal(monitor.runState, { unavailable: 'not answering' });
    assert.is(monitor.watchdog?.stalled, true);
    assert.is(monitor.watchdog?.oldestPending?.command, 'query-name');

    process.kill(qemu.pid, 'SIGCONT');
    const recovered = await logger.waitFor('QEMU answers again');
    assert.is(recovered.level, 'info');
    assert.is(recovered.fields.monitor, 'vm');
    assert.is(recovered.fields.command, 'query-name');
    await client.waitForLine((line) => line.includes('"id": "behind"'));
    const warnings = logger.entries.filter((entry) => entry.message.includes('not answered'));
    assert.ok(warnings.every((entry) => entry.fields.command === 'query-name'), JSON.stringify(warnings));

    const after = await scrape(handle.metricsAddress!.port);
    assert.is(after.get(sampleKey('qmpx_oldest_pending_command_seconds', { monitor: 'vm' }))?.value, 0);
    assert.is(after.get(sampleKey('qmpx_watchdog_stalls_total', { monitor: 'vm' }))?.value, 1);
    assert.is((await readStatus(control, 5000)).monitors[0]!.watchdog?.stalled, false);
  } finally {
    await stop();
    await client?.close(2000);
  }
});

test("a libvirt client's monitor command (virsh, through serve's own libvirt socket) is watched as a socket client's is", async () => {
  const { qemu, logger, libvirt, stop } = await startWatchedServe(0.3);
  try {
    await logger.waitFor('upstream monitor connected');
    const virsh = (...args: string[]) => promisify(execFile)('virsh', ['-q', '-c', `qemu+unix:///system?socket=${libvirt}`, ...args], { timeout: 30_000 });
    process.kill(qemu.pid, 'SIGSTOP');
    const held = virsh('qemu-monitor-command', 'vm', '{"execute":"query-name"}');
    const warning = await nthEntry(logger, 'not answered', 1);
    assert.is(warning.level, 'warn');
    assert.equal([warning.fields.monitor, warning.fields.command], ['vm', 'query-name']);
    process.kill(qemu.pid, 'SIGCONT');
    const recovered = await logger.waitFor('QEMU answers again');
    assert.is(recovered.fields.command, 'query-name');
    assert.match((await held).stdout, /"return"/);
  } finally {
    await stop();
  }
});

test('--watchdog and watchdogSeconds: the option wins over the file; 0 turns it off; the default is documented', async () => {
  const dir = createTempDir('watchdog');
  try {
    const upstream = socketPathIn(dir, 'up.sock');
    const qmp = socketPathIn(dir, 'qmp.sock');
    const fromOption = await buildServeConfig({ upstream, qmp, watchdog: 2.5 }, []);
    assert.is(fromOption.watchdogSeconds, 2.5);
    const unset = await buildServeConfig({ upstream, qmp }, []);
    assert.is(unset.watchdogSeconds, undefined);
    assert.is(DEFAULT_WATCHDOG_SECONDS, 10);
  } finally {
    await removeTempDir(dir);
  }
});

test('watchdog 0: no watchdog, no watchdog metrics, status says null', async () => {
  const { handle, control, stop } = await startWatchedServe(0);
  try {
    const samples = await scrape(handle.metricsAddress!.port);
    assert.is(samples.get(sampleKey('qmpx_watchdog_stalls_total', { monitor: 'vm' })), undefined);
    assert.is((await readStatus(control, 5000)).monitors[0]!.watchdog, null);
  } finally {
    await stop();
  }
});

test.run();
