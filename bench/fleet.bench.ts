/**
 * The fleet bridge at scale: simulated VMs (bench/fleet-upstream.ts, a few
 * processes of fake QMP upstreams) shared by several `qmpx serve --config`
 * processes, all publishing to one nats-server, and one subscriber here
 * reading every event of the fleet (`qmpx.*.*.evt.*`).
 *
 * Measured over a window once every VM's events flow:
 * - publish rate: events delivered to the subscriber per second, against
 *   the rate the VMs raised them;
 * - end-to-end latency p50/p99: from the upstream's write of the event (its
 *   QMP timestamp, wall clock in µs) to the subscriber's callback;
 * - RSS of the serves per VM (all their memory, fixed costs included),
 *   and of nats-server;
 * - CPU of the serves (and of nats-server) per 1,000 events delivered;
 * - request-reply while the events flow: `query-status` round trips to one
 *   VM through NATS (connectNats) and through that VM's QMP socket of its
 *   serve (connect), taking turns, p50/p99.
 *
 *   QMPX_FLEET_VMS=10000 QMPX_FLEET_SERVES=4 QMPX_FLEET_INTERVAL_S=10 QMPX_FLEET_WINDOW_S=30 \
 *     node dist/bench/fleet.bench.js
 *
 * Defaults are the full size above; QMPX_FLEET_VMS=500 is a quick run.
 * QMPX_FLEET_JETSTREAM=1 publishes into a JetStream stream too (acks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connect as natsConnect } from '@nats-io/transport-node';
import { connect, connectNats, silentLogger, type Monitor } from '../lib/index.js';
import { findExecutable } from '../spec/helpers/daemon.js';
import { createTempDir, removeTempDir } from '../spec/helpers/temp-dir.js';
import { percentile, progress, reportResults, type BenchResult } from './measure.js';
import { cpuSeconds, residentMiB } from './proc.js';

const VMS = Number(process.env.QMPX_FLEET_VMS ?? 10_000);
const SERVES = Number(process.env.QMPX_FLEET_SERVES ?? 4);
const INTERVAL_S = Number(process.env.QMPX_FLEET_INTERVAL_S ?? 10);
const WINDOW_S = Number(process.env.QMPX_FLEET_WINDOW_S ?? 30);
const JETSTREAM = process.env.QMPX_FLEET_JETSTREAM === '1';
const ROUND_TRIPS = 1000;
const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));
const UPSTREAM = fileURLToPath(new URL('./fleet-upstream.js', import.meta.url));

/** A child process whose CPU and memory are read from /proc. */
class Measured {
  constructor(readonly child: ChildProcess) {}

  rssMiB(): number {
    return residentMiB(this.child.pid!);
  }

  cpuSeconds(): number {
    return cpuSeconds(this.child.pid!);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves with `child`'s stdout once it holds `text`; rejects if the child exits first or after `timeoutMs`. */
function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (output.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`exited (${code}) before "${text}"`)));
  });
}

