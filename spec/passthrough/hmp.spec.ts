/**
 * The HMP flag and the human monitor, against the real QEMU: the same
 * command line gives the same text through QMP's human-monitor-command and
 * on the HMP socket, CRLF line ends kept as libvirt hands them back
 * (docs/monitor-facts.md §5: `'VM status: running\r\n'`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, silentLogger, UnsupportedError, type Monitor } from '../../lib/index.js';
import { MonitorCommandFlags, monitorCommand } from '../../lib/passthrough/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance; qmp: Monitor; hmp: Monitor }>('pass-through HMP and the human monitor');

test.before(async (context) => {
  context.qemu = await startQemu();
  context.qmp = await connect(context.qemu.qmpPath, { logger: silentLogger });
  context.hmp = await connect(context.qemu.hmpPath, { logger: silentLogger });
});

test.after(async (context) => {
  await context.qmp?.close();
  await context.hmp?.close();
  await context.qemu?.stop();
});

const { HMP } = MonitorCommandFlags;

test("HMP flag on a QMP monitor: human-monitor-command's return string, CRLF kept", async ({ qmp }) => {
  assert.is(qmp.protocol, 'qmp');
  assert.is(await monitorCommand(qmp, 'info status', HMP), 'VM status: paused (prelaunch)\r\n');
  assert.is(await monitorCommand(qmp, 'frobnicate', HMP), "unknown command: 'frobnicate'\r\n");
  assert.is(await monitorCommand(qmp, '', HMP), '');
  // The line is a command line, not JSON: libvirt's capture shows the same text.
  assert.is(await monitorCommand(qmp, '{"execute":"query-status"}', HMP), `unknown command: '{"execute":"query-status"}'\r\n`);
  const version = await monitorCommand(qmp, 'info version', HMP);
  assert.match(version, /^7\.2\.\d+Debian .*\r\n$/);
});

test('HMP flag on an HMP monitor: the line as typed, the same text as through QMP', async ({ qmp, hmp }) => {
  assert.is(hmp.protocol, 'hmp');
  for (const line of ['info status', 'frobnicate', 'info version', 'info name', 'help info']) {
    assert.is(await monitorCommand(hmp, line, HMP), await monitorCommand(qmp, line, HMP), line);
  }
  assert.is(await monitorCommand(hmp, 'info status', HMP), 'VM status: paused (prelaunch)\r\n');
});

test('QMP JSON on an HMP monitor: commands HMP can answer give the QMP reply text', async ({ qmp, hmp }) => {
  const inputs = [
    '{"execute":"query-status","id":1}',
    '{"execute":"query-version"}',
    '{"execute":"query-name","id":{"n": [1]}}',
    '{"execute":"query-status","arguments":{"x":1},"id":"bad-argument"}',
    '{"execute":"human-monitor-command","arguments":{"command-line":"info status"},"id":2}',
    // Refused before any monitor is involved: QEMU's text either way.
    '[1,2]',
    '{"execute":"query-status","foo":1,"id":3}',
  ];
  for (const input of inputs) {
    assert.is(await monitorCommand(hmp, input), await monitorCommand(qmp, input), input);
  }
  // HMP has no out-of-band execution: exec-oob is what QEMU calls it without OOB.
  assert.is(await monitorCommand(hmp, '{"exec-oob":"query-status"}'), `{"error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`);
});

test('QMP JSON on an HMP monitor: other commands reject with UnsupportedError', async ({ hmp }) => {
  for (const input of ['{"execute":"query-qmp-schema"}', '{"execute":"qmp_capabilities"}', '{"execute":"no-such-command","id":1}']) {
    const error = await rejectionOf(monitorCommand(hmp, input));
    assert.instance(error, UnsupportedError, input);
    assert.match(error.message, /not available on a human monitor/);
  }
  assert.is(await monitorCommand(hmp, 'info status', HMP), 'VM status: paused (prelaunch)\r\n', 'the monitor is still usable');
});

test('stop and cont through the HMP flag and through JSON, on both monitors', async ({ qmp, hmp }) => {
  assert.is(await monitorCommand(hmp, 'cont', HMP), '');
  assert.is(await monitorCommand(qmp, '{"execute":"query-status"}'), '{"return": {"status": "running", "singlestep": false, "running": true}}');
  assert.is(await monitorCommand(hmp, '{"execute":"stop","id":"s"}'), '{"return": {}, "id": "s"}');
  assert.is(await monitorCommand(hmp, '{"execute":"query-status"}'), '{"return": {"status": "paused", "singlestep": false, "running": false}}');
  assert.is(await monitorCommand(qmp, 'cont', HMP), '');
  assert.is(await monitorCommand(hmp, 'info status', HMP), 'VM status: running\r\n');
});

test.run();
