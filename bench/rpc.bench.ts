/**
 * libvirt endpoint benchmark (issue 7): QEMU proc 1 (DOMAIN_MONITOR_COMMAND,
 * `{"execute":"query-status"}`) calls over one RPC connection with pipelined
 * serials, through startLibvirtEndpoint and a qmpx Monitor, against a raw
 * pipelined QMP client on the same QEMU, in the same run, interleaved rounds.
 * The endpoint dispatches at most 5 calls of one connection at once, as
 * libvirtd does (max_client_requests), so pipelining beyond 5 queues there.
 *
 * Second: `virsh list --all` (the real virsh) against one `serve` libvirt
 * socket fronting 100 monitors (fake QMP upstreams: 100 QEMUs do not fit
 * the machine), against the same virsh on a serve with one monitor; the
 * first call after start (every domain's state read once) apart.
 *
 *   node dist/bench/rpc.bench.js
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { connect, silentLogger } from '../lib/index.js';
import { encodeMessage, FrameDecoder } from '../lib/rpc/framing.js';
import { connectOpenArgs, emptyBody, monitorCommandArgs } from '../lib/rpc/messages.js';
import { MessageStatus, MessageType, QemuProc, RemoteProc, RPC_PROTOCOL_VERSION, RpcProgram } from '../lib/rpc/protocol.js';
import { startLibvirtEndpoint } from '../lib/rpc/server.js';
import { encodeXdr, type XdrCodec } from '../lib/rpc/xdr.js';
import type { MonitorConfig } from '../lib/proxy/config.js';
import { startServe, type ServeHandle } from '../lib/proxy/daemon.js';
import { startFakePeer, type FakePeer } from '../spec/helpers/fake-peer.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { interleaved, reportResults, type BenchResult } from './measure.js';
import { RawQmpClient } from './raw-client.js';

const ROUNDS = 9;
const CALLS = 3000;
const UUID = '3a167638-9b40-4ecb-9fad-87007c96f632';
const dom = { name: 'lab1', uuid: Buffer.from(UUID.replace(/-/g, ''), 'hex'), id: 1 };

function call<T>(prog: number, proc: number, serial: number, codec: XdrCodec<T>, args: T): Buffer {
  const header = { prog, vers: RPC_PROTOCOL_VERSION, proc, type: MessageType.CALL, serial, status: MessageStatus.OK };
  return encodeMessage(header, encodeXdr(codec, args));
}

/** A minimal RPC client: writes pipelined calls, counts successful replies. */
async function rpcRate(path: string): Promise<number> {
  const socket = net.createConnection(path);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const decoder = new FrameDecoder();
  let replies = 0;
  let failures = 0;
  let wake = (): void => undefined;
  socket.on('data', (chunk) => {
    for (const message of decoder.decode(chunk)) {
      replies++;
      if (message.header.status !== MessageStatus.OK) failures++;
    }
    wake();
  });
  const until = (count: number): Promise<void> =>
    new Promise((resolve) => {
      wake = () => replies >= count && resolve();
      wake();
    });
  socket.write(call(RpcProgram.REMOTE, RemoteProc.CONNECT_OPEN, 0, connectOpenArgs, { name: 'qemu:///system', flags: 0 }));
  await until(1);
  const cmd = '{"execute":"query-status"}';
  const batch = Buffer.concat(Array.from({ length: CALLS }, (_, index) => call(RpcProgram.QEMU, QemuProc.DOMAIN_MONITOR_COMMAND, index + 1, monitorCommandArgs, { dom, cmd, flags: 0 })));
  const started = performance.now();
  socket.write(batch);
  await until(CALLS + 1);
  const seconds = (performance.now() - started) / 1000;
  socket.write(call(RpcProgram.REMOTE, RemoteProc.CONNECT_CLOSE, CALLS + 1, emptyBody, undefined));
  socket.destroy();
  if (failures > 0) throw new Error(`${failures} proc 1 calls failed`);
  return CALLS / seconds;
}

async function rawRate(path: string): Promise<number> {
  const raw = await RawQmpClient.open(path, true);
  const started = performance.now();
  raw.write('{"execute":"query-status"}\n'.repeat(CALLS));
  await raw.next(CALLS);
  const seconds = (performance.now() - started) / 1000;
  raw.close();
  return CALLS / seconds;
}

const LIST_ROUNDS = 9;
const MANY_MONITORS = 100;
const runFile = promisify(execFile);

