/**
 * The command watchdog's timer: set only while a command is pending, so a
 * serve of many idle monitors holds no timer per monitor and wakes for
 * none. The timers the watchdog sets are seen by standing in for
 * setInterval/clearInterval; its checks are run by calling the callback it
 * gave, not by waiting for time to pass. The stall itself against a
 * stopped QEMU is spec/ops/watchdog.spec.ts.
 */
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandWatchdog } from '../../lib/proxy/watchdog.js';
import { RecordingLogger } from './harness.js';

interface SetTimer {
  check: () => void;
  intervalMs: number;
  handle: NodeJS.Timeout;
  cleared: boolean;
}

/** Runs `body` with setInterval/clearInterval recorded; the timers set never fire on their own. */
async function withRecordedTimers(body: (timers: SetTimer[]) => void | Promise<void>): Promise<void> {
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  const timers: SetTimer[] = [];
  globalThis.setInterval = ((check: () => void, intervalMs: number) => {
    const handle = realSet(() => undefined, 2 ** 30);
    handle.unref();
    timers.push({ check, intervalMs, handle, cleared: false });
    return handle;
  }) as typeof setInterval;
  globalThis.clearInterval = ((handle: NodeJS.Timeout | undefined) => {
    for (const timer of timers) if (timer.handle === handle) timer.cleared = true;
    realClear(handle);
  }) as typeof clearInterval;
  try {
    await body(timers);
  } finally {
    globalThis.setInterval = realSet;
    globalThis.clearInterval = realClear;
    for (const timer of timers) realClear(timer.handle);
  }
}

const armed = (timers: SetTimer[]): SetTimer[] => timers.filter((timer) => !timer.cleared);

test('idle watchdogs set no timer: a thousand of them, none', async () => {
  await withRecordedTimers((timers) => {
    const watchdogs = Array.from({ length: 1000 }, (_, index) => new CommandWatchdog({ thresholdMs: 10_000, logger: new RecordingLogger(), monitorName: () => `vm${index}` }));
    assert.is(timers.length, 0);
    for (const watchdog of watchdogs) watchdog.stop();
  });
});

test('a timer while commands are pending, one however many; cleared by the first check that finds none; set again by the next command', async () => {
  await withRecordedTimers((timers) => {
    const logger = new RecordingLogger();
    const watchdog = new CommandWatchdog({ thresholdMs: 2000, logger, monitorName: () => 'vm' });
    try {
      const session = watchdog.session();
      const now = performance.now();
      session.commandSent('query-status', now - 5000);
      session.commandSent('query-name', now - 10);
      assert.is(timers.length, 1);
      assert.is(timers[0]!.intervalMs, 500);

      // The check the timer makes still tells the stall.
      timers[0]!.check();
      const warning = logger.entries.find((entry) => entry.level === 'warn');
      assert.ok(warning, JSON.stringify(logger.entries));
      assert.is(warning.fields.command, 'query-status');
      assert.is(warning.fields.pending, 2);

      session.commandSettled('query-status', 'ok', now - 5000);
      assert.ok(logger.entries.some((entry) => entry.message.startsWith('QEMU answers again: query-status')), JSON.stringify(logger.entries));
      timers[0]!.check();
      assert.is(armed(timers).length, 1, 'query-name is still pending');

      session.commandSettled('query-name', 'ok', now - 10);
      timers[0]!.check();
      assert.is(armed(timers).length, 0);
      assert.is(watchdog.snapshot().oldestPending, undefined);

      session.commandSent('query-version', performance.now());
      assert.is(timers.length, 2);
      assert.is(armed(timers).length, 1);
    } finally {
      watchdog.stop();
    }
    assert.is(armed(timers).length, 0, 'stop() clears it');
  });
});

test('a stopped watchdog sets no timer for a command sent after', async () => {
  await withRecordedTimers((timers) => {
    const watchdog = new CommandWatchdog({ thresholdMs: 2000, logger: new RecordingLogger(), monitorName: () => 'vm' });
    watchdog.stop();
    watchdog.session().commandSent('query-status', performance.now());
    assert.is(timers.length, 0);
  });
});

test.run();
