/**
 * What an unfinished or huge message may cost the streamer: storage in
 * proportion to its token bytes (not to its token count), QEMU's token
 * count limit with QEMU's own error, and the process-wide budget.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_TOKEN_COUNT } from '../../lib/qemu-json/limits.js';
import { QemuJsonStreamer, type StreamerSink } from '../../lib/qemu-json/streamer.js';
import { tokenTexts } from '../../lib/qemu-json/tokens.js';
import { MemoryBudget } from '../../lib/net/memory-budget.js';

// A full, synchronous collection on demand: gc() after --expose-gc.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function recorder(out: string[]): StreamerSink {
  return {
    group: (group) => out.push(group.types.length > 8 ? `group of ${group.types.length}` : `group ${tokenTexts(group).join(' ')}`),
    error: (desc) => out.push(`error ${desc}`),
    oversize: (bytes, limit) => out.push(`oversize ${bytes} ${limit}`),
    outOfBudget: (held) => out.push(`out of budget ${held}`),
  };
}

/** Lets the current job end (WeakRef targets stay alive until it does), then collects everything unreachable. */
async function collectAllGarbage(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
}

/**
 * Pushes `text` as a socket delivers it, in 64 KiB reads, each a buffer of
 * its own; returns weak references to the reads. A function of its own so
 * that no suspended frame of the caller still holds the last read.
 */
function pushAsReads(streamer: QemuJsonStreamer, text: string): WeakRef<Buffer>[] {
  const reads: WeakRef<Buffer>[] = [];
  for (let at = 0; at < text.length; at += 65536) {
    const read = Buffer.from(text.slice(at, at + 65536), 'latin1');
    reads.push(new WeakRef(read));
    streamer.push(read);
  }
  return reads;
}

// What an unfinished message costs is counted, not sampled from the heap: the
// streamer's storage (its own count of the bytes it retains, which the
// process budget is charged with) and proof that it retains nothing else of
// the input. A heap measurement would depend on what else the collector has
// or has not freed at that moment.
test('an unfinished message of one-byte tokens costs a small multiple of its bytes, not ~25 bytes a token', async () => {
  const messageBytes = 1024 * 1024 - 16;
  const flood = `[${'1,'.repeat((messageBytes - 1) / 2)}`;
  const out: string[] = [];
  const streamer = new QemuJsonStreamer(recorder(out));
  const reads = pushAsReads(streamer, flood);
  assert.equal(out, [], 'the message is still unfinished');
  assert.ok(streamer.midMessage);
  assert.is(streamer.unfinishedBytes, flood.length, 'every byte is a token byte');
  // Token bytes once plus 5 bytes per token (a type byte, a 4-byte end), in storage grown by doubling.
  assert.ok(streamer.storageHeldBytes < 7 * messageBytes, `${(streamer.storageHeldBytes / 1048576).toFixed(1)} MiB held for a 1 MiB unfinished message`);
  assert.ok(streamer.storageHeldBytes <= 6 * streamer.maxMessageBytes);
  // Nothing else is retained: no read is kept once pushed (memory the count above would miss).
  await collectAllGarbage();
  const kept = reads.filter((read) => read.deref() !== undefined).length;
  assert.is(kept, 0, `${kept} of ${reads.length} reads still reachable after a full collection`);
  streamer.close();
});

test("QEMU's token count limit: the 2,097,153rd token is refused with QEMU's error, the message dropped", () => {
  // The reply sequence QEMU 7.2 gives for exactly this input (reproduced against it).
  const input = `[${'1,'.repeat(MAX_TOKEN_COUNT / 2)}1]\n{"execute":"query-status"}\n`;
  const whole: string[] = [];
  new QemuJsonStreamer(recorder(whole), 8 * 1024 * 1024).push(input);
  assert.equal(whole, ['error JSON token count limit exceeded', 'group 1', 'group ]', 'group { "execute" : "query-status" }']);
  const chunked: string[] = [];
  const streamer = new QemuJsonStreamer(recorder(chunked), 8 * 1024 * 1024);
  for (let at = 0; at < input.length; at += 4093) streamer.push(input.slice(at, at + 4093));
  assert.equal(chunked, whole);
});

test('the message limit still counts token bytes only, and storage is given back after a large message', () => {
  const out: string[] = [];
  const streamer = new QemuJsonStreamer(recorder(out), 4096);
  streamer.push(`[${' '.repeat(100_000)}1,${'\n'.repeat(100_000)}2]`);
  assert.equal(out, ['group [ 1 , 2 ]']);
  streamer.push(`[${'1,'.repeat(1500)}1]`);
  assert.equal(out.at(-1), 'group of 3003');
  assert.ok(streamer.storageHeldBytes < 4096, `${streamer.storageHeldBytes} bytes kept between messages`);
});

test('the process budget: growth past the allowance is refused once the pool is spent, other holders keep working', () => {
  const budget = new MemoryBudget(1024 * 1024, 64 * 1024);
  const outs: string[][] = [];
  const hostile: QemuJsonStreamer[] = [];
  for (let i = 0; i < 4; i++) {
    const out: string[] = [];
    outs.push(out);
    const streamer = new QemuJsonStreamer(recorder(out), 1024 * 1024, budget);
    streamer.push(`[${'1,'.repeat(200_000)}`);
    hostile.push(streamer);
  }
  const refused = outs.filter((out) => out.length === 1 && out[0]!.startsWith('out of budget'));
  assert.ok(refused.length >= 1, 'some hostile holder is refused');
  assert.ok(budget.used <= budget.limitBytes);
  // A well-behaved client needs no more than its allowance: it is never refused.
  const good: string[] = [];
  const client = new QemuJsonStreamer(recorder(good), 1024 * 1024, budget);
  client.push('{"execute":"query-status","arguments":{},"id":1}\n');
  assert.equal(good, ['group of 14']);
  for (const streamer of [...hostile, client]) streamer.close();
  assert.is(budget.used, 0, 'closing gives every byte back');
});

test.run();
