/**
 * Start-up: what a short-lived `qmpx` process and a bare `import('qmpx')`
 * cost against a bare Node process, `node -e 0`, on the same machine in the
 * same run. A script that runs `qmpx exec` in a loop pays this every time.
 *
 * Each command is spawned ROUNDS times, taking turns (every command once per
 * round, in a rotating order), after WARM_UP discarded rounds that fill the
 * page cache; the figure is the median wall-clock time from spawn to exit.
 * The import's memory is measured inside one process: its resident set
 * before and after `await import('qmpx')`, and the time the import took.
 *
 *   node dist/bench/startup.bench.js        (or: npm run bench -- startup)
 */
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startQemu } from '../spec/helpers/qemu.js';
import { allOrders, median, reportResults, type BenchResult } from './measure.js';

const ROUNDS = 24;
const WARM_UP = 2;
const IMPORT_SAMPLES = 9;
const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));
/** The package root: `import('qmpx')` resolves there by the package's own name. */
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Timed {
  name: string;
  args: string[];
}

/** Runs `node ARGS` to its end; resolves with the wall-clock milliseconds, rejects on a non-zero exit. */
function timeProcess(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd: PACKAGE_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => {
      const elapsed = performance.now() - started;
      if (code === 0) resolve(elapsed);
      else reject(new Error(`node ${args.join(' ')} exited with ${code}: ${stderr}`));
    });
  });
}

/** Median wall-clock ms of each command, the commands taking turns in every order in rotation. */
async function medianTimes(commands: readonly Timed[]): Promise<number[]> {
  const samples: number[][] = commands.map(() => []);
  const orders = allOrders(commands.length);
  for (let round = 0; round < WARM_UP + ROUNDS; round++) {
    for (const which of orders[round % orders.length]!) {
      const elapsed = await timeProcess(commands[which]!.args);
      if (round >= WARM_UP) samples[which]!.push(elapsed);
    }
  }
  return samples.map((values) => median(values));
}

/** The import measured from inside one process: ms it took and the resident set it added (MiB). */
async function importInProcess(): Promise<{ ms: number; rssMiB: number }> {
  const script = [
    'const rss = process.memoryUsage().rss;',
    'const started = performance.now();',
    "await import('qmpx');",
    'const ms = performance.now() - started;',
    'process.stdout.write(JSON.stringify({ ms, rssMiB: (process.memoryUsage().rss - rss) / 1048576 }));',
  ].join(' ');
  const samples: Array<{ ms: number; rssMiB: number }> = [];
  for (let sample = 0; sample < IMPORT_SAMPLES; sample++) {
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`import probe exited with ${code}`))));
    });
    samples.push(JSON.parse(output) as { ms: number; rssMiB: number });
  }
  return { ms: median(samples.map((s) => s.ms)), rssMiB: median(samples.map((s) => s.rssMiB)) };
}

export async function run(): Promise<BenchResult[]> {
  const qemu = await startQemu({ hmp: false });
  try {
    const commands: Timed[] = [
      { name: 'node -e 0', args: ['-e', '0'] },
      { name: 'qmpx --version', args: [MAIN, '--version'] },
      { name: 'qmpx exec SOCKET query-status', args: [MAIN, 'exec', qemu.qmpPath, 'query-status'] },
      { name: "node -e \"await import('qmpx')\"", args: ['--input-type=module', '-e', "await import('qmpx')"] },
    ];
    const [bare, ...others] = await medianTimes(commands);
    const inProcess = await importInProcess();
    const results: BenchResult[] = others.map((ms, index) => ({
      name: commands[index + 1]!.name,
      qmpx: ms,
      raw: bare!,
      unit: 'ms',
      ratio: ms / bare!,
      note: `raw: node -e 0; +${(ms - bare!).toFixed(1)} ms${index === 1 ? ' (target ≤ 2×)' : index === 2 ? ' (target ≤ +30 ms)' : ''}`,
    }));
    results.push({
      name: "await import('qmpx') inside a process",
      qmpx: inProcess.ms,
      raw: 0,
      unit: 'ms',
      ratio: 0,
      note: `resident set +${inProcess.rssMiB.toFixed(1)} MiB; median of ${IMPORT_SAMPLES} processes`,
    });
    return results;
  } finally {
    await qemu.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('start-up', await run());
}