/** A serve whose libvirt socket fronts `count` fake upstreams; what stops it all. */
async function serveFakes(count: number): Promise<{ socket: string; first: number; stop: () => Promise<void> }> {
  const dir = createTempDir('rpc-bench-list');
  const peers: FakePeer[] = await Promise.all(
    Array.from({ length: count }, () =>
      startFakePeer({ autoRespond: { 'query-uuid': { return: { UUID: '00000000-0000-0000-0000-000000000000' } }, 'query-status': { return: { status: 'running', singlestep: false, running: true } } } }),
    ),
  );
  const monitors: MonitorConfig[] = peers.map((peer, index) => ({
    name: `vm${String(index + 1).padStart(3, '0')}`,
    upstream: peer.path,
    qmp: socketPathIn(dir, `qmp${index + 1}.sock`),
    socketMode: 0o600,
    maxClientBufferBytes: 8 * 1024 * 1024,
  }));
  const socket = socketPathIn(dir, 'libvirt.sock');
  const handle: ServeHandle = await startServe({ logLevel: 'silent', monitors, libvirt: { path: socket, socketMode: 0o600 } }, { logger: silentLogger });
  for (const proxy of handle.proxies) await proxy.upstream.whenUp();
  const first = await virshListMs(socket, count);
  return {
    socket,
    first,
    async stop() {
      await handle.stop(0);
      await Promise.all(peers.map((peer) => peer.close()));
      await removeTempDir(dir);
    },
  };
}

/** Wall time of one `virsh list --all`, in ms; checks that it listed `count` running domains. */
async function virshListMs(socket: string, count: number): Promise<number> {
  const started = performance.now();
  const { stdout } = await runFile('virsh', ['-c', `qemu+unix:///system?socket=${socket}`, 'list', '--all'], { env: { ...process.env, LC_ALL: 'C' } });
  const elapsed = performance.now() - started;
  const running = stdout.split('\n').filter((line) => line.endsWith(' running')).length;
  if (running !== count) throw new Error(`virsh list showed ${running} running domains, not ${count}:\n${stdout}`);
  return elapsed;
}

/** `virsh list --all` on 100 monitors against the same on one. */
async function listResults(): Promise<BenchResult[]> {
  const many = await serveFakes(MANY_MONITORS);
  const one = await serveFakes(1);
  try {
    const times = await interleaved(LIST_ROUNDS, () => virshListMs(many.socket, MANY_MONITORS), () => virshListMs(one.socket, 1), 1);
    return [
      {
        name: `virsh list --all, ${MANY_MONITORS} monitors (fake upstreams)`,
        qmpx: times.qmpx,
        raw: times.raw,
        unit: 'ms',
        ratio: times.qmpx / times.raw,
        note: `median wall time of the virsh process; raw: the same on a serve of 1 monitor; first call after start (every state read once): ${many.first.toFixed(0)} ms vs ${one.first.toFixed(0)} ms; lower is better`,
      },
    ];
  } finally {
    await many.stop();
    await one.stop();
  }
}

/** Runs the comparison on a fresh QEMU; returns one result. */
async function pipelinedResults(): Promise<BenchResult[]> {
  const qemu = await startQemu({ extraQmpSockets: 1 });
  const dir = createTempDir('rpc-bench');
  const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
  const endpoint = await startLibvirtEndpoint({
    path: socketPathIn(dir, 'libvirt.sock'),
    logger: silentLogger,
    domains: () => [{ name: dom.name, uuid: UUID, id: dom.id, monitor }],
  });
  try {
    const rates = await interleaved(ROUNDS, () => rpcRate(endpoint.path), () => rawRate(qemu.extraQmpPaths[0]!));
    return [
      {
        name: `proc 1 query-status, ${CALLS} pipelined serials`,
        qmpx: rates.qmpx,
        raw: rates.raw,
        unit: 'calls/s',
        ratio: rates.qmpx / rates.raw,
        note: 'qmpx: virsh-style RPC calls through the endpoint; raw: pipelined QMP on the same QEMU; higher is better',
      },
    ];
  } finally {
    await endpoint.close();
    await monitor.close();
    await qemu.stop();
    await removeTempDir(dir);
  }
}

/** Both comparisons. */
export async function run(): Promise<BenchResult[]> {
  const only = process.env.QMPX_RPC_BENCH;
  return [...(only === 'list' ? [] : await pipelinedResults()), ...(only === 'pipelined' ? [] : await listResults())];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('libvirt RPC endpoint', await run());
}
