/**
 * 100 clients × 1,000 pipelined commands through one proxy to a real QEMU:
 * 100,000 replies, each to its sender, in its sender's order, with its id
 * intact — strings, integers, objects, and 9007199254740993 (beyond 2^53,
 * where JSON.parse would lose it).
 */
import { parse, stringify, isLosslessNumber } from 'lossless-json';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawQmp, type RawClient } from '../helpers/qemu.js';
import { serveQemu } from './harness.js';

const CLIENTS = 100;
const COMMANDS = 1000;

/** The id text client `client` puts on its command `index`: every kind in turn. */
function idText(client: number, index: number): string {
  switch (index % 5) {
    case 0:
      return JSON.stringify(`c${client}-${index}`);
    case 1:
      return String(client * COMMANDS + index);
    case 2:
      return `{"client":${client},"index":${index},"tag":["x",${index}]}`;
    case 3:
      return '9007199254740993';
    default:
      return `${9007199254740993n + BigInt(client * COMMANDS + index)}`;
  }
}

/** A value with object keys sorted and numbers as their exact text, for comparing ids parsed losslessly. */
function canonical(value: unknown): string {
  return stringify(sortKeys(value)) as string;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object' && !isLosslessNumber(value)) {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
    return sorted;
  }
  return value;
}

test('100 clients × 1,000 pipelined commands: every reply to its sender, in order, ids intact', async () => {
  const served = await serveQemu();
  const clients: RawClient[] = [];
  try {
    for (let client = 0; client < CLIENTS; client++) {
      const raw = await rawQmp(served.qmpPath);
      clients.push(raw);
    }
    await Promise.all(clients.map((raw) => raw.waitForLines(1)));
    await Promise.all(
      clients.map((raw, client) => {
        let batch = '{"execute":"qmp_capabilities"}\n';
        for (let index = 0; index < COMMANDS; index++) batch += `{"execute":"query-status","id":${idText(client, index)}}\n`;
        return raw.send(batch);
      }),
    );
    await Promise.all(clients.map((raw) => raw.waitForLines(2 + COMMANDS, 150_000)));
    let checked = 0;
    clients.forEach((raw, client) => {
      const replies = raw.lines().slice(2, 2 + COMMANDS);
      replies.forEach((line, index) => {
        const reply = parse(line) as { return?: { status?: string }; id?: unknown };
        assert.is(reply.return?.status, 'prelaunch', line);
        assert.is(canonical(reply.id), canonical(parse(idText(client, index))), `client ${client} reply ${index}: ${line}`);
        checked++;
      });
      assert.ok(replies[3]!.endsWith('"id": 9007199254740993}'), replies[3]);
      assert.is(raw.lines().length, 2 + COMMANDS, 'nothing extra');
    });
    assert.is(checked, CLIENTS * COMMANDS);
    assert.is(served.proxy.pendingCount, 0);
    assert.is(served.proxy.upstream.current?.qmp?.pendingCount, 0);
  } finally {
    await Promise.all(clients.map((raw) => raw.close()));
    await served.stop();
  }
});

test.run();
