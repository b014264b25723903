/**
 * Memory of `qmpx serve`: the resident set each idle negotiated client and
 * each configured monitor adds, read from /proc of a serve process.
 *
 * A resident set counts code compiled and modules loaded on first use, and
 * heap that the collector has not yet given back, as much as live objects:
 * the figure "from zero" (the proxy with no client, then with all of them)
 * carries those one-time costs, divided among the clients. The steady
 * figure is taken past a first batch (FIRST_CLIENTS clients, FIRST_MONITORS
 * monitors), after SETTLE_MS of quiet each time, so it is what one more
 * client or monitor costs. The whole resident set with all of them is given
 * too: a build that loads less at start-up grows its heap later, as
 * clients and monitors come, and shows a steeper slope from a lower start.
 * The per-monitor slope is also taken with V8 held still (V8_HELD), which
 * takes the young generation's growth and V8's threads out of it (see
 * perMonitorV8Held).
 *
 * With QMPX_BENCH_BASELINE=DIR (another checkout, built), every figure is
 * also taken from DIR/dist/lib/cli/main.js in the same run, the two builds
 * taking turns, and the ratio is this build ÷ that one.
 *
 *   node dist/bench/memory.bench.js        (or: npm run bench -- memory)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { reportResults, type BenchResult } from './measure.js';
import { RawQmpClient } from './raw-client.js';
import { statusKiB } from './proc.js';

const FIRST_CLIENTS = 10;
const CLIENTS = 200;
const FIRST_MONITORS = 10;
const MONITORS = Number(process.env.QMPX_BENCH_MONITORS ?? 1000);
const SETTLE_MS = 1000;
/**
 * Node flags that hold V8 still: its young generation at 2 MiB (two 1 MiB
 * semi-spaces), and no background threads, whose malloc arenas keep what
 * they freed by a different amount each run.
 */
const V8_HELD = ['--max-semi-space-size=1', '--single-threaded'];
const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));
const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n';

const toMiB = (kib: number | undefined): number | undefined => (kib === undefined ? undefined : kib / 1024);
const settle = (): Promise<void> => new Promise((done) => setTimeout(done, SETTLE_MS));

/** `qmpx serve` (of the build whose main.js is `main`, under Node's `nodeFlags`) as a child process; resolves once `ready` upstream links are up. */
async function startServe(main: string, args: string[], ready: number, nodeFlags: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeFlags, main, 'serve', '--log-level', 'info', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let connected = 0;
  let pending = '';
  await new Promise<void>((up, failed) => {
    child.once('exit', (code) => failed(new Error(`serve exited with ${code} before ${ready} upstreams were up`)));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      const lines = (pending + text).split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.includes('"msg":"upstream monitor connected"')) connected++;
      if (connected >= ready) up();
    });
  });
  return child;
}

async function stopServe(child: ChildProcess): Promise<void> {
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  await exited;
}

function rssKiB(child: ChildProcess): number {
  return statusKiB(child.pid!);
}

/** A fake upstream that greets like QEMU and answers qmp_capabilities, then stays idle. */
async function startIdleUpstream(path: string): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write(GREETING);
    socket.once('data', () => socket.write('{"return": {}}\r\n'));
  });
  await new Promise<void>((done) => server.listen(path, done));
  return server;
}

interface PerItem {
  fromZero: number;
  steady: number;
  /** The whole resident set with all of them, KiB. */
  all: number;
}

/** KiB per idle negotiated client: from zero, and past the first FIRST_CLIENTS. */
async function perClient(main: string, upstream: string, dir: string): Promise<PerItem> {
  const qmpPath = socketPathIn(dir, 'idle.qmp');
  const serve = await startServe(main, ['--upstream', upstream, '--qmp', qmpPath, '--name', 'idle'], 1);
  const clients: RawQmpClient[] = [];
  try {
    await settle();
    const none = rssKiB(serve);
    clients.push(...(await Promise.all(Array.from({ length: FIRST_CLIENTS }, () => RawQmpClient.open(qmpPath, false)))));
    await settle();
    const first = rssKiB(serve);
    clients.push(...(await Promise.all(Array.from({ length: CLIENTS - FIRST_CLIENTS }, () => RawQmpClient.open(qmpPath, false)))));
    await settle();
    const all = rssKiB(serve);
    return { fromZero: (all - none) / CLIENTS, steady: (all - first) / (CLIENTS - FIRST_CLIENTS), all };
  } finally {
    for (const client of clients) client.close();
    await stopServe(serve);
  }
}

type Monitors = Array<{ name: string; upstream: string; qmp: string }>;

/** The resident set, KiB, of a serve of the first `count` of `monitors`, SETTLE_MS after its upstream links are up. */
async function residentWithMonitors(main: string, dir: string, monitors: Monitors, count: number, nodeFlags: string[] = []): Promise<number> {
  const configPath = join(dir, `serve-${count}.json`);
  await writeFile(configPath, JSON.stringify({ logLevel: 'info', monitors: monitors.slice(0, count) }));
  const serve = await startServe(main, ['--config', configPath], count, nodeFlags);
  try {
    await settle();
    return rssKiB(serve);
  } finally {
    await stopServe(serve);
  }
}

