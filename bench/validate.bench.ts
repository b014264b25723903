/**
 * Argument validation (lib/qapi/validate.ts): what checking costs per
 * call, what the first use of the largest command costs, and pipelined
 * throughput with validation on against off, on the same QEMU in one run.
 *
 *   node dist/bench/validate.bench.js
 *
 * In the results `qmpx` is the measurement with validation and `raw` the
 * reference named in each note.
 */
import { pathToFileURL } from 'node:url';
import { connect, silentLogger, type ValidateMode } from '../lib/index.js';
import { schemaChecksFor } from '../lib/qapi/validate.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { interleaved, median, progress, reportResults, type BenchResult } from './measure.js';

const ROUNDS = 7;
const PIPELINED = 5000;
const CHECKS = 20_000;

const CALLS: [string, object][] = [
  ['query-status', {}],
  ['blockdev-add', { driver: 'qcow2', 'node-name': 'disk0', file: { driver: 'file', filename: '/var/lib/images/disk0.qcow2', aio: 'threads' }, 'cache-size': 1048576, 'lazy-refcounts': true }],
  ['object-add', { 'qom-type': 'throttle-group', id: 'tg0', limits: { 'iops-total': 1000, 'bps-total': 10485760, 'iops-total-max': 2000 } }],
];

/** Median ns per call of `body`, over rounds of CHECKS calls. */
function nanosPerCall(body: () => unknown): number {
  const rounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < CHECKS; i++) body();
    rounds.push(Number(process.hrtime.bigint() - started) / CHECKS);
  }
  return median(rounds);
}

async function pipelinedRate(path: string, validate: ValidateMode): Promise<number> {
  const monitor = await connect(path, { logger: silentLogger, validate });
  await monitor.execute('query-status'); // the schema is fetched on the first checked call: not part of the rate
  const started = performance.now();
  await Promise.all(Array.from({ length: PIPELINED }, () => monitor.execute('query-status')));
  const seconds = (performance.now() - started) / 1000;
  await monitor.close();
  return PIPELINED / seconds;
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const qemu = await startQemu();
  try {
    const monitor = await connect(qemu.qmpPath, { logger: silentLogger });
    const schemaInfo = await monitor.execute('query-qmp-schema');
    await monitor.close();
    const checks = await schemaChecksFor(schemaInfo);
    for (const [command, args] of CALLS) {
      progress(`validate: ${command} per call`);
      if (checks.problemWith(command, args) !== undefined) throw new Error(`${command}: the benchmark's arguments are invalid`);
      const checked = nanosPerCall(() => checks.problemWith(command, args));
      const serialised = nanosPerCall(() => JSON.stringify(args));
      results.push({ name: `check ${command} arguments, median per call`, qmpx: checked / 1000, raw: serialised / 1000, unit: 'µs', ratio: checked / serialised, note: 'lower is better; raw: JSON.stringify of the same arguments, which every call pays anyway' });
    }
    progress('validate: first use of blockdev-add');
    const firstUse: number[] = [];
    const warm: number[] = [];
    for (let round = 0; round < 3; round++) {
      // A schema with one more entry hashes differently, so nothing compiled before is reused.
      const fresh = await schemaChecksFor([...(schemaInfo as object[]), { name: `bench-${round}`, 'meta-type': 'builtin', 'json-type': 'string' }]);
      let started = performance.now();
      fresh.problemWith('blockdev-add', CALLS[1]![1]);
      firstUse.push(performance.now() - started);
      started = performance.now();
      fresh.problemWith('blockdev-add', CALLS[1]![1]);
      warm.push(performance.now() - started);
    }
    results.push({ name: 'first use of blockdev-add (the largest command): build + compile, median', qmpx: median(firstUse), raw: median(warm), unit: 'ms', ratio: median(firstUse) / median(warm), note: 'once per command per QEMU binary per process; raw: the second call' });
    progress('validate: pipelined query-status, validate reject vs off');
    const rates = await interleaved(ROUNDS, () => pipelinedRate(qemu.qmpPath, 'reject'), () => pipelinedRate(qemu.qmpPath, 'off'));
    results.push({ name: `pipelined ${PIPELINED} query-status, validate 'reject' vs 'off'`, qmpx: rates.qmpx, raw: rates.raw, unit: 'commands/s', ratio: rates.qmpx / rates.raw, note: 'higher is better; target ≥ 0.95; raw: the same client with validation off' });
  } finally {
    await qemu.stop();
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('argument validation', await run());
}
