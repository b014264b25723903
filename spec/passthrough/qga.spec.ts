/**
 * Pass-through on a guest-agent monitor, against the real qemu-ga: it runs
 * QEMU's own QMP dispatcher, so the texts a raw client gets are the texts a
 * pass-through caller must get. qmpx puts its own id on every agent command;
 * callers see only theirs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, silentLogger, UnsupportedError } from '../../lib/index.js';
import { MonitorCommandFlags, monitorCommand } from '../../lib/passthrough/index.js';
import { rawQmp, startQga } from '../helpers/qemu.js';

const INPUTS = [
  '{"execute":"guest-ping","id":"g"}',
  '{"execute":"guest-ping"}',
  '{"execute":"guest-sync","arguments":{"id":9007199254740993},"id":[1, 2]}',
  '{"execute":"no-such-command","id":1}',
  '{"execute":"no-such-command"}',
  '{"execute":"guest-ping","arguments":{"x":1},"id":{"k": null}}',
  '[1,2]',
  '{}',
  '{"id":5}',
  '{"exec-oob":"guest-ping","id":6}',
  '{"execute":"guest-ping","execute":"guest-ping"}',
  '{"execute":"guest-ping","foo":1,"id":"f"}',
];

test('every input gets the text qemu-ga gives a raw client', async () => {
  const qga = await startQga();
  try {
    // The agent serves one client at a time: first the raw answers, then qmpx.
    const raw = await rawQmp(qga.qgaPath);
    const expected: string[] = [];
    for (const [index, input] of INPUTS.entries()) {
      await raw.send(`${input}\n`);
      const [answer] = (await raw.waitForLines(index + 1)).slice(index);
      expected.push(answer!);
    }
    await raw.close();

    const monitor = await connect(qga.qgaPath, { protocol: 'qga', logger: silentLogger });
    try {
      for (const [index, input] of INPUTS.entries()) {
        assert.is(await monitorCommand(monitor, input), expected[index], input);
      }
      assert.is(expected[0], '{"return": {}, "id": "g"}');
      assert.is(expected[2], '{"return": 9007199254740993, "id": [1, 2]}');
      const error = await monitorCommand(monitor, 'info status', MonitorCommandFlags.HMP).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      assert.instance(error, UnsupportedError);
    } finally {
      await monitor.close();
    }
  } finally {
    await qga.stop();
  }
});

test.run();
