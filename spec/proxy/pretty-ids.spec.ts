/**
 * A `pretty=on` upstream (`-mon chardev=X,mode=control,pretty=on`): QEMU
 * spreads each reply over several lines, so the id is not where compact
 * output has it. Through the proxy a client must get the bytes QEMU itself
 * gives a client on a pretty monitor: its own id in QEMU's place and layout,
 * never qmpx's wire id, for exec-oob and in-band commands, successes and
 * errors alike. Compared with a direct connection to a second pretty
 * monitor of the same QEMU.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawQmp, type RawClient } from '../helpers/qemu.js';
import { serveQemu } from './harness.js';

async function negotiatedWithOob(path: string): Promise<RawClient> {
  const client = await rawQmp(path);
  await client.waitForText('\r\n}\r\n', 10_000);
  const from = client.text().length;
  await client.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}\n');
  await waitForReply(client, from);
  return client;
}

/** The text received after `from` once it is one whole reply (pretty or compact). */
function waitForReply(client: RawClient, from: number): Promise<string> {
  return client.waitForText(/\r\n\}\r\n$|^\{"[^\r\n]*\r\n$/, 10_000, from);
}

/** Sends `command` alone and resolves with the whole reply to it. */
async function replyTo(client: RawClient, command: string): Promise<string> {
  const from = client.text().length;
  await client.send(`${command}\n`);
  return waitForReply(client, from);
}

const COMMANDS = [
  '{"exec-oob":"query-yank","id":"oob-1"}',
  '{"exec-oob":"query-yank"}',
  '{"execute":"query-status","id":"in-band"}',
  '{"execute":"query-status","id":{"in":["band",{},[]],"n":1}}',
  '{"exec-oob":"query-yank","id":[{"oob":true}]}',
  '{"execute":"no-such-command","id":{"e":[1,2]}}',
  '{"execute":"no-such-command","id":7}',
  '{"exec-oob":"yank","arguments":{"instances":[{"type":"chardev","id":"nope"}]},"id":"oob-error"}',
  '{"execute":"query-name"}',
];

test('pretty=on upstream: exec-oob and in-band replies carry the client’s id in QEMU’s layout, byte for byte as QEMU’s own', async () => {
  const served = await serveQemu({ qemu: { pretty: true, extraQmpSockets: 1 } });
  try {
    const direct = await negotiatedWithOob(served.qemu.extraQmpPaths[0]!);
    const proxied = await negotiatedWithOob(served.qmpPath);
    // One at a time: an OOB reply may overtake, and each reply must be compared with its own.
    const expected: string[] = [];
    const got: string[] = [];
    for (const command of COMMANDS) {
      expected.push(await replyTo(direct, command));
      got.push(await replyTo(proxied, command));
    }
    assert.equal(got, expected);
    const topLevelId = /\r\n {4}"id": /;
    assert.ok(expected[0]!.includes('\r\n    "id": "oob-1"\r\n}') && !topLevelId.test(expected[1]!), 'the comparison covers ids and their absence');
    await direct.close();
    await proxied.close();
  } finally {
    await served.stop();
  }
});

test.run();