/**
 * KiB per configured monitor past the first FIRST_MONITORS, and the whole
 * resident set, with V8 held still (V8_HELD): the default young generation
 * grows to 32 MiB with a thousand monitors, and how much of it is resident
 * a second after start depends on how much was allocated since it grew, so
 * the default figure moves with start-up garbage as much as with what a
 * monitor keeps. Held, the young generation is resident whole in both
 * builds and the slope is the old generation and native memory.
 */
async function perMonitorV8Held(main: string, dir: string, monitors: Monitors): Promise<{ steady: number; all: number }> {
  const first = await residentWithMonitors(main, dir, monitors, FIRST_MONITORS, V8_HELD);
  const all = await residentWithMonitors(main, dir, monitors, MONITORS, V8_HELD);
  return { steady: (all - first) / (MONITORS - FIRST_MONITORS), all };
}

/** KiB per configured monitor (fake upstreams): from one monitor, and past the first FIRST_MONITORS. */
async function perMonitor(main: string, dir: string, monitors: Monitors): Promise<PerItem> {
  const measure = (count: number): Promise<number> => residentWithMonitors(main, dir, monitors, count);
  const one = await measure(1);
  const first = await measure(FIRST_MONITORS);
  const all = await measure(MONITORS);
  return { fromZero: (all - one) / (MONITORS - 1), steady: (all - first) / (MONITORS - FIRST_MONITORS), all };
}

export async function run(): Promise<BenchResult[]> {
  const baselineRoot = process.env.QMPX_BENCH_BASELINE;
  const baselineMain = baselineRoot ? resolve(baselineRoot, 'dist/lib/cli/main.js') : undefined;
  const builds = baselineMain ? [MAIN, baselineMain] : [MAIN];
  const dir = createTempDir('memory-bench');
  const servers: net.Server[] = [];
  const clientFigures: PerItem[] = [];
  const monitorFigures: PerItem[] = [];
  const v8HeldFigures: Array<{ steady: number; all: number }> = [];
  try {
    const qemu = await startQemu({ hmp: false });
    try {
      for (const main of builds) clientFigures.push(await perClient(main, qemu.qmpPath, dir));
    } finally {
      await qemu.stop();
    }
    const monitors: Monitors = [];
    for (let index = 0; index < MONITORS; index++) {
      const upstream = socketPathIn(dir, `up-${index}.sock`);
      servers.push(await startIdleUpstream(upstream));
      monitors.push({ name: `vm${index}`, upstream, qmp: socketPathIn(dir, `vm${index}.qmp`) });
    }
    for (const main of builds) monitorFigures.push(await perMonitor(main, dir, monitors));
    for (const main of builds) v8HeldFigures.push(await perMonitorV8Held(main, dir, monitors));
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((done) => server.close(() => done()))));
    await removeTempDir(dir);
  }
  const row = (name: string, ours: number, theirs: number | undefined, unit = 'KiB'): BenchResult => ({
    name,
    qmpx: ours,
    raw: theirs ?? 0,
    unit,
    ratio: theirs === undefined ? 0 : ours / theirs,
    note: theirs === undefined ? 'set QMPX_BENCH_BASELINE=DIR to compare with another build' : `raw: the build in ${baselineRoot}, same run`,
  });
  const [ours, theirs] = [0, 1];
  return [
    row(`per idle negotiated client, past the first ${FIRST_CLIENTS} (${CLIENTS} in all)`, clientFigures[ours]!.steady, clientFigures[theirs]?.steady),
    row(`per idle negotiated client, from none`, clientFigures[ours]!.fromZero, clientFigures[theirs]?.fromZero),
    row(`per configured monitor, past the first ${FIRST_MONITORS} (${MONITORS} in all)`, monitorFigures[ours]!.steady, monitorFigures[theirs]?.steady),
    row(`per configured monitor, from one`, monitorFigures[ours]!.fromZero, monitorFigures[theirs]?.fromZero),
    row(`per configured monitor, past the first ${FIRST_MONITORS}, V8 held still (${V8_HELD.join(' ')})`, v8HeldFigures[ours]!.steady, v8HeldFigures[theirs]?.steady),
    row(`resident set with ${CLIENTS} idle clients`, clientFigures[ours]!.all / 1024, toMiB(clientFigures[theirs]?.all), 'MiB'),
    row(`resident set with ${MONITORS} configured monitors`, monitorFigures[ours]!.all / 1024, toMiB(monitorFigures[theirs]?.all), 'MiB'),
    row(`resident set with ${MONITORS} configured monitors, V8 held still`, v8HeldFigures[ours]!.all / 1024, toMiB(v8HeldFigures[theirs]?.all), 'MiB'),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('memory', await run());
}
