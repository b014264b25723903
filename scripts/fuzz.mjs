#!/usr/bin/env node
/**
 * The long fuzz run (after `npm run build`): each spec file of spec/fuzz/
 * in its own node process with QMPX_FUZZ_RUNS set to its share of the
 * inputs, one file at a time. Prints per target the inputs fed, the time,
 * the findings and the heap growth (after the run and its peak), then the totals; exits 1 if any target
 * had a finding or a file failed.
 *
 *   node scripts/fuzz.mjs [SCALE]     SCALE multiplies every share (default 1: 1,100,000 inputs)
 *
 * QMPX_FUZZ_SEED fixes the seed of every target (each prints the seed it used).
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** Inputs per target of each file (a file with two targets feeds twice that). */
const SHARES = [
  ['framer', 200_000],
  ['qemu-lexer', 200_000],
  ['qmp-client', 100_000],
  ['qmp-session', 100_000],
  ['hmp-session', 100_000],
  ['rpc', 150_000],
];

const scale = process.argv[2] === undefined ? 1 : Number(process.argv[2]);
if (!(scale > 0)) {
  console.log(`SCALE must be a positive number, not ${JSON.stringify(process.argv[2])}`);
  process.exit(2);
}

const results = [];
const failedFiles = [];
const startedAt = Date.now();
console.log(`fuzz run of ${new Date().toISOString()}, scale ${scale}`);
for (const [name, share] of SHARES) {
  const inputs = Math.max(1, Math.round(share * scale));
  const { code, output } = await runFile(join(ROOT, 'dist', 'spec', 'fuzz', `${name}.spec.js`), inputs);
  for (const match of output.matchAll(/^(?:\S+ )?fuzz-result (\{.*\})$/gm)) {
    const result = JSON.parse(match[1]);
    results.push(result);
    console.log(line(result));
  }
  if (code !== 0) {
    failedFiles.push(name);
    process.stdout.write(`\n===== spec/fuzz/${name}.spec.ts failed (exit ${code}):\n${output}\n`);
  }
}
const inputs = results.reduce((sum, result) => sum + result.inputs, 0);
const findings = results.reduce((sum, result) => sum + result.findings, 0);
console.log(`total: ${inputs} inputs, ${((Date.now() - startedAt) / 1000).toFixed(0)} s, ${findings} findings${failedFiles.length > 0 ? `, failed: ${failedFiles.join(', ')}` : ''}`);
process.exit(findings > 0 || failedFiles.length > 0 ? 1 : 0);

function line(result) {
  const seconds = (result.ms / 1000).toFixed(1);
  const perSecond = Math.round(result.inputs / Math.max(result.ms / 1000, 0.001));
  const mebibytes = (bytes) => `${bytes < 0 ? '' : '+'}${(bytes / 1024 / 1024).toFixed(1)}`;
  const heap = `heap ${mebibytes(result.heapGrowthBytes)} MiB after (peak ${mebibytes(result.peakHeapGrowthBytes)})`;
  return `${result.target.padEnd(20)} ${String(result.inputs).padStart(9)} inputs ${seconds.padStart(7)} s ${String(perSecond).padStart(6)}/s  findings ${result.findings}  ${heap}  seed ${result.seed}`;
}

function runFile(file, inputs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      cwd: ROOT,
      env: { ...process.env, QMPX_FUZZ_RUNS: String(inputs) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks = [];
    child.stdout.on('data', (chunk) => chunks.push(chunk));
    child.stderr.on('data', (chunk) => chunks.push(chunk));
    child.on('close', (code, signal) => resolve({ code: code ?? signal, output: Buffer.concat(chunks).toString('utf8') }));
  });
}
