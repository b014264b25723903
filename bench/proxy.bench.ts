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
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect, silentLogger, type Monitor } from '../lib/index.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { interleaved, median, reportResults, takeTurns, type BenchResult } from './measure.js';
import { rawPipelinedRate, rawSequentialMicros, RawQmpClient } from './raw-client.js';

const ROUNDS = 9;
const PIPELINED = 5000;
const SEQUENTIAL = 2000;
const FAN_OUT_DELIVERIES = 2_000_000;
const IDLE_CLIENTS = 100;
const MONITORS = 1000;
const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));
const CLOCK_TICKS_PER_SECOND = 100;
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';
const EVENT = '{"timestamp": {"seconds": 1795634785, "microseconds": 190685}, "event": "STOP"}\r\n';

/** `qmpx serve` as a child process; resolves once `ready` upstream links are up. */
class ServeProcess {
  private logText = '';
  private connected = 0;
  private waiters: Array<() => void> = [];

  private constructor(readonly child: ChildProcess) {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      this.logText += text;
      const lines = this.logText.split('\n');
      this.logText = lines.pop()!;
      for (const line of lines) if (line.includes('"msg":"upstream monitor connected"')) this.connected++;
      for (const waiter of this.waiters.splice(0)) waiter();
    });
  }

  static async start(args: string[], ready: number): Promise<ServeProcess> {
    const child = spawn(process.execPath, [MAIN, 'serve', '--log-level', 'info', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const serve = new ServeProcess(child);
    const deadline = Date.now() + 120_000;
    while (serve.connected < ready) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not come up (${serve.connected}/${ready} upstreams)`);
      await new Promise<void>((resolve) => {
        serve.waiters.push(resolve);
        setTimeout(resolve, 1000).unref();
      });
    }
    return serve;
  }

  /** Resident set size, from /proc. */
  rssMiB(): number {
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  }

  /** User + system CPU seconds used so far, from /proc. */
  cpuSeconds(): number {
    const fields = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

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

/**
 * Median round trip of the qmpx client and of the raw client on the same
 * path, taking turns command by command (each going first every other
 * time). The raw client parses each reply, as qmpx does.
 */
async function clientsSideBySide(qmpxPath: string, rawPath: string): Promise<{ qmpx: number; raw: number }> {
  const monitor: Monitor = await connect(qmpxPath, { logger: silentLogger });
  const raw = await RawQmpClient.open(rawPath, true);
  const samples = { qmpx: [] as number[], raw: [] as number[] };
  const timeQmpx = async (): Promise<void> => {
    const started = performance.now();
    await monitor.execute('query-status');
    samples.qmpx.push(performance.now() - started);
  };
  const timeRaw = async (): Promise<void> => {
    const started = performance.now();
    raw.write('{"execute":"query-status"}\n');
    JSON.parse((await raw.next(1))[0]!);
    samples.raw.push(performance.now() - started);
  };
  await takeTurns(SEQUENTIAL, timeQmpx, timeRaw);
  await monitor.close();
  raw.close();
  return { qmpx: median(samples.qmpx) * 1000, raw: median(samples.raw) * 1000 };
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
  const qemu = await startQemu({ hmp: false, extraQmpSockets: 3 });
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
      // Warm-up rounds first: a long-lived client is measured warm.
      const clientRounds = [];
      for (let round = 0; round < 5; round++) clientRounds.push(await clientsSideBySide(proxied, proxied));
      const directRounds = [];
      for (let round = 0; round < 3; round++) directRounds.push(await clientsSideBySide(direct, qemu.extraQmpPaths[2]!));
      const throughServe = { qmpx: median(clientRounds.slice(2).map((r) => r.qmpx)), raw: median(clientRounds.slice(2).map((r) => r.raw)) };
      const directGap = median(directRounds.slice(1).map((r) => r.qmpx - r.raw));
      results.push({
        name: `sequential ${SEQUENTIAL} query-status through serve, qmpx client vs raw client`,
        qmpx: throughServe.qmpx,
        raw: throughServe.raw,
        unit: 'µs',
        ratio: throughServe.qmpx / throughServe.raw,
        note: `qmpx ${(throughServe.qmpx - throughServe.raw).toFixed(1)} µs slower (target ≤ 10); straight to QEMU in the same run: ${directGap.toFixed(1)} µs`,
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
