/**
 * `npm run bench`: runs every compiled `dist/bench/*.bench.js` (each exports
 * `run(): Promise<BenchResult[]>`), prints the ratios, and writes them with
 * the date to bench/results/latest.json.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { printResults, type BenchResult } from './measure.js';

const here = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = join(here, '..', '..');
const only = process.argv.slice(2);

const files = (await readdir(here)).filter((name) => name.endsWith('.bench.js') && (only.length === 0 || only.some((part) => name.includes(part)))).sort();
const report: Record<string, BenchResult[]> = {};
for (const file of files) {
  const suite = (await import(pathToFileURL(join(here, file)).href)) as { run(): Promise<BenchResult[]> };
  const results = await suite.run();
  report[file.replace(/\.bench\.js$/, '')] = results;
  printResults(file, results);
}
const resultsDir = join(repositoryRoot, 'bench', 'results');
await mkdir(resultsDir, { recursive: true });
await writeFile(
  join(resultsDir, 'latest.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, results: report }, null, 2) + '\n',
);
console.log(`\nwritten: bench/results/latest.json`);
