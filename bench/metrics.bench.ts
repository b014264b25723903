/**
 * What `serve --metrics` costs: pipelined throughput through two `qmpx
 * serve` processes in front of the same QEMU (two QMP monitors of it), one
 * with --metrics and one without, in interleaved rounds of the same run
 * (target: with ≥ 0.97× without). /metrics is scraped after every round, so
 * the figures are those of a daemon whose metrics are read.
 *
 *   node dist/bench/metrics.bench.js
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { interleaved, reportResults, type BenchResult } from './measure.js';
import { rawPipelinedRate } from './raw-client.js';

const ROUNDS = 9;
const PIPELINED = 5000;
const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));

/** `qmpx serve` as a child process; resolves once its upstream is up (and its metrics listen, with --metrics). */
async function startServe(args: string[]): Promise<{ child: ChildProcess; metricsUrl: string | undefined }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--log-level', 'info', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const wantsMetrics = args.includes('--metrics');
  let text = '';
  let up = false;
  let metricsUrl: string | undefined;
  child.stderr!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not come up: ${text}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${text}`)));
    child.stderr!.on('data', (chunk: string) => {
      text += chunk;
      up ||= text.includes('"msg":"upstream monitor connected"');
      metricsUrl ??= /"metrics":"([^"]+)"/.exec(text)?.[1];
      if (up && (!wantsMetrics || metricsUrl !== undefined)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, metricsUrl };
}

async function stopServe(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The raw client's pipelined rate through `path`, then a scrape of `scrape` when given (untimed). */
async function pipelinedRate(path: string, scrape?: string): Promise<number> {
  const rate = await rawPipelinedRate(path, PIPELINED);
  if (scrape !== undefined) await (await fetch(scrape)).text();
  return rate;
}

export async function run(): Promise<BenchResult[]> {
  const dir = createTempDir('metrics-bench');
  const qemu = await startQemu({ hmp: false, extraQmpSockets: 1 });
  const withMetrics = socketPathIn(dir, 'metrics.qmp');
  const without = socketPathIn(dir, 'plain.qmp');
  const servers: ChildProcess[] = [];
  try {
    const measured = await startServe(['--upstream', qemu.qmpPath, '--qmp', withMetrics, '--name', 'bench', '--metrics', '127.0.0.1:0']);
    servers.push(measured.child);
    const plain = await startServe(['--upstream', qemu.extraQmpPaths[0]!, '--qmp', without, '--name', 'bench']);
    servers.push(plain.child);
    const rates = await interleaved(ROUNDS, () => pipelinedRate(withMetrics, measured.metricsUrl), () => pipelinedRate(without));
    return [
      {
        name: `pipelined ${PIPELINED} query-status through serve, with --metrics vs without`,
        qmpx: rates.qmpx,
        raw: rates.raw,
        unit: 'cmd/s',
        ratio: rates.qmpx / rates.raw,
        note: 'higher is better; target ≥ 0.97',
      },
    ];
  } finally {
    await Promise.all(servers.map(stopServe));
    await qemu.stop();
    await removeTempDir(dir);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('serve --metrics', await run());
}
