/**
 * `npm run bench`: runs every compiled `dist/bench/*.bench.js` in a process
 * of its own (one suite's heap and leftovers must not weigh on the next's
 * figures or RSS), prints the ratios as each suite goes, and writes them all
 * with the date to bench/results/latest.json.
 *
 *   npm run bench              every suite
 *   npm run bench -- proxy     the suites whose file name contains "proxy"
 *   npm run bench -- startup   start-up of the CLI and of import('qmpx') (startup.bench.ts)
 *   npm run bench -- --against DIR [--runs N] [SUITE...]
 *                              each suite of this build and of the built checkout in DIR
 *                              (its dist/bench), N times each (default 2), taking turns,
 *                              then every figure both report compared (bench/compare.ts)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compareSuite, printComparison, type FigureComparison } from './compare.js';
import type { BenchResult } from './measure.js';

const here = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = join(here, '..', '..');
const { values: options, positionals: only } = parseArgs({
  options: { against: { type: 'string' }, runs: { type: 'string', default: '2' } },
  allowPositionals: true,
});
const runs = Number(options.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a positive integer, not ${JSON.stringify(options.runs)}`);
const theirDir = options.against === undefined ? undefined : resolvePath(options.against, 'dist', 'bench');
if (theirDir !== undefined && !existsSync(theirDir)) throw new Error(`${theirDir} does not exist: build that checkout first (npx tsc -p tsconfig.json there)`);

async function runSuite(dir: string, file: string): Promise<BenchResult[]> {
  const resultsPath = join(tmpdir(), `qmpx-bench-${process.pid}-${file}.json`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [join(dir, file)], { stdio: 'inherit', env: { ...process.env, QMPX_BENCH_RESULTS: resultsPath } });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`${join(dir, file)} exited with code ${code}`);
  try {
    return JSON.parse(await readFile(resultsPath, 'utf8')) as BenchResult[];
  } finally {
    await rm(resultsPath, { force: true });
  }
}

const files = (await readdir(here)).filter((name) => name.endsWith('.bench.js') && (only.length === 0 || only.some((part) => name.includes(part)))).sort();
const report: Record<string, BenchResult[]> = {};
const comparisons: Record<string, FigureComparison[]> = {};
for (const file of files) {
  const suite = file.replace(/\.bench\.js$/, '');
  if (theirDir === undefined || !existsSync(join(theirDir, file))) {
    report[suite] = await runSuite(here, file);
    continue;
  }
  const ours: BenchResult[][] = [];
  const theirs: BenchResult[][] = [];
  // Taking turns, each build first every other time: the machine's load drifts over minutes.
  for (let run = 0; run < runs; run++) {
    if (run % 2 === 0) {
      ours.push(await runSuite(here, file));
      theirs.push(await runSuite(theirDir, file));
    } else {
      theirs.push(await runSuite(theirDir, file));
      ours.push(await runSuite(here, file));
    }
  }
  report[suite] = ours[0]!;
  comparisons[suite] = compareSuite({ suite, ours, theirs });
  printComparison(suite, options.against!, comparisons[suite]);
}
const resultsDir = join(repositoryRoot, 'bench', 'results');
await mkdir(resultsDir, { recursive: true });
await writeFile(
  join(resultsDir, 'latest.json'),
  JSON.stringify(
    { date: new Date().toISOString(), node: process.version, results: report, ...(theirDir === undefined ? {} : { against: options.against, runs, comparisons }) },
    null,
    2,
  ) + '\n',
);
console.log(`\nwritten: bench/results/latest.json`);
