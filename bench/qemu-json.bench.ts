/**
 * The two readers of client JSON in lib/qemu-json, in interleaved rounds of
 * one run, on the same texts (no QEMU, no sockets):
 *
 * - pass-through's strict scanner (strict-scan.ts) and the proxy's
 *   streamer with its parser (streamer.ts, parser.ts), each against
 *   JSON.parse of the same text, for scale;
 * - pass-through's text read by the proxy's streamer and parser instead of
 *   its own scanner (what one scanner for both would cost pass-through),
 *   against the strict scanner.
 *
 *   node dist/bench/qemu-json.bench.js
 */
import { pathToFileURL } from 'node:url';
import { parseTokenGroup } from '../lib/qemu-json/parser.js';
import { scanJson } from '../lib/qemu-json/strict-scan.js';
import { QemuJsonStreamer } from '../lib/qemu-json/streamer.js';
import type { TokenGroup } from '../lib/qemu-json/tokens.js';
import { interleaved, reportResults, type BenchResult } from './measure.js';

const ROUNDS = 5;
const ROUND_MS = 150;

const WORKLOADS: ReadonlyArray<{ name: string; text: string }> = [
  { name: 'query-status with an id (34 B)', text: '{"execute":"query-status","id":7}' },
  {
    name: 'blockdev-add with nested arguments (250 B)',
    text: JSON.stringify({
      execute: 'blockdev-add',
      arguments: {
        driver: 'qcow2',
        'node-name': 'disk0',
        file: { driver: 'file', filename: '/var/lib/images/disk0.qcow2', 'aio-max-batch': 16 },
        cache: { direct: true, 'no-flush': false },
        discard: 'unmap',
      },
      id: 'add-1',
    }),
  },
  {
    name: 'guest-file-write, 256 KiB string',
    text: JSON.stringify({ execute: 'guest-file-write', arguments: { handle: 1, 'buf-b64': 'QUJD'.repeat(65536) } }),
  },
  {
    name: '20,000-item integer list (~110 KiB)',
    text: JSON.stringify({ execute: 'x-list', arguments: { items: Array.from({ length: 20000 }, (_, index) => index * 7) } }),
  },
];

/** Calls `work` for about ROUND_MS and returns calls per second. */
function rate(work: () => void): Promise<number> {
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(ROUND_MS) * 1_000_000n;
  let calls = 0;
  let now = started;
  while (now < deadline) {
    for (let batch = 0; batch < 16; batch++) work();
    calls += 16;
    now = process.hrtime.bigint();
  }
  return Promise.resolve((calls * 1e9) / Number(now - started));
}

/** The proxy's reading of one message: bytes into the streamer, the group parsed. */
function streamerReader(): (bytes: Buffer) => void {
  let group: TokenGroup | undefined;
  const streamer = new QemuJsonStreamer(
    {
      group: (tokens) => (group = tokens),
      error: (desc) => {
        throw new Error(desc);
      },
      oversize: () => {
        throw new Error('oversize');
      },
    },
    64 * 1024 * 1024,
  );
  return (bytes) => {
    streamer.push(bytes);
    if (group === undefined || !parseTokenGroup(group).ok) throw new Error('no value');
    group = undefined;
  };
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const { name, text } of WORKLOADS) {
    const bytes = Buffer.from(text, 'utf8');
    const readWithStreamer = streamerReader();
    const strict = (): void => {
      if (!scanJson(text).ok) throw new Error('not JSON');
    };
    const proxy = (): void => readWithStreamer(bytes);
    const passThroughOnStreamer = (): void => readWithStreamer(Buffer.from(text, 'utf8'));
    const parse = (): void => void JSON.parse(text);

    const scan = await interleaved(ROUNDS, () => rate(strict), () => rate(parse));
    results.push({ name: `pass-through scan: ${name}`, qmpx: scan.qmpx, raw: scan.raw, unit: 'op/s', ratio: scan.qmpx / scan.raw, note: 'raw: JSON.parse; higher is better' });
    const streamed = await interleaved(ROUNDS, () => rate(proxy), () => rate(parse));
    results.push({ name: `proxy streamer + parser: ${name}`, qmpx: streamed.qmpx, raw: streamed.raw, unit: 'op/s', ratio: streamed.qmpx / streamed.raw, note: 'raw: JSON.parse; higher is better' });
    const merged = await interleaved(ROUNDS, () => rate(passThroughOnStreamer), () => rate(strict));
    results.push({
      name: `pass-through text on the streamer: ${name}`,
      qmpx: merged.qmpx,
      raw: merged.raw,
      unit: 'op/s',
      ratio: merged.qmpx / merged.raw,
      note: 'raw: the strict scanner on the same text; below 1: one scanner for both would slow pass-through',
    });
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('QEMU-JSON readers', await run());
}
