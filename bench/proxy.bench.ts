/**
 * Proxy benchmarks (issue 5): `qmpx serve` in its own process, measured in
 * the same run against a direct connection to the same QEMU (a second QMP
 * monitor of it), in interleaved rounds or taking turns command by command:
 *
 * - pipelined throughput through the proxy vs direct (target ≥ 0.9×);
 * - sequential round trip, and what the proxy adds (target ≤ 60 µs);
 * - event fan-out from a flooding fake upstream to 1, 10 and 100 clients:
 *   deliveries/s and the proxy's CPU, against one reader on the flood itself;
 * - the proxy's RSS with 100 idle clients, and with 1,000 configured
 *   monitors (fake upstreams), against the same proxy idle with one.
 *
 *   node dist/bench/proxy.bench.js
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { interleaved, median, reportResults, type BenchResult } from './measure.js';
import { rawPipelinedRate, rawSequentialMicros, RawQmpClient } from './raw-client.js';
import { ServeProcess } from './serve-process.js';

const ROUNDS = 9;
const PIPELINED = 5000;
const SEQUENTIAL = 2000;
const FAN_OUT_DELIVERIES = 2_000_000;
const IDLE_CLIENTS = 100;
const MONITORS = 1000;
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';
const EVENT = '{"timestamp": {"seconds": 1795634785, "microseconds": 190685}, "event": "STOP"}\r\n';

/** Resolves once something accepts connections at `path` (socat has no readiness signal); throws after 10 s. */
async function waitForSocket(path: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = net.createConnection(path);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (accepted) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${path}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A fake upstream: greets like QEMU, answers qmp_capabilities, then floods `count` events (or stays idle). */
async function startFakeUpstream(path: string, floodEvents = 0): Promise<net.Server> {
  const block = Buffer.from(EVENT.repeat(Math.floor(65536 / EVENT.length)));
  const perBlock = Math.floor(65536 / EVENT.length);
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write(GREETING);
    socket.once('data', () => {
      socket.write('{"return": {}}\r\n');
      let sent = 0;
      const pump = (): void => {
        while (sent < floodEvents) {
          sent += perBlock;
          if (!socket.write(block)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      if (floodEvents > 0) server.emit('flood', pump);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

/** Events per second one raw client takes straight from the flooding peer. */
async function directFloodRate(dir: string, events: number): Promise<number> {
  const path = socketPathIn(dir, 'direct-flood.sock');
  const perBlock = Math.floor(65536 / EVENT.length);
  const total = Math.ceil(events / perBlock) * perBlock;
  const server = await startFakeUpstream(path, total);
  let startFlood: (() => void) | undefined;
  server.once('flood', (pump: () => void) => (startFlood = pump));
  const client = await RawQmpClient.open(path, false);
  const started = performance.now();
  const counted = client.countLines(total);
  startFlood!();
  await counted;
  const rate = total / ((performance.now() - started) / 1000);
  client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return rate;
}

/** Deliveries per second and the proxy's CPU share with `clients` negotiated clients on a flooded proxy. */
async function fanOut(dir: string, clients: number): Promise<{ rate: number; cpu: number }> {
  const upstreamPath = socketPathIn(dir, `flood-${clients}.sock`);
  const qmpPath = socketPathIn(dir, `fan-${clients}.qmp`);
  const perBlock = Math.floor(65536 / EVENT.length);
  const events = Math.ceil(FAN_OUT_DELIVERIES / clients / perBlock) * perBlock;
  const server = await startFakeUpstream(upstreamPath, events);
  let startFlood: (() => void) | undefined;
  server.once('flood', (pump: () => void) => (startFlood = pump));
  const serve = await ServeProcess.start(['--upstream', upstreamPath, '--qmp', qmpPath, '--name', 'flood', '--max-client-buffer', '256MiB'], 1);
  try {
    const readers = await Promise.all(Array.from({ length: clients }, () => RawQmpClient.open(qmpPath, false)));
    const cpuBefore = serve.cpuSeconds();
    const started = performance.now();
    const counted = Promise.all(readers.map((reader) => reader.countLines(events)));
    startFlood!();
    await counted;
    const seconds = (performance.now() - started) / 1000;
    const cpu = (serve.cpuSeconds() - cpuBefore) / seconds;
    for (const reader of readers) reader.close();
    return { rate: (events * clients) / seconds, cpu };
  } finally {
    await serve.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function idleClientsRss(upstream: string, dir: string): Promise<{ idle: number; loaded: number }> {
  const qmpPath = socketPathIn(dir, 'idle.qmp');
  const serve = await ServeProcess.start(['--upstream', upstream, '--qmp', qmpPath, '--name', 'idle'], 1);
  try {
    const idle = serve.rssMiB();
    const clients = await Promise.all(Array.from({ length: IDLE_CLIENTS }, () => RawQmpClient.open(qmpPath, false)));
    const loaded = serve.rssMiB();
    for (const client of clients) client.close();
    return { idle, loaded };
  } finally {
    await serve.stop();
  }
}

async function manyMonitorsRss(dir: string): Promise<{ one: number; many: number }> {
  const servers: net.Server[] = [];
  const monitors: Array<{ name: string; upstream: string; qmp: string }> = [];
  for (let index = 0; index < MONITORS; index++) {
    const upstream = socketPathIn(dir, `up-${index}.sock`);
    servers.push(await startFakeUpstream(upstream));
    monitors.push({ name: `vm${index}`, upstream, qmp: socketPathIn(dir, `vm${index}.qmp`) });
  }
  const measure = async (count: number): Promise<number> => {
    const configPath = join(dir, `serve-${count}.json`);
    await writeFile(configPath, JSON.stringify({ logLevel: 'info', monitors: monitors.slice(0, count) }));
    const serve = await ServeProcess.start(['--config', configPath], count);
    const rss = serve.rssMiB();
    await serve.stop();
    return rss;
  };
  try {
    return { one: await measure(1), many: await measure(MONITORS) };
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const dir = createTempDir('proxy-bench');
  const qemu = await startQemu({ hmp: false, extraQmpSockets: 2 });
  const direct = qemu.extraQmpPaths[0]!;
  const proxied = socketPathIn(dir, 'proxied.qmp');
  const relayed = socketPathIn(dir, 'socat.sock');
  try {
    const serve = await ServeProcess.start(['--upstream', qemu.qmpPath, '--qmp', proxied, '--name', 'bench'], 1);
    // The cost of any process in the middle, for scale: socat relaying bytes to a third monitor of the same QEMU.
    const socat = spawn('socat', [`UNIX-LISTEN:${relayed},fork`, `UNIX-CONNECT:${qemu.extraQmpPaths[1]!}`], { stdio: 'ignore' });
    try {
      await waitForSocket(relayed);
      const pipelined = await interleaved(ROUNDS, () => rawPipelinedRate(proxied, PIPELINED), () => rawPipelinedRate(direct, PIPELINED));
      results.push({
        name: `pipelined ${PIPELINED} query-status, through proxy vs direct`,
        qmpx: pipelined.qmpx,
        raw: pipelined.raw,
        unit: 'cmd/s',
        ratio: pipelined.qmpx / pipelined.raw,
        note: 'higher is better; target ≥ 0.9',
      });
      const rounds = [];
      for (let round = 0; round < 3; round++) rounds.push(await rawSequentialMicros([proxied, direct, relayed], SEQUENTIAL));
      const sequential = { qmpx: median(rounds.map((r) => r[0]!)), raw: median(rounds.map((r) => r[1]!)) };
      const socatAdds = median(rounds.map((r) => r[2]!)) - sequential.raw;
      results.push({
        name: `sequential ${SEQUENTIAL} query-status, median round trip`,
        qmpx: sequential.qmpx,
        raw: sequential.raw,
        unit: 'µs',
        ratio: sequential.qmpx / sequential.raw,
        note: `the proxy adds ${(sequential.qmpx - sequential.raw).toFixed(0)} µs (target ≤ 60); a socat relay adds ${socatAdds.toFixed(0)} µs in the same run`,
      });
    } finally {
      socat.kill();
      await serve.stop();
    }
    const rss = await idleClientsRss(qemu.qmpPath, dir);
    results.push({
      name: `proxy RSS with ${IDLE_CLIENTS} idle negotiated clients`,
      qmpx: rss.loaded,
      raw: rss.idle,
      unit: 'MiB',
      ratio: rss.loaded / rss.idle,
      note: `raw: the same proxy with no client; ${(((rss.loaded - rss.idle) * 1024) / IDLE_CLIENTS).toFixed(1)} KiB per client`,
    });
  } finally {
    await qemu.stop();
  }
  try {
    const direct = median([await directFloodRate(dir, 1_000_000), await directFloodRate(dir, 1_000_000), await directFloodRate(dir, 1_000_000)]);
    for (const clients of [1, 10, 100]) {
      const rounds = [await fanOut(dir, clients), await fanOut(dir, clients), await fanOut(dir, clients)];
      const rate = median(rounds.map((round) => round.rate));
      const cpu = median(rounds.map((round) => round.cpu));
      results.push({
        name: `event fan-out to ${clients} client${clients === 1 ? '' : 's'} (${EVENT.length} B events)`,
        qmpx: rate,
        raw: direct,
        unit: 'deliv/s',
        ratio: rate / direct,
        note: `raw: one reader on the flood itself; proxy CPU ${(cpu * 100).toFixed(0)}% of a core`,
      });
    }
    const many = await manyMonitorsRss(dir);
    results.push({
      name: `proxy RSS with ${MONITORS} configured monitors (fake upstreams)`,
      qmpx: many.many,
      raw: many.one,
      unit: 'MiB',
      ratio: many.many / many.one,
      note: `raw: the same proxy with one monitor; ${(((many.many - many.one) * 1024) / (MONITORS - 1)).toFixed(1)} KiB per monitor`,
    });
  } finally {
    await removeTempDir(dir);
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('proxy', await run());
}
