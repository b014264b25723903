/**
 * QMP core benchmarks (issue: QMP client core): qmpx against a raw-socket
 * client on the same QEMU in the same run, interleaved rounds.
 *
 *   node dist/bench/qmp.bench.js
 */
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { connect, silentLogger, type Monitor } from '../lib/index.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { interleaved, median, reportResults, progress, rssMiB, takeTurns, type BenchResult } from './measure.js';
import { RawQmpClient } from './raw-client.js';

const ROUNDS = 9;
const PIPELINED = 5000;
const SEQUENTIAL = 2000;
const SCHEMA_CALLS = 10;

async function pipelinedRate(path: string, useQmpx: boolean): Promise<number> {
  if (useQmpx) {
    const monitor = await connect(path, { logger: silentLogger });
    const started = performance.now();
    await Promise.all(Array.from({ length: PIPELINED }, () => monitor.execute('query-status')));
    const seconds = (performance.now() - started) / 1000;
    await monitor.close();
    return PIPELINED / seconds;
  }
  const raw = await RawQmpClient.open(path, true);
  const started = performance.now();
  raw.write('{"execute":"query-status"}\n'.repeat(PIPELINED));
  await raw.next(PIPELINED);
  const seconds = (performance.now() - started) / 1000;
  raw.close();
  return PIPELINED / seconds;
}

/**
 * Sequential round trips drift up to 2x between rounds on a shared machine
 * (docs/monitor-facts.md §7), so qmpx and the raw client each hold their own monitor socket on
 * the same QEMU and alternate command by command, taking turns at going first.
 */
async function sequentialMedianMicros(qmpxPath: string, rawPath: string): Promise<{ qmpx: number; raw: number }> {
  const monitor = await connect(qmpxPath, { logger: silentLogger });
  const raw = await RawQmpClient.open(rawPath, true);
  const qmpxSamples: number[] = [];
  const rawSamples: number[] = [];
  const timeQmpx = async (): Promise<void> => {
    const started = performance.now();
    await monitor.execute('query-status');
    qmpxSamples.push(performance.now() - started);
  };
  const timeRaw = async (): Promise<void> => {
    const started = performance.now();
    raw.write('{"execute":"query-status"}\n');
    JSON.parse((await raw.next(1))[0]!);
    rawSamples.push(performance.now() - started);
  };
  await takeTurns(SEQUENTIAL, timeQmpx, timeRaw);
  await monitor.close();
  raw.close();
  return { qmpx: median(qmpxSamples) * 1000, raw: median(rawSamples) * 1000 };
}

async function schemaMillis(path: string, useQmpx: boolean): Promise<number> {
  const samples: number[] = [];
  if (useQmpx) {
    const monitor = await connect(path, { logger: silentLogger });
    for (let i = 0; i < SCHEMA_CALLS; i++) {
      const started = performance.now();
      await monitor.execute('query-qmp-schema');
      samples.push(performance.now() - started);
    }
    await monitor.close();
  } else {
    const raw = await RawQmpClient.open(path, true);
    for (let i = 0; i < SCHEMA_CALLS; i++) {
      const started = performance.now();
      raw.write('{"execute":"query-qmp-schema"}\n');
      // A client that wants the schema has to parse it too.
      JSON.parse((await raw.next(1))[0]!);
      samples.push(performance.now() - started);
    }
    raw.close();
  }
  return median(samples);
}

const SMALL_EVENT = '{"timestamp": {"seconds": 1795634785, "microseconds": 190685}, "event": "STOP"}\r\n';
// 180 bytes with CRLF: the size of a typical event with data.
const REALISTIC_EVENT =
  '{"timestamp": {"seconds": 1795634785, "microseconds": 190685}, "event": "VSERPORT_CHANGE", "data": {"open": true, "id": "org.qemu.guest_agent.0-virtio-serial-port-channel-01"}}\r\n';

/**
 * A peer that greets, accepts negotiation and then writes `count` copies of
 * `event` as fast as the socket takes them: QEMU cannot flood on demand.
 */
