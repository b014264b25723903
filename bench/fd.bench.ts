/**
 * File-descriptor passing (README, "File descriptors"): what a connection
 * opened with `fdPassing` costs against a plain one on the same QEMU in the
 * same run, and an `add-fd` round trip with an fd.
 *
 * - pipelined and sequential query-status: an fd-capable connection ("qmpx"
 *   column) against a plain one ("raw" column); both are qmpx, the ratio is
 *   what fdPassing costs commands that carry no fds;
 * - add-fd with an fd against query-status, both on one fd-capable
 *   connection, alternating (each add-fd's fd set is removed between rounds,
 *   untimed);
 * - connect + close, fd-capable against plain, in one warm process;
 * - what loading the FFI module adds to a fresh process: `import` of
 *   lib/fd/libc.js against `node -e 0`.
 *
 *   node dist/bench/fd.bench.js        (or: npm run bench -- fd)
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect, silentLogger, type Monitor } from '../lib/index.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { allOrders, interleaved, median, progress, reportResults, type BenchResult } from './measure.js';

const ROUNDS = 7;
const PIPELINED = 5000;
const SEQUENTIAL = 2000;
const ADD_FD = 300;
const CONNECTS = 60;
const PROCESS_SAMPLES = 9;
const LIBC_MODULE = fileURLToPath(new URL('../lib/fd/libc.js', import.meta.url));

function open(path: string, fdPassing: boolean): Promise<Monitor> {
  return connect(path, { logger: silentLogger, fdPassing });
}

async function pipelinedRate(path: string, fdPassing: boolean): Promise<number> {
  const monitor = await open(path, fdPassing);
  const started = performance.now();
  await Promise.all(Array.from({ length: PIPELINED }, () => monitor.execute('query-status')));
  const seconds = (performance.now() - started) / 1000;
  await monitor.close();
  return PIPELINED / seconds;
}

/** Both connections at once, on their own monitor sockets, alternating command by command. */
async function sequentialMicros(fdPath: string, plainPath: string): Promise<{ fd: number; plain: number }> {
  const fdCapable = await open(fdPath, true);
  const plain = await open(plainPath, false);
  const samples = { fd: [] as number[], plain: [] as number[] };
  const time = async (monitor: Monitor, into: number[]): Promise<void> => {
    const started = performance.now();
    await monitor.execute('query-status');
    into.push(performance.now() - started);
  };
  for (let i = 0; i < SEQUENTIAL; i++) {
    if (i % 2 === 0) {
      await time(fdCapable, samples.fd);
      await time(plain, samples.plain);
    } else {
      await time(plain, samples.plain);
      await time(fdCapable, samples.fd);
    }
  }
  await Promise.all([fdCapable.close(), plain.close()]);
  return { fd: median(samples.fd) * 1000, plain: median(samples.plain) * 1000 };
}

/** add-fd with an fd and query-status on one fd-capable connection, alternating; medians in µs. */
async function addFdMicros(path: string): Promise<{ addFd: number; status: number }> {
  const monitor = await open(path, true);
  const fd = openSync('/dev/null', 'r');
  const addFd: number[] = [];
  const status: number[] = [];
  try {
    for (let i = 0; i < ADD_FD; i++) {
      let started = performance.now();
      await monitor.execute('add-fd', { 'fdset-id': 1 }, { fds: [fd] });
      addFd.push(performance.now() - started);
      started = performance.now();
      await monitor.execute('query-status');
      status.push(performance.now() - started);
    }
    await monitor.execute('remove-fd', { 'fdset-id': 1 });
  } finally {
    closeSync(fd);
    await monitor.close();
  }
  return { addFd: median(addFd) * 1000, status: median(status) * 1000 };
}

async function connectMillis(path: string, fdPassing: boolean): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < CONNECTS; i++) {
    const started = performance.now();
    const monitor = await open(path, fdPassing);
    await monitor.close();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

function timeProcess(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`node ${args.join(' ')} exited with ${code}`))));
  });
}

/** Fresh processes, taking turns: importing lib/fd/libc.js (koffi) and `node -e 0`. */
async function ffiLoadMillis(): Promise<{ withFfi: number; bare: number }> {
  const commands = [['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(LIBC_MODULE).href)})`], ['-e', '0']];
  const samples: number[][] = [[], []];
  const orders = allOrders(2);
  for (let round = 0; round < PROCESS_SAMPLES + 1; round++) {
    for (const which of orders[round % orders.length]!) {
      const elapsed = await timeProcess(commands[which]!);
      if (round > 0) samples[which]!.push(elapsed);
    }
  }
  return { withFfi: median(samples[0]!), bare: median(samples[1]!) };
}

export async function run(): Promise<BenchResult[]> {
  const qemu = await startQemu({ hmp: false, extraQmpSockets: 1 });
  const results: BenchResult[] = [];
  try {
    progress('fd: pipelined');
    const pipelined = await interleaved(ROUNDS, () => pipelinedRate(qemu.qmpPath, true), () => pipelinedRate(qemu.qmpPath, false));
    results.push({
      name: `pipelined ${PIPELINED} query-status, fdPassing vs plain`,
      qmpx: pipelined.qmpx,
      raw: pipelined.raw,
      unit: 'cmd/s',
      ratio: pipelined.qmpx / pipelined.raw,
      note: 'higher is better; both columns are qmpx: "raw" is a connection without fdPassing',
    });
    progress('fd: sequential');
    const rounds = [];
    for (let round = 0; round < 3; round++) rounds.push(await sequentialMicros(qemu.qmpPath, qemu.extraQmpPaths[0]!));
    const sequential = { fd: median(rounds.map((r) => r.fd)), plain: median(rounds.map((r) => r.plain)) };
    results.push({
      name: `sequential ${SEQUENTIAL} query-status, fdPassing vs plain, median`,
      qmpx: sequential.fd,
      raw: sequential.plain,
      unit: 'µs',
      ratio: sequential.fd / sequential.plain,
      note: 'lower is better; alternating command by command; "raw" is a connection without fdPassing',
    });
    progress('fd: add-fd round trip');
    const addFd = await addFdMicros(qemu.qmpPath);
    results.push({
      name: `add-fd with an fd, direct, median of ${ADD_FD}`,
      qmpx: addFd.addFd,
      raw: addFd.status,
      unit: 'µs',
      ratio: addFd.addFd / addFd.status,
      note: '"raw" is query-status on the same connection, alternating',
    });
    progress('fd: connect + close');
    const connects = await interleaved(3, () => connectMillis(qemu.qmpPath, true), () => connectMillis(qemu.qmpPath, false), 1);
    results.push({
      name: `connect + close, fdPassing vs plain, median of ${CONNECTS}`,
      qmpx: connects.qmpx,
      raw: connects.raw,
      unit: 'ms',
      ratio: connects.qmpx / connects.raw,
      note: 'lower is better; warm process (the FFI module already loaded)',
    });
  } finally {
    await qemu.stop();
  }
  progress('fd: loading the FFI module');
  const load = await ffiLoadMillis();
  results.push({
    name: 'fresh process importing lib/fd/libc.js vs node -e 0',
    qmpx: load.withFfi,
    raw: load.bare,
    unit: 'ms',
    ratio: load.withFfi / load.bare,
    note: 'what the first fdPassing connection of a process adds; a process that never asks for fds never pays it',
  });
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('File descriptors', await run());
}
