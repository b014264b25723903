/**
 * monitorCommand on a QMP monitor against the real QEMU: exact reply texts
 * for every row of the pass-through contract. The fake peer appears only
 * where the test must see the bytes qmpx writes (QEMU cannot show them).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AbortError, ConnectionClosedError, connect, silentLogger, type Monitor } from '../../lib/index.js';
import { InvalidArgumentError, monitorCommand } from '../../lib/passthrough/index.js';
import type { QmpMonitor } from '../../lib/qmp/client.js';
import { startFakePeer } from '../helpers/fake-peer.js';
import { rawQmp, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { rejectionOf } from '../helpers/rejection.js';

const test = suite<{ qemu: QemuInstance; monitor: Monitor }>('monitorCommand on QMP against real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu({ extraQmpSockets: 1 });
  context.monitor = await connect(context.qemu.qmpPath, { logger: silentLogger });
});

test.after(async (context) => {
  await context.monitor?.close();
  await context.qemu?.stop();
});

const STATUS = '{"status": "prelaunch", "singlestep": false, "running": false}';
const NOT_FOUND = '{"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}';

test("a command without an id: QEMU's reply text, exactly, with no id", async ({ monitor }) => {
  assert.is(await monitorCommand(monitor, '{"execute":"query-status"}'), `{"return": ${STATUS}}`);
  assert.is(await monitorCommand(monitor, '{"execute":"no-such-command"}'), `{"error": ${NOT_FOUND}}`);
});

test('whitespace and member order in the caller text make no difference', async ({ monitor }) => {
  assert.is(await monitorCommand(monitor, '\r\n { "arguments" : { } ,\t"execute" : "query-status" } \n'), `{"return": ${STATUS}}`);
});

test("the caller's id comes back byte for byte, last on success, first on error", async ({ monitor }) => {
  const ids = ['1e3', '-0', '1.50', '18446744073709551616', '123456789012345678901234567890', '{ "a" : [1,2] }', '"caf\\u00e9"', '"café"', 'null', '[]', 'true', '"x"'];
  for (const id of ids) {
    assert.is(await monitorCommand(monitor, `{"execute":"query-status","id":${id}}`), `{"return": ${STATUS}, "id": ${id}}`, id);
    assert.is(await monitorCommand(monitor, `{"id":${id},"execute":"no-such-command"}`), `{"id": ${id}, "error": ${NOT_FOUND}}`, id);
  }
});

test('number tokens reach QEMU exactly as written, and come back as QEMU wrote them', async ({ monitor }) => {
  const maxUint64 = '18446744073709551615';
  assert.is(await monitorCommand(monitor, `{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":${maxUint64}}}`), '{"return": {}}');
  const parameters = await monitorCommand(monitor, '{"execute":"query-migrate-parameters"}');
  assert.ok(parameters.includes(`"max-bandwidth": ${maxUint64},`), parameters);
  assert.is((await monitor.execute<Record<string, unknown>>('query-migrate-parameters'))['max-bandwidth'], 2n ** 64n - 1n);
  // QEMU takes 1000 for a uint64 but not 1e3: the token was not normalised on the way.
  assert.is(await monitorCommand(monitor, '{"execute":"migrate-set-parameters","arguments":{"downtime-limit":1e3}}'), `{"error": {"class": "GenericError", "desc": "Parameter 'downtime-limit' expects uint64"}}`);
  assert.is(await monitorCommand(monitor, '{"execute":"migrate-set-parameters","arguments":{"downtime-limit":1000}}'), '{"return": {}}');
});

test('what qmpx writes: compact, no id, every number token and the arguments intact', async () => {
  const peer = await startFakePeer();
  const wire = '{"execute":"x-test","arguments":{"n":18446744073709551615,"f":1.50,"e":-0.0E+1,"s":"café","__proto__":{"k":[]}}}';
  peer.expect('qmp_capabilities').reply({ return: {} }).expect({ text: wire }).reply({ return: {} });
  const monitor = await connect(peer.path, { logger: silentLogger });
  try {
    const caller = '{ "id": 7, "arguments": { "n": 18446744073709551615, "f": 1.50, "e": -0.0E+1, "s": "caf\\u00e9", "__proto__": {"k": [ ]} },\n "execute": "x-test" }';
    assert.is(await monitorCommand(monitor, caller), '{"return": {}, "id": 7}');
    await peer.done();
  } finally {
    await monitor.close();
    await peer.close();
  }
});

test('input QEMU would refuse is answered locally and never written upstream', async () => {
  const peer = await startFakePeer();
  peer.expect('qmp_capabilities').reply({ return: {} });
  const monitor = await connect(peer.path, { oob: false, logger: silentLogger });
  try {
    const refused: [string, string][] = [
      ['[1,2]', 'QMP input must be a JSON object'],
      ['42', 'QMP input must be a JSON object'],
      ['{}', "QMP input lacks member 'execute'"],
      ['{"exec-oob":"query-status"}', "QMP input member 'exec-oob' is unexpected"],
      ['{"execute":"query-status","execute":"query-status"}', 'JSON parse error, duplicate key'],
      ['{"execute":"query-status","arguments":{"s":"\\udc00"}}', 'JSON parse error, \\\\udc00 is not a valid Unicode character'],
      [`{"execute":"query-status","arguments":{"a":${'['.repeat(1100)}${']'.repeat(1100)}}}`, 'JSON nesting depth limit exceeded'],
    ];
    for (const [input, desc] of refused) {
      assert.is(await monitorCommand(monitor, input), `{"error": {"class": "GenericError", "desc": "${desc}"}}`, input);
    }
    assert.is(
      await monitorCommand(monitor, '{"execute":"query-status","id":["a"],"foo":1}'),
      `{"id": ["a"], "error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}`,
    );
    assert.equal(peer.commands(), ['qmp_capabilities'], 'only the negotiation reached the peer');
    await peer.done();
  } finally {
    await monitor.close();
    await peer.close();
  }
});

test("within the room qmpx's own id needs of QEMU's token limit: refused locally; below it: sent", async () => {
  const peer = await startFakePeer();
  peer.expect('qmp_capabilities').reply({ return: {} }).expect('x-test').reply({ return: {} });
  const monitor = await connect(peer.path, { logger: silentLogger });
  try {
    // 2n + 13 tokens. QEMU itself would take up to 2^21; qmpx keeps 4 for `,"id":N`.
    const withItems = (n: number): string => `{"execute":"x-test","arguments":{"a":[${Array(n).fill('0').join(',')}]}}`;
    assert.is(await monitorCommand(monitor, withItems(1048569)), '{"error": {"class": "GenericError", "desc": "JSON token count limit exceeded"}}');
    assert.is(await monitorCommand(monitor, withItems(1048567)), '{"return": {}}');
    assert.equal(peer.commands(), ['qmp_capabilities', 'x-test']);
    await peer.done();
  } finally {
    await monitor.close();
    await peer.close();
  }
});

test('text that is not JSON rejects with InvalidArgumentError, reason and position; nothing is sent', async ({ monitor }) => {
  const cases: [string, string, number][] = [
    ['query-status', "cannot parse JSON: JSON value expected but got 'q' at position 0", 0],
    ['{"execute":', 'cannot parse JSON: JSON value expected but reached end of input at position 11', 11],
    ['{"execute":"query-status"} {"x":1}', "cannot parse JSON: Expected end of input but got '{' at position 27", 27],
    ['', 'cannot parse JSON: JSON value expected but reached end of input at position 0', 0],
    ["{'execute':'query-status'}", "cannot parse JSON: Quoted object key expected but got ''' at position 1", 1],
  ];
  for (const [input, message, position] of cases) {
    const error = await rejectionOf(monitorCommand(monitor, input));
    assert.instance(error, InvalidArgumentError);
    assert.is(error.message, message);
    assert.is((error as InvalidArgumentError).position, position);
    assert.is((error as InvalidArgumentError).code, 'INVALID_ARGUMENT');
  }
  assert.is((monitor as QmpMonitor).pendingCount, 0);
  assert.is(await monitorCommand(monitor, '{"execute":"query-status"}'), `{"return": ${STATUS}}`);
});

test("qmp_capabilities through pass-through gets QEMU's own 'already complete' error", async ({ monitor }) => {
  const desc = '"desc": "Capabilities negotiation is already complete, command ignored"';
  assert.is(await monitorCommand(monitor, '{"execute":"qmp_capabilities"}'), `{"error": {"class": "CommandNotFound", ${desc}}}`);
  assert.is(
    await monitorCommand(monitor, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":"neg"}'),
    `{"id": "neg", "error": {"class": "CommandNotFound", ${desc}}}`,
  );
});

test("exec-oob (OOB negotiated): the caller's id replaces qmpx's wire id, and no id is left without one", async ({ monitor }) => {
  // The same command in-band, where QEMU sees no id at all, gives the text to expect.
  const inBand = await monitorCommand(monitor, '{"execute":"query-yank"}');
  assert.match(inBand, /^\{"return": \[\{"type": "chardev", "id": "[^"]+"\}/);
  assert.is(await monitorCommand(monitor, '{"exec-oob":"query-yank","id":"y"}'), `${inBand.slice(0, -1)}, "id": "y"}`);
  assert.is(await monitorCommand(monitor, '{"exec-oob":"query-yank"}'), inBand);
  assert.is(
    await monitorCommand(monitor, '{"exec-oob":"query-status","id":3}'),
    '{"id": 3, "error": {"class": "GenericError", "desc": "The command query-status does not support OOB"}}',
  );
  assert.is(
    await monitorCommand(monitor, '{"exec-oob":"query-status"}'),
    '{"error": {"class": "GenericError", "desc": "The command query-status does not support OOB"}}',
  );
});

test('with wireIds every command carries a qmpx id; callers still see only their own', async ({ qemu }) => {
  const monitor = await connect(qemu.extraQmpPaths[0]!, { wireIds: true, logger: silentLogger });
  try {
    assert.is(await monitorCommand(monitor, '{"execute":"query-status","id":"c"}'), `{"return": ${STATUS}, "id": "c"}`);
    assert.is(await monitorCommand(monitor, '{"execute":"query-status"}'), `{"return": ${STATUS}}`);
    assert.is(await monitorCommand(monitor, '{"execute":"no-such-command","id":[1]}'), `{"id": [1], "error": ${NOT_FOUND}}`);
    assert.is(await monitorCommand(monitor, '{"execute":"no-such-command"}'), `{"error": ${NOT_FOUND}}`);
  } finally {
    await monitor.close();
  }
});

test('a pretty=on monitor: the id goes where QEMU puts it in pretty output', async () => {
  const qemu = await startQemu({ pretty: true, extraQmpSockets: 1 });
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  const raw = await rawQmp(qemu.extraQmpPaths[0]!);
  try {
    let consumed = 0;
    /** The next whole object QEMU printed: pretty objects end with a line that is just `}`. */
    const nextObject = async (): Promise<string> => {
      let end = -1;
      await raw.waitForLine(() => (end = raw.lines().indexOf('}', consumed)) >= 0);
      const object = raw.lines().slice(consumed, end + 1).join('\r\n');
      consumed = end + 1;
      return object;
    };
    await nextObject(); // the greeting
    await raw.send('{"execute":"qmp_capabilities"}');
    await nextObject();
    for (const input of ['{"execute":"query-status","id":7}', '{"execute":"no-such-command","id":"x"}', '{"execute":"query-status"}']) {
      await raw.send(input);
      assert.is(await monitorCommand(monitor, input), await nextObject(), input);
    }
  } finally {
    await raw.close();
    await monitor.close();
    await qemu.stop();
  }
});

test('aborting one pass-through call settles only that call', async ({ monitor }) => {
  const controller = new AbortController();
  const first = monitorCommand(monitor, '{"execute":"query-status","id":1}');
  const aborted = monitorCommand(monitor, '{"execute":"query-qmp-schema","id":2}', 0, { signal: controller.signal });
  const third = monitorCommand(monitor, '{"execute":"no-such-command","id":3}');
  controller.abort();
  assert.instance(await rejectionOf(aborted), AbortError);
  assert.is(await first, `{"return": ${STATUS}, "id": 1}`);
  assert.is(await third, `{"id": 3, "error": ${NOT_FOUND}}`);
  assert.is(await monitorCommand(monitor, '{"execute":"query-status"}'), `{"return": ${STATUS}}`);
  assert.is((monitor as QmpMonitor).pendingCount, 0);
});

test('a closed monitor rejects with ConnectionClosedError', async ({ qemu }) => {
  const monitor = await connect(qemu.extraQmpPaths[0]!, { logger: silentLogger });
  await monitor.close();
  assert.instance(await rejectionOf(monitorCommand(monitor, '{"execute":"query-status"}')), ConnectionClosedError);
});

test.run();
