/**
 * The input pacer: bulk chunks are fed whole, in order, slice by slice and
 * round-robin, with `done` once each; small input is not bulk.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BULK_BYTES_PER_TURN, InputPacer, LARGE_MESSAGE_BYTES, SMALL_INPUT_BYTES } from '../../lib/proxy/input-pacer.js';
import { QemuJsonStreamer } from '../../lib/qemu-json/streamer.js';
import { tokenTexts } from '../../lib/qemu-json/tokens.js';

test('small chunks of a client not in a large message are not bulk; large chunks and large messages are', () => {
  const pacer = new InputPacer();
  assert.not.ok(pacer.isBulk(200, 0));
  assert.not.ok(pacer.isBulk(SMALL_INPUT_BYTES, LARGE_MESSAGE_BYTES));
  assert.ok(pacer.isBulk(SMALL_INPUT_BYTES + 1, 0));
  assert.ok(pacer.isBulk(10, LARGE_MESSAGE_BYTES + 1));
});

test('bulk chunks of many clients reach their streamers whole and in order, interleaved fairly', async () => {
  const pacer = new InputPacer();
  const clients = 10;
  const message = `{"execute":"x","arguments":{"list":[${'1,'.repeat(40_000)}1]}}`;
  const outputs: string[][] = [];
  const order: number[] = [];
  const finished: Array<Promise<void>> = [];
  for (let client = 0; client < clients; client++) {
    const out: string[] = [];
    outputs.push(out);
    const streamer = new QemuJsonStreamer({
      group: (group) => out.push(`${group.types.length} ${tokenTexts(group).slice(0, 3).join('')}`),
      error: (desc) => out.push(desc),
      oversize: () => out.push('oversize'),
    });
    const bytes = Buffer.from(message, 'latin1');
    // Two chunks per client, the second queued only once the first is done (as a paused socket would).
    finished.push(
      new Promise((resolve) => {
        const half = bytes.length >> 1;
        const feed = (slice: Buffer): void => {
          order.push(client);
          streamer.push(slice);
        };
        pacer.enqueue(bytes.subarray(0, half), feed, () => pacer.enqueue(bytes.subarray(half), feed, () => resolve()));
      }),
    );
  }
  await Promise.all(finished);
  for (const out of outputs) assert.equal(out, ['80015 {"execute":']);
  // Round-robin: every client is fed in the first turn's worth of slices, before any is fed twice in a row for long.
  const firstTurnClients = new Set(order.slice(0, clients));
  assert.ok(firstTurnClients.size >= Math.min(clients, BULK_BYTES_PER_TURN / 8192), `first slices went to ${[...firstTurnClients].join(',')}`);
  assert.is(pacer.waiting, 0);
});

test.run();
