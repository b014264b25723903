/**
 * `npm run bench`: runs every compiled `dist/bench/*.bench.js` in a process
 * of its own (one suite's heap and leftovers must not weigh on the next's
 * figures or RSS), prints the ratios as each suite goes, and writes them all
 * with the date to bench/results/latest.json.
 *
 *   npm run bench              every suite
 *   npm run bench -- proxy     the suites whose file name contains "proxy"
 *   npm run bench -- startup   start-up of the CLI and of import('qmpx') (startup.bench.ts)
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './measure.js';

const here = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = join(here, '..', '..');
const only = process.argv.slice(2);

async function runSuite(file: string): Promise<BenchResult[]> {
  const resultsPath = join(tmpdir(), `qmpx-bench-${process.pid}-${file}.json`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, file)], { stdio: 'inherit', env: { ...process.env, QMPX_BENCH_RESULTS: resultsPath } });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`${file} exited with code ${code}`);
  try {
    return JSON.parse(await readFile(resultsPath, 'utf8')) as BenchResult[];
  } finally {
    await rm(resultsPath, { force: true });
  }
}

const files = (await readdir(here)).filter((name) => name.endsWith('.bench.js') && (only.length === 0 || only.some((part) => name.includes(part)))).sort();
const report: Record<string, BenchResult[]> = {};
for (const file of files) report[file.replace(/\.bench\.js$/, '')] = await runSuite(file);
const resultsDir = join(repositoryRoot, 'bench', 'results');
await mkdir(resultsDir, { recursive: true });
await writeFile(
  join(resultsDir, 'latest.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, results: report }, null, 2) + '\n',
);
console.log(`\nwritten: bench/results/latest.json`);
