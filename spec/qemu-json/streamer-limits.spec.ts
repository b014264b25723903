/**
 * What an unfinished or huge message may cost the streamer: heap bytes in
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
import { MemoryBudget } from '../../lib/proxy/memory-budget.js';

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

function heldNow(): number {
  collectGarbage();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

test('an unfinished message of one-byte tokens costs a small multiple of its bytes, not ~25 bytes a token', () => {
  const messageBytes = 1024 * 1024 - 16;
  const flood = Buffer.from(`[${'1,'.repeat((messageBytes - 1) / 2)}`, 'latin1');
  const connections = 16;
  const before = heldNow();
  const streamers: QemuJsonStreamer[] = [];
  const out: string[] = [];
  for (let i = 0; i < connections; i++) {
    const streamer = new QemuJsonStreamer(recorder(out));
    // As a socket delivers it: 64 KiB reads.
    for (let at = 0; at < flood.length; at += 65536) streamer.push(flood.subarray(at, at + 65536));
    streamers.push(streamer);
  }
  const perConnection = (heldNow() - before) / connections;
  assert.equal(out, [], 'the message is still unfinished');
  assert.ok(streamers.every((streamer) => streamer.midMessage));
  // Token bytes once plus 5 bytes per token: at most 6 bytes per input byte here.
  assert.ok(perConnection < 7 * messageBytes, `${(perConnection / 1048576).toFixed(1)} MiB held per 1 MiB unfinished message`);
  for (const streamer of streamers) assert.ok(streamer.storageHeldBytes <= 6 * streamer.maxMessageBytes);
  for (const streamer of streamers) streamer.close();
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