async function startNatsServer(dir: string, port: number): Promise<Measured> {
  const args = ['-a', '127.0.0.1', '-p', String(port), ...(JETSTREAM ? ['-js', '-sd', join(dir, 'js')] : [])];
  const child = spawn(findExecutable('nats-server', 'nats-server'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await (await natsConnect({ servers: `127.0.0.1:${port}` })).close();
      return new Measured(child);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The VMs' share of serve `index`: [first, count]. */
function shareOf(index: number, parts: number): [number, number] {
  const first = Math.floor((VMS * index) / parts);
  return [first, Math.floor((VMS * (index + 1)) / parts) - first];
}

async function startServe(dir: string, index: number | 'base', natsUrl: string): Promise<Measured> {
  const [first, count] = index === 'base' ? [0, 1] : shareOf(index, SERVES);
  const monitors = Array.from({ length: count }, (_, offset) => ({
    name: `vm${first + offset}`,
    upstream: join(dir, `u${first + offset}.sock`),
    qmp: join(dir, `${index === 'base' ? 'b' : 'q'}${first + offset}.sock`),
  }));
  const configPath = join(dir, `serve-${index}.json`);
  const nats = { servers: natsUrl, host: `bench-h${index}`, ...(JETSTREAM ? { jetStream: true, runState: false } : {}) };
  await writeFile(configPath, JSON.stringify({ logLevel: 'warn', monitors, nats }));
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  return new Measured(child);
}

/** Every event of the fleet, counted and timed from the upstream's write. */
class Subscriber {
  readonly seenVms = new Set<string>();
  delivered = 0;
  latenciesMicros: number[] = [];
  recording = false;

  handle(subject: string, body: string): void {
    const receivedMicros = (performance.timeOrigin + performance.now()) * 1000;
    this.delivered++;
    if (this.seenVms.size <= VMS) this.seenVms.add(subject.split('.').slice(1, 3).join('.'));
    if (!this.recording) return;
    const { timestamp } = JSON.parse(body) as { timestamp: { seconds: number; microseconds: number } };
    this.latenciesMicros.push(receivedMicros - (timestamp.seconds * 1e6 + timestamp.microseconds));
  }
}

/** Sequential query-status round trips, NATS and socket taking turns per command. */
async function roundTrips(overNats: Monitor, overSocket: Monitor): Promise<{ nats: number[]; socket: number[] }> {
  const times = { nats: [] as number[], socket: [] as number[] };
  for (let index = 0; index < 50; index++) {
    await overNats.execute('query-status');
    await overSocket.execute('query-status');
  }
  for (let index = 0; index < ROUND_TRIPS; index++) {
    for (const [name, monitor] of (index % 2 === 0 ? [['nats', overNats], ['socket', overSocket]] : [['socket', overSocket], ['nats', overNats]]) as Array<['nats' | 'socket', Monitor]>) {
      const start = performance.now();
      await monitor.execute('query-status');
      times[name].push((performance.now() - start) * 1000);
    }
  }
  return times;
}

export async function run(): Promise<BenchResult[]> {
  const dir = createTempDir('fleet-bench');
  const children: Measured[] = [];
  const fakes: ChildProcess[] = [];
  try {
    const port = await freePort();
    const natsUrl = `nats://127.0.0.1:${port}`;
    progress(`nats-server on ${natsUrl}${JETSTREAM ? ' (JetStream)' : ''}`);
    const natsServer = await startNatsServer(dir, port);
    children.push(natsServer);

    progress(`${VMS} simulated VMs in ${SERVES} processes, one event each every ${INTERVAL_S} s`);
    await Promise.all(
      Array.from({ length: SERVES }, async (_, index) => {
        const [first, count] = shareOf(index, SERVES);
        const fake = spawn(process.execPath, [UPSTREAM, dir, String(first), String(count), String(INTERVAL_S * 1000)], { stdio: ['ignore', 'pipe', 'inherit'] });
        fakes.push(fake);
        await waitForOutput(fake, 'ready', 120_000);
      }),
    );

    const subscriber = new Subscriber();
    const client = await natsConnect({ servers: natsUrl });
    client.subscribe('qmpx.*.*.evt.*', { callback: (_error, message) => subscriber.handle(message.subject, message.string()) });
    await client.flush();

    // One serve with one VM, for what a serve costs before its VMs: the per-VM RSS is what the fleet's serves hold beyond that.
    progress('a serve with one VM, for the fixed RSS');
    const base = await startServe(dir, 'base', natsUrl);
    const baseDeadline = Date.now() + 60_000;
    while (!subscriber.seenVms.has('bench-hbase.vm0')) {
      if (Date.now() > baseDeadline) throw new Error('the one-VM serve published nothing');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const baseRss = base.rssMiB();
    await base.stop();
    subscriber.seenVms.clear();

    progress(`${SERVES} serve processes`);
    const started = performance.now();
    const serves = await Promise.all(Array.from({ length: SERVES }, (_, index) => startServe(dir, index, natsUrl)));
    children.push(...serves);
    const deadline = Date.now() + 300_000;
    while (subscriber.seenVms.size < VMS) {
      if (Date.now() > deadline) throw new Error(`events from only ${subscriber.seenVms.size} of ${VMS} VMs within 300 s`);
      for (const serve of serves) if (serve.child.exitCode !== null) throw new Error('a serve exited');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const allFlowingS = (performance.now() - started) / 1000;
    progress(`events from all ${VMS} VMs after ${allFlowingS.toFixed(1)} s; measuring for ${WINDOW_S} s`);

    const serveCpu0 = serves.reduce((sum, serve) => sum + serve.cpuSeconds(), 0);
    const natsCpu0 = natsServer.cpuSeconds();
    const delivered0 = subscriber.delivered;
    const window0 = performance.now();
    subscriber.recording = true;
    await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1000));
    subscriber.recording = false;
    const windowS = (performance.now() - window0) / 1000;
    const delivered = subscriber.delivered - delivered0;
    const serveCpu = serves.reduce((sum, serve) => sum + serve.cpuSeconds(), 0) - serveCpu0;
    const natsCpu = natsServer.cpuSeconds() - natsCpu0;
    const serveRss = serves.reduce((sum, serve) => sum + serve.rssMiB(), 0);
    const natsRss = natsServer.rssMiB();
    const latencies = subscriber.latenciesMicros;

    progress(`request-reply: ${ROUND_TRIPS} query-status each way, while the events flow`);
    const overNats = await connectNats(`${natsUrl}/bench-h0/vm0`, { logger: silentLogger });
    const overSocket = await connect(join(dir, 'q0.sock'), { logger: silentLogger });
    const times = await roundTrips(overNats, overSocket);
    await overNats.close();
    await overSocket.close();
    await client.close();

    const rate = delivered / windowS;
    const raised = VMS / INTERVAL_S;
    console.log(`\nFleet over NATS: ${VMS} VMs, ${SERVES} serves, one event per VM every ${INTERVAL_S} s${JETSTREAM ? ', JetStream' : ''}`);
    console.log(`  all VMs' events flowing after    ${allFlowingS.toFixed(1)} s`);
    console.log(`  delivered to the subscriber       ${rate.toFixed(0)} events/s (raised: ${raised.toFixed(0)}/s)`);
    console.log(`  end-to-end latency                p50 ${(percentile(latencies, 0.5) / 1000).toFixed(2)} ms, p99 ${(percentile(latencies, 0.99) / 1000).toFixed(2)} ms (${latencies.length} events)`);
    console.log(`  serve RSS                         ${serveRss.toFixed(0)} MiB in all, ${((serveRss * 1024) / VMS).toFixed(1)} KiB per VM; ${(((serveRss - SERVES * baseRss) * 1024) / VMS).toFixed(1)} KiB per VM beyond a one-VM serve's ${baseRss.toFixed(0)} MiB`);
    console.log(`  nats-server RSS                   ${natsRss.toFixed(0)} MiB`);
    console.log(`  serve CPU per 1,000 events        ${((serveCpu * 1000 * 1000) / delivered).toFixed(0)} ms (${((serveCpu / windowS) * 100).toFixed(0)}% of a core in all)`);
    console.log(`  nats-server CPU per 1,000 events  ${((natsCpu * 1000 * 1000) / delivered).toFixed(0)} ms`);
    console.log(`  query-status over NATS            p50 ${(percentile(times.nats, 0.5) / 1000).toFixed(3)} ms, p99 ${(percentile(times.nats, 0.99) / 1000).toFixed(3)} ms`);
    console.log(`  query-status on the serve socket  p50 ${(percentile(times.socket, 0.5) / 1000).toFixed(3)} ms, p99 ${(percentile(times.socket, 0.99) / 1000).toFixed(3)} ms`);

    const result = (name: string, qmpx: number, raw: number, unit: string, note: string): BenchResult => ({ name, qmpx, raw, unit, ratio: qmpx / raw, note });
    return [
      result('fleet events delivered per second', rate, raised, 'ev/s', `raw: the rate the ${VMS} VMs raised`),
      result('fleet request-reply p50', percentile(times.nats, 0.5), percentile(times.socket, 0.5), 'µs', "qmpx: over NATS; raw: the serve's QMP socket"),
      result('fleet request-reply p99', percentile(times.nats, 0.99), percentile(times.socket, 0.99), 'µs', "qmpx: over NATS; raw: the serve's QMP socket"),
    ];
  } finally {
    for (const child of children) await child.stop();
    for (const fake of fakes) if (fake.exitCode === null) fake.kill('SIGTERM');
    await removeTempDir(dir);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await reportResults('Fleet over NATS (bench/fleet.bench.ts)', await run());
