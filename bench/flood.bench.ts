/**
 * Hostile-client flood: `qmpx serve` in its own process in front of a real
 * QEMU, 500 hostile read-only clients (in a process of their own, so their
 * writing does not weigh on the measuring client) each sending an
 * unfinished message of one-byte tokens (`[1,1,1,…`) just under the 1 MiB
 * message limit, and reconnecting at once whenever they are refused or
 * disconnected, for FLOOD_SECONDS. Measured:
 *
 * - the median (and 99th percentile) round trip of a well-behaved client on
 *   the full socket during the flood, against the same client's median
 *   just before it in the same run;
 * - serve's peak RSS (VmHWM) over the run, against its RSS before the flood.
 *
 *   npm run bench -- flood
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statusKiB } from './proc.js';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { median, percentile, progress, reportResults, type BenchResult } from './measure.js';
import { RawQmpClient } from './raw-client.js';

const HOSTILE_CLIENTS = 500;
const FLOOD_SECONDS = 10;
const BASELINE_ROUND_TRIPS = 2000;
const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));

/** The hostile side: HOSTILE_CLIENTS connections kept flooding until the deadline; prints its counts as JSON. */
const HOSTILE_SCRIPT = `
import { connect } from 'node:net';
const [path, clients, seconds] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const flood = Buffer.from('[' + '1,'.repeat((1024 * 1024 - 64) / 2), 'latin1');
const deadline = Date.now() + seconds * 1000;
let connections = 0;
const open = [];
function one() {
  if (Date.now() > deadline) return;
  connections++;
  const socket = connect(path);
  open.push(socket);
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  socket.once('close', () => setTimeout(one, 1));
  socket.once('connect', () => socket.write(flood));
}
for (let i = 0; i < clients; i++) one();
setTimeout(() => {
  process.stdout.write(JSON.stringify({ connections }));
  for (const socket of open) socket.destroy();
  process.exit(0);
}, seconds * 1000 + 200);
`;

function serveStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return statusKiB(pid, field) / 1024;
}

async function startServe(args: string[]): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--log-level', 'info', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (text += chunk));
  const deadline = Date.now() + 30_000;
  while (!text.includes('"msg":"upstream monitor connected"')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not come up: ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { child, log: () => text };
}

async function roundTripMicros(client: RawQmpClient): Promise<number> {
  const started = performance.now();
  client.write('{"execute":"query-status"}\n');
  await client.next(1);
  return (performance.now() - started) * 1000;
}

export async function run(): Promise<BenchResult[]> {
  const dir = createTempDir('flood-bench');
  const qemu = await startQemu({ hmp: false });
  const qmpPath = socketPathIn(dir, 'qmp.sock');
  const readOnlyPath = socketPathIn(dir, 'ro.sock');
  const serve = await startServe(['--upstream', qemu.qmpPath, '--qmp', qmpPath, '--read-only', readOnlyPath, '--name', 'flood']);
  try {
    const client = await RawQmpClient.open(qmpPath, true);
    progress('baseline round trips');
    const baseline: number[] = [];
    for (let i = 0; i < BASELINE_ROUND_TRIPS; i++) baseline.push(await roundTripMicros(client));
    const rssBefore = serveStatus(serve.child.pid!, 'VmRSS');
    progress(`${HOSTILE_CLIENTS} hostile clients for ${FLOOD_SECONDS} s`);
    const hostile = spawn(process.execPath, ['--input-type=module', '-e', HOSTILE_SCRIPT, readOnlyPath, String(HOSTILE_CLIENTS), String(FLOOD_SECONDS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let hostileReport = '';
    hostile.stdout!.setEncoding('utf8');
    hostile.stdout!.on('data', (chunk: string) => (hostileReport += chunk));
    const hostileDone = new Promise((resolve) => hostile.once('exit', resolve));
    let floodOver = false;
    void hostileDone.then(() => (floodOver = true));
    // Let every hostile client connect and start writing before measuring.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const during: number[] = [];
    while (!floodOver) during.push(await roundTripMicros(client));
    await hostileDone;
    const alive = serve.child.exitCode === null && serve.child.signalCode === null;
    const peakRss = alive ? serveStatus(serve.child.pid!, 'VmHWM') : NaN;
    const counts = JSON.parse(hostileReport || '{}') as { connections?: number };
    const refusalLines = serve.log().split('\n').filter((line) => line.includes('connection refused')).length;
    const budgetLines = serve.log().split('\n').filter((line) => line.includes('memory for unfinished client input is spent')).length;
    client.close();
    return [
      {
        name: `full-socket round trip during ${HOSTILE_CLIENTS} hostile token floods`,
        qmpx: median(during),
        raw: median(baseline),
        unit: 'µs',
        ratio: median(during) / median(baseline),
        note:
          `raw: the same client just before the flood; ${during.length} round trips during it, p99 ${percentile(during, 0.99).toFixed(0)} µs; ` +
          `serve ${alive ? 'still running' : 'DIED'}; ${counts.connections ?? '?'} hostile connections opened; ` +
          `${refusalLines} refusal log lines, ${budgetLines} budget disconnections`,
      },
      {
        name: `serve peak RSS (VmHWM) over the flood`,
        qmpx: peakRss,
        raw: rssBefore,
        unit: 'MiB',
        ratio: peakRss / rssBefore,
        note: 'raw: serve with its one client just before the flood',
      },
    ];
  } finally {
    serve.child.kill('SIGTERM');
    await qemu.stop();
    await removeTempDir(dir);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('flood', await run());
}
