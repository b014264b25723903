import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hmpErrorDesc, hmpErrorText } from '../../lib/hmp/error-text.js';
import { connect, silentLogger, type Monitor } from '../../lib/index.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';

const test = suite<{ qemu: QemuInstance; monitor: Monitor }>('HMP error text, read from real QEMU output');

test.before(async (context) => {
  context.qemu = await startQemu({ qmp: false });
  context.monitor = await connect(context.qemu.hmpPath, { logger: silentLogger });
});

test.after(async (context) => {
  await context.monitor.close();
  await context.qemu.stop();
});

// Each line's output on a guest-less QEMU 7.2 (-machine none -S), and the error line expected from it.
const FAILING: [line: string, errorLine: string][] = [
  ['frobnicate', "unknown command: 'frobnicate'"],
  ['info nosuch', "unknown command: 'info nosuch'"],
  ['device_add nope', "Error: 'nope' is not a valid device model name"],
  ['device_del nope', "Error: Device 'nope' not found"],
  ['device_del', 'device_del: string expected'],
  ['screendump', 'screendump: filename expected'],
  ['stop extra', 'stop|s: extraneous characters at the end of line'],
  ['info status extra', 'status: extraneous characters at the end of line'],
  ['x /4x 0', 'Can not dump without CPU'],
  ['cpu 5', 'invalid CPU index'],
  ['cpu abc', "invalid char 'a' in expression"],
  ['drive_del nope', "Device 'nope' not found"],
  ['sendkey foo', 'invalid parameter: foo'],
  ['object_del nope', "Error: object 'nope' not found"],
  ['gdbserver nope:x', "Could not open gdbserver on device 'nope:x'"],
  ['trace-event nope on', 'unknown event "nope"'],
  ['snapshot_blkdev nope', "Error: Parameter 'snapshot-file' is missing"],
];

const SUCCEEDING = ['info status', 'info version', 'info name', 'info mtree', 'info', 'help stop', 'info history', 'qom-get /machine type', 'print 42', 'info uuid', 'info block'];

test('every failure QEMU printed is recognised, and the first error line is the one reported', async ({ monitor }) => {
  for (const [line, errorLine] of FAILING) {
    const output = await monitor.hmp(line);
    assert.is(hmpErrorText(output), errorLine, `${line} → ${JSON.stringify(output)}`);
  }
});

test('ordinary output, help text and history are not mistaken for errors', async ({ monitor }) => {
  for (const line of SUCCEEDING) {
    const output = await monitor.hmp(line);
    assert.is(hmpErrorText(output), null, `${line} → ${JSON.stringify(output.slice(0, 200))}`);
  }
});

test('the hint after a parse error is recognised on its own', () => {
  assert.is(hmpErrorText('Try "help memsave" for more information\r\n'), 'Try "help memsave" for more information');
});

test('CRLF and LF line ends give the same line; the desc drops only the "Error: " prefix', () => {
  assert.is(hmpErrorText("Error: Device 'x' not found\r\n"), "Error: Device 'x' not found");
  assert.is(hmpErrorText("ok\nError: Device 'x' not found\n"), "Error: Device 'x' not found");
  assert.is(hmpErrorDesc("Error: Device 'x' not found\r\n"), "Device 'x' not found");
  assert.is(hmpErrorDesc("unknown command: 'x'\r\n"), "unknown command: 'x'");
  assert.is(hmpErrorDesc('VM status: running\r\n'), null);
});

test.run();
