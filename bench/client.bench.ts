/**
 * The qmpx client's cost per command: its sequential round trip
 * (`execute('query-status')`, one after another) against a plain raw client
 * that parses each reply (bench/raw-client.ts), both through the same
 * `qmpx serve` and both straight to the same QEMU (target: within 10 µs of
 * the raw client through serve).
 *
 * The four clients take turns command by command, in every order in
 * rotation (allOrders): what ran just before moves a round trip by tens of
 * µs on a shared machine. Each round discards its first commands (V8
 * optimising the path) and reports medians; the figure is the median of
 * the rounds.
 *
 *   node dist/bench/client.bench.js          (QMPX_BENCH_ROUNDS=n: n rounds, default 3)
 */
import { pathToFileURL } from 'node:url';
import { connect, silentLogger } from '../lib/index.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { allOrders, median, progress, reportResults, type BenchResult } from './measure.js';
import { RawQmpClient } from './raw-client.js';
import { ServeProcess } from './serve-process.js';

const ROUNDS = Number(process.env.QMPX_BENCH_ROUNDS ?? 3);
const SEQUENTIAL = 3000;
const DISCARDED = 500;

interface TimedClient {
  name: string;
  roundTrip(): Promise<unknown>;
  close(): Promise<void> | void;
}

async function qmpxClient(name: string, path: string): Promise<TimedClient> {
  const monitor = await connect(path, { logger: silentLogger });
  return { name, roundTrip: () => monitor.execute('query-status'), close: () => monitor.close() };
}

async function rawClient(name: string, path: string): Promise<TimedClient> {
  const raw = await RawQmpClient.open(path, true);
  return {
    name,
    roundTrip: async () => {
      raw.write('{"execute":"query-status"}\n');
      return JSON.parse((await raw.next(1))[0]!) as unknown;
    },
    close: () => raw.close(),
  };
}

/** One round: fresh connections, each client's median round trip (µs) by name. */
async function round(open: () => Promise<TimedClient[]>): Promise<Map<string, number>> {
  const clients = await open();
  const samples = clients.map((): number[] => []);
  const orders = allOrders(clients.length);
  for (let i = 0; i < DISCARDED + SEQUENTIAL; i++) {
    for (const which of orders[i % orders.length]!) {
      const started = performance.now();
      await clients[which]!.roundTrip();
      if (i >= DISCARDED) samples[which]!.push(performance.now() - started);
    }
  }
  for (const client of clients) await client.close();
  return new Map(clients.map((client, index) => [client.name, median(samples[index]!) * 1000]));
}

export async function run(): Promise<BenchResult[]> {
  const dir = createTempDir('client-bench');
  const qemu = await startQemu({ hmp: false, extraQmpSockets: 2 });
  const proxied = socketPathIn(dir, 'proxied.qmp');
  try {
    const serve = await ServeProcess.start(['--upstream', qemu.qmpPath, '--qmp', proxied, '--name', 'bench'], 1);
    const rounds: Array<Map<string, number>> = [];
    try {
      for (let index = 0; index < ROUNDS; index++) {
        progress(`round ${index + 1} of ${ROUNDS}`);
        rounds.push(
          await round(async () => [
            await qmpxClient('qmpx through serve', proxied),
            await rawClient('raw through serve', proxied),
            await qmpxClient('qmpx direct', qemu.extraQmpPaths[0]!),
            await rawClient('raw direct', qemu.extraQmpPaths[1]!),
          ]),
        );
      }
    } finally {
      await serve.stop();
    }
    const figure = (name: string): number => median(rounds.map((figures) => figures.get(name)!));
    const gaps = (qmpx: string, raw: string): string => rounds.map((figures) => (figures.get(qmpx)! - figures.get(raw)!).toFixed(1)).join(', ');
    const throughServe = { qmpx: figure('qmpx through serve'), raw: figure('raw through serve') };
    const direct = { qmpx: figure('qmpx direct'), raw: figure('raw direct') };
    return [
      {
        name: `sequential ${SEQUENTIAL} query-status through serve, qmpx client vs raw client`,
        qmpx: throughServe.qmpx,
        raw: throughServe.raw,
        unit: 'µs',
        ratio: throughServe.qmpx / throughServe.raw,
        note: `qmpx ${(throughServe.qmpx - throughServe.raw).toFixed(1)} µs slower (target ≤ 10); by round: ${gaps('qmpx through serve', 'raw through serve')}`,
      },
      {
        name: `sequential ${SEQUENTIAL} query-status straight to QEMU, qmpx client vs raw client`,
        qmpx: direct.qmpx,
        raw: direct.raw,
        unit: 'µs',
        ratio: direct.qmpx / direct.raw,
        note: `qmpx ${(direct.qmpx - direct.raw).toFixed(1)} µs slower; by round: ${gaps('qmpx direct', 'raw direct')}`,
      },
    ];
  } finally {
    await qemu.stop();
    await removeTempDir(dir);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('client', await run());
}
