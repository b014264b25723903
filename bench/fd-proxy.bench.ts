/**
 * File descriptors through `qmpx serve`, one serve process and one QEMU in
 * the same run:
 *
 * - sequential and pipelined `query-status` on a QMP socket that takes
 *   clients' fds (read with recvmsg, its upstream opened for fd passing)
 *   against one that does not (Node's reads): what accepting fds costs
 *   commands that carry none;
 * - the `add-fd` round trip (a pipe's read end each time, removed again
 *   untimed) through that socket against the same command straight to a
 *   second monitor of the same QEMU.
 *
 *   node dist/bench/fd-proxy.bench.js
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect, silentLogger, type Monitor } from '../lib/index.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { interleaved, median, reportResults, type BenchResult } from './measure.js';
import { rawPipelinedRate, rawSequentialMicros } from './raw-client.js';

const ROUNDS = 7;
const PIPELINED = 5000;
const SEQUENTIAL = 2000;
const ADD_FD = 300;
const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));

/** `qmpx serve --config FILE`; resolves once `ready` upstream links are up. */
async function startServe(configPath: string, ready: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let connected = 0;
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not come up')), 60_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      log += text;
      const lines = log.split('\n');
      log = lines.pop()!;
      connected += lines.filter((line) => line.includes('"msg":"upstream monitor connected"')).length;
      if (connected >= ready) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error('serve exited')));
  });
  return child;
}

/**
 * Median add-fd round trip through serve and straight to QEMU, taking turns
 * command by command; each fd set is removed again, untimed.
 */
async function addFdMicros(throughServe: string, direct: string): Promise<{ proxied: number; direct: number }> {
  const monitors: Monitor[] = await Promise.all([throughServe, direct].map((path) => connect(path, { fdPassing: true, logger: silentLogger })));
  const fd = openSync('/dev/null', 'r');
  const samples: number[][] = [[], []];
  try {
    for (let i = 0; i < ADD_FD; i++) {
      for (const which of i % 2 === 0 ? [0, 1] : [1, 0]) {
        const monitor = monitors[which]!;
        const started = performance.now();
        await monitor.execute('add-fd', { 'fdset-id': 10 + which }, { fds: [fd] });
        samples[which]!.push(performance.now() - started);
        await monitor.execute('remove-fd', { 'fdset-id': 10 + which });
      }
    }
  } finally {
    closeSync(fd);
    await Promise.all(monitors.map((monitor) => monitor.close()));
  }
  return { proxied: median(samples[0]!) * 1000, direct: median(samples[1]!) * 1000 };
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const dir = createTempDir('fd-bench');
  const qemu = await startQemu({ hmp: false, extraQmpSockets: 2 });
  // QEMU closes the fds of a removed fd set only while the VM runs.
  const control = await connect(qemu.extraQmpPaths[1]!, { logger: silentLogger });
  await control.execute('cont');
  await control.close();
  const withFds = socketPathIn(dir, 'fds.qmp');
  const withoutFds = socketPathIn(dir, 'plain.qmp');
  const configPath = join(dir, 'serve.json');
  await writeFile(
    configPath,
    JSON.stringify({
      logLevel: 'info',
      monitors: [
        { name: 'fds', upstream: qemu.qmpPath, qmp: withFds, acceptFds: true },
        { name: 'plain', upstream: qemu.extraQmpPaths[0], qmp: withoutFds, acceptFds: false },
      ],
    }),
  );
  const serve = await startServe(configPath, 2);
  try {
    const pipelined = await interleaved(ROUNDS, () => rawPipelinedRate(withFds, PIPELINED), () => rawPipelinedRate(withoutFds, PIPELINED));
    results.push({
      name: `pipelined ${PIPELINED} query-status through serve, socket taking fds vs not`,
      qmpx: pipelined.qmpx,
      raw: pipelined.raw,
      unit: 'cmd/s',
      ratio: pipelined.qmpx / pipelined.raw,
      note: 'higher is better; raw: the same serve, a QMP socket with acceptFds false',
    });
    await rawSequentialMicros([withFds, withoutFds], SEQUENTIAL);
    const rounds = [];
    for (let round = 0; round < 3; round++) rounds.push(await rawSequentialMicros([withFds, withoutFds], SEQUENTIAL));
    const sequential = { qmpx: median(rounds.map((r) => r[0]!)), raw: median(rounds.map((r) => r[1]!)) };
    results.push({
      name: `sequential ${SEQUENTIAL} query-status through serve, socket taking fds vs not`,
      qmpx: sequential.qmpx,
      raw: sequential.raw,
      unit: 'µs',
      ratio: sequential.qmpx / sequential.raw,
      note: `taking fds adds ${(sequential.qmpx - sequential.raw).toFixed(1)} µs per round trip`,
    });
    await addFdMicros(withFds, qemu.extraQmpPaths[1]!);
    const addFdRounds = [];
    for (let round = 0; round < 3; round++) addFdRounds.push(await addFdMicros(withFds, qemu.extraQmpPaths[1]!));
    const addFd = { proxied: median(addFdRounds.map((r) => r.proxied)), direct: median(addFdRounds.map((r) => r.direct)) };
    results.push({
      name: `add-fd round trip (one fd, ${ADD_FD} each), through serve vs straight to QEMU`,
      qmpx: addFd.proxied,
      raw: addFd.direct,
      unit: 'µs',
      ratio: addFd.proxied / addFd.direct,
      note: `serve adds ${(addFd.proxied - addFd.direct).toFixed(1)} µs; both clients are qmpx's library with fdPassing`,
    });
  } finally {
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    serve.kill('SIGTERM');
    await exited;
    await qemu.stop();
    await removeTempDir(dir);
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('fd-proxy', await run());
}
