/**
 * Shared measuring tools for the benchmarks: results in one shape, medians,
 * and interleaved rounds after discarded warm-up rounds (docs/monitor-facts.md §7:
 * sequential figures vary up to 2× between rounds here, so qmpx and the raw
 * client alternate within one run).
 */
import { writeFile } from 'node:fs/promises';

/** One comparison: qmpx and the raw-socket reference measured in the same run. */
export interface BenchResult {
  name: string;
  qmpx: number;
  raw: number;
  unit: string;
  /** qmpx / raw for rates, raw / qmpx never: read `note` for which way is better. */
  ratio: number;
  note?: string;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

/**
 * Runs `rounds` rounds of each measurement, alternating which goes first, and
 * returns the median of each. `warmUpRounds` rounds of each run first and
 * are discarded: until V8 has optimised the code on the path (a few
 * thousand commands), a round measures the compiler, and a daemon or a
 * long-lived client is measured warm.
 */
export async function interleaved(
  rounds: number,
  measureQmpx: () => Promise<number>,
  measureRaw: () => Promise<number>,
  warmUpRounds = 2,
): Promise<{ qmpx: number; raw: number; qmpxRounds: number[]; rawRounds: number[] }> {
  for (let round = 0; round < warmUpRounds; round++) {
    await measureQmpx();
    await measureRaw();
  }
  const qmpxRounds: number[] = [];
  const rawRounds: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      qmpxRounds.push(await measureQmpx());
      rawRounds.push(await measureRaw());
    } else {
      rawRounds.push(await measureRaw());
      qmpxRounds.push(await measureQmpx());
    }
  }
  return { qmpx: median(qmpxRounds), raw: median(rawRounds), qmpxRounds, rawRounds };
}

/**
 * Every order of `0..count-1`. Taking turns in each of them in rotation,
 * every path goes first, last, and right after each other path equally
 * often within an order: what ran just before moves a round trip by tens of
 * µs on two cores, so a path always run right after the same neighbour is
 * biased by it.
 */
export function allOrders(count: number): number[][] {
  if (count <= 1) return [Array.from({ length: count }, (_, index) => index)];
  const orders: number[][] = [];
  for (const rest of allOrders(count - 1)) {
    for (let at = 0; at <= rest.length; at++) orders.push([...rest.slice(0, at), count - 1, ...rest.slice(at)]);
  }
  return orders;
}

export function rssMiB(): number {
  return Math.round((process.memoryUsage().rss / 1048576) * 10) / 10;
}

/**
 * Prints a suite's results; with QMPX_BENCH_RESULTS set (bench/run.ts sets
 * it), also writes them there as JSON for the combined report.
 */
export async function reportResults(title: string, results: readonly BenchResult[]): Promise<void> {
  printResults(title, results);
  const path = process.env.QMPX_BENCH_RESULTS;
  if (path) await writeFile(path, JSON.stringify(results));
}

export function printResults(title: string, results: readonly BenchResult[]): void {
  console.log(`\n${title}`);
  for (const result of results) {
    console.log(
      `  ${result.name.padEnd(48)} qmpx ${format(result.qmpx).padStart(12)} ${result.unit.padEnd(8)} raw ${format(result.raw).padStart(12)}  ratio ${result.ratio.toFixed(3)}${result.note ? `  (${result.note})` : ''}`,
    );
  }
}

function format(value: number): string {
  return value >= 1000 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

/** One line on stderr per stage, so a stalled run shows where it stopped. */
export function progress(stage: string): void {
  process.stderr.write(`  … ${stage}\n`);
}

/**
 * Runs `first` and `second` `rounds` times each, taking turns, each going
 * first every other time, so neither always runs right after the other.
 */
export async function takeTurns(rounds: number, first: () => Promise<void>, second: () => Promise<void>): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      await first();
      await second();
    } else {
      await second();
      await first();
    }
  }
}