async function startFloodingPeer(event: string, count: number): Promise<{ path: string; close(): Promise<void>; sent: number }> {
  const dir = createTempDir('flood');
  const path = socketPathIn(dir, 'flood.sock');
  const perBlock = Math.max(1, Math.floor(65536 / event.length));
  const block = Buffer.from(event.repeat(perBlock));
  const total = Math.ceil(count / perBlock) * perBlock;
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write('{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\r\n');
    socket.once('data', () => {
      socket.write('{"return": {}}\r\n');
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += perBlock;
          if (!socket.write(block)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    sent: total,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeTempDir(dir);
    },
  };
}

async function floodRate(event: string, useQmpx: boolean): Promise<{ rate: number; rss: number }> {
  const peer = await startFloodingPeer(event, 1_000_000);
  try {
    const started = performance.now();
    if (useQmpx) {
      const monitor: Monitor = await connect(peer.path, { logger: silentLogger });
      let count = 0;
      await new Promise<void>((resolve) =>
        monitor.events$.subscribe(() => {
          if (++count === peer.sent) resolve();
        }),
      );
      const rate = count / ((performance.now() - started) / 1000);
      const rss = rssMiB();
      await monitor.close();
      return { rate, rss };
    }
    const raw = await RawQmpClient.open(peer.path, false);
    await raw.countLines(peer.sent, true);
    const rate = peer.sent / ((performance.now() - started) / 1000);
    raw.close();
    return { rate, rss: rssMiB() };
  } finally {
    await peer.close();
  }
}

export async function run(): Promise<BenchResult[]> {
  const qemu = await startQemu({ hmp: false, extraQmpSockets: 1 });
  const results: BenchResult[] = [];
  try {
    progress('qmp: pipelined');
    const pipelined = await interleaved(ROUNDS, () => pipelinedRate(qemu.qmpPath, true), () => pipelinedRate(qemu.qmpPath, false));
    results.push({ name: `pipelined ${PIPELINED} query-status, oob`, qmpx: pipelined.qmpx, raw: pipelined.raw, unit: 'cmd/s', ratio: pipelined.qmpx / pipelined.raw, note: `higher is better; target ≥ 0.95; process RSS ${rssMiB()} MiB` });
    progress('qmp: sequential');
    const sequentialRounds = [];
    for (let round = 0; round < 3; round++) sequentialRounds.push(await sequentialMedianMicros(qemu.qmpPath, qemu.extraQmpPaths[0]!));
    const sequential = { qmpx: median(sequentialRounds.map((r) => r.qmpx)), raw: median(sequentialRounds.map((r) => r.raw)) };
    results.push({ name: `sequential ${SEQUENTIAL} query-status, median`, qmpx: sequential.qmpx, raw: sequential.raw, unit: 'µs', ratio: sequential.qmpx / sequential.raw, note: `lower is better; target ≤ 1.10; alternating command by command; process RSS ${rssMiB()} MiB` });
    progress('qmp: query-qmp-schema');
    const schema = await interleaved(ROUNDS, () => schemaMillis(qemu.qmpPath, true), () => schemaMillis(qemu.qmpPath, false));
    results.push({ name: 'query-qmp-schema (207 KB), median', qmpx: schema.qmpx, raw: schema.raw, unit: 'ms', ratio: schema.qmpx / schema.raw, note: `lower is better; target ≤ 1.10; raw parses too; process RSS ${rssMiB()} MiB` });
  } finally {
    await qemu.stop();
  }
  for (const [label, event] of [
    [`small events (${SMALL_EVENT.length} B)`, SMALL_EVENT],
    [`realistic events (${REALISTIC_EVENT.length} B)`, REALISTIC_EVENT],
  ] as const) {
    progress(`qmp: event flood, ${label}`);
    const qmpxRounds: number[] = [];
    const rawRounds: number[] = [];
    let rss = 0;
    for (let round = 0; round < 3; round++) {
      const measured = await floodRate(event, true);
      qmpxRounds.push(measured.rate);
      rss = Math.max(rss, measured.rss);
      rawRounds.push((await floodRate(event, false)).rate);
    }
    const qmpx = median(qmpxRounds);
    const raw = median(rawRounds);
    results.push({
      name: `event flood, ${label}, parsed + emitted`,
      qmpx,
      raw,
      unit: 'events/s',
      ratio: qmpx / raw,
      note: `target ≥ 1,000,000/s for small events; raw splits lines and JSON.parses each; peak RSS after qmpx floods ${rss} MiB`,
    });
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('QMP core', await run());
}
