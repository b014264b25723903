/**
 * What every fuzz target shares: how many inputs to run, the seed, the
 * tally each target prints, the invariants checked around every round (no
 * uncaught exception, no unhandled rejection, a deadline per round, heap
 * growth bounded across the run), and byte-level mutation and chunking.
 *
 * A target runs rounds of fast-check runs until it has fed its inputs: the
 * short run of the normal test command feeds a few thousand, and
 * QMPX_FUZZ_RUNS (inputs per target) makes the long run of `npm run fuzz`.
 * Each round has its own seed (QMPX_FUZZ_SEED, else one drawn at random,
 * plus the round number), printed with any failure so that it can be
 * replayed; fast-check shrinks a failing case before reporting it.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';

/** Inputs per target: QMPX_FUZZ_RUNS when set, else the target's short default. */
export function inputsPerTarget(shortDefault: number): number {
  const text = process.env.QMPX_FUZZ_RUNS;
  if (text === undefined || text === '') return shortDefault;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`QMPX_FUZZ_RUNS must be a positive integer, not ${JSON.stringify(text)}`);
  return value;
}

/** Whether this is a long run (QMPX_FUZZ_RUNS set). */
export const LONG_RUN = (process.env.QMPX_FUZZ_RUNS ?? '') !== '';

/** The base seed of this process's rounds. */
export const BASE_SEED = (() => {
  const text = process.env.QMPX_FUZZ_SEED;
  if (text !== undefined && text !== '') return Number(text) | 0;
  return (Math.random() * 0x7fff_ffff) | 0;
})();

/**
 * Heap growth after garbage collection allowed between the end of the first
 * round and the end of the run, once the target has quiesced (see
 * fuzzTarget's `quiesce`): a leak of 32 bytes per input fails the long run.
 */
export const MAX_HEAP_GROWTH_BYTES = 32 * 1024 * 1024;

/**
 * Growth allowed at any sample during the run: what is held by design for a
 * while (a session's socket stays reachable for the proxy's 10 s end
 * linger, tens of MiB at fuzzing rates) counts here; a runaway fails early.
 */
export const MAX_PEAK_HEAP_GROWTH_BYTES = 256 * 1024 * 1024;

/**
 * A round that takes longer than this is a hang. Generous: the machine may
 * be shared and slow, and a case that hangs is retried on its own
 * deadline at every shrinking step before fast-check reports it.
 */
export const ROUND_DEADLINE_MS = 300_000;

/** A case of an in-memory target not done within this is a hang (it takes well under a millisecond). */
export const IN_MEMORY_CASE_DEADLINE_MS = 2000;

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** heapUsed after a full collection. */
export function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Everything that escaped: uncaught exceptions and unhandled rejections, recorded instead of ending the process. */
export const escaped: unknown[] = [];
process.on('uncaughtException', (error) => escaped.push(error));
process.on('unhandledRejection', (reason) => escaped.push(reason));

export interface FuzzResult {
  target: string;
  inputs: number;
  rounds: number;
  ms: number;
  findings: number;
  /** Growth after the run, once quiesced. */
  heapGrowthBytes: number;
  /** Largest growth sampled during the run. */
  peakHeapGrowthBytes: number;
  seed: number;
}

export interface FuzzTargetOptions {
  /** Resolves once what the target holds for a while by design is released (timers of the code under test); long runs only. */
  quiesce?: () => Promise<void>;
}

/**
 * Runs `round(seed, runs)` until `inputs` inputs were fed (`round` returns
 * how many it fed). Fails if a round throws (a property failed), takes
 * longer than the deadline, lets anything escape, or if the heap grew
 * past MAX_PEAK_HEAP_GROWTH_BYTES during the run or past
 * MAX_HEAP_GROWTH_BYTES after it. Prints one line for the run and returns it.
 */
export async function fuzzTarget(
  target: string,
  inputs: number,
  runsPerRound: number,
  round: (seed: number, runs: number) => number | Promise<number>,
  options: FuzzTargetOptions = {},
): Promise<FuzzResult> {
  const startedAt = performance.now();
  let fed = 0;
  let rounds = 0;
  let heapAtStart = 0;
  let heapGrowthBytes = 0;
  let peakHeapGrowthBytes = 0;
  let ms = 0;
  let finding: unknown;
  try {
    while (fed < inputs) {
      const seed = (BASE_SEED + rounds) | 0;
      fed += await withDeadline(Promise.resolve(round(seed, runsPerRound)), ROUND_DEADLINE_MS, `${target} round with seed ${seed}`);
      rounds++;
      if (escaped.length > 0) throw new Error(`${target}: escaped during the round with seed ${seed}: ${describe(escaped[0])}`);
      if (rounds === 1) heapAtStart = heapAfterGc();
      // Sampled every 16 rounds: a full collection is not free.
      if (rounds % 16 === 0 || fed >= inputs) {
        peakHeapGrowthBytes = Math.max(peakHeapGrowthBytes, heapAfterGc() - heapAtStart);
        if (peakHeapGrowthBytes > MAX_PEAK_HEAP_GROWTH_BYTES) throw new Error(`${target}: heap grew by ${peakHeapGrowthBytes} bytes after ${fed} inputs`);
      }
    }
    ms = Math.round(performance.now() - startedAt);
    // A short run holds too little for the wait to matter, and CI time does.
    if (LONG_RUN) await options.quiesce?.();
    heapGrowthBytes = heapAfterGc() - heapAtStart;
    if (heapGrowthBytes > MAX_HEAP_GROWTH_BYTES) throw new Error(`${target}: heap grew by ${heapGrowthBytes} bytes over ${fed} inputs`);
  } catch (error) {
    finding = error;
    if (ms === 0) ms = Math.round(performance.now() - startedAt);
  }
  const result: FuzzResult = {
    target,
    inputs: fed,
    rounds,
    ms,
    findings: finding === undefined ? 0 : 1,
    heapGrowthBytes,
    peakHeapGrowthBytes,
    seed: BASE_SEED,
  };
  // One machine-readable line per target, collected by scripts/fuzz.mjs.
  console.log(`fuzz-result ${JSON.stringify(result)}`);
  if (finding !== undefined) throw finding;
  return result;
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** Rejects with a hang report if `promise` has not settled within `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no progress: ${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** fast-check parameters of one round. */
export function roundParameters(seed: number, runs: number): fc.Parameters<unknown> {
  return { seed, numRuns: runs, includeErrorInReport: true };
}

const CORPUS_DIR = new URL('../../../spec/fuzz/corpus/', import.meta.url);

/** A corpus file's bytes. */
export function corpusBytes(name: string): Buffer {
  return readFileSync(new URL(name, CORPUS_DIR));
}

/** The lines of a corpus file, line ends removed, blank lines dropped. */
export function corpusLines(name: string): string[] {
  return corpusBytes(name)
    .toString('utf8')
    .split(/\r?\n/)
    .filter((line) => line.trim() !== '');
}

/**
 * The bytes one side sent in a socat `-x` hex log (`>` for what socat read
 * from the client, `<` for what it read from the server), in order.
 */
export function socatStream(name: string, direction: '>' | '<'): Buffer {
  const chunks: Buffer[] = [];
  let taking = false;
  for (const line of corpusBytes(name).toString('latin1').split('\n')) {
    if (line.startsWith('>') || line.startsWith('<')) {
      taking = line.startsWith(direction);
      continue;
    }
    if (!taking || !line.startsWith(' ')) continue;
    const hex = line.slice(1, 48).replace(/ /g, '');
    chunks.push(Buffer.from(hex, 'hex'));
  }
  return Buffer.concat(chunks);
}

export { chunked } from '../helpers/chunks.js';

/** Chunk cut points: none, a few, or one per byte (`byteByByte`). */
export const cutPoints = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.nat(), { maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constant([] as number[]) },
);

/** One change to a byte string. */
export type Mutation =
  | { kind: 'replace'; at: number; value: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'truncate'; at: number };

/**
 * Mutations biased towards what matters to the parsers under test:
 * `interesting` holds bytes and tokens of the grammar (quotes, braces,
 * backslashes, line ends, 0xFF...), inserted whole.
 */
export function mutation(interesting: readonly Uint8Array[]): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.oneof(fc.constantFrom(...interesting), fc.uint8Array({ minLength: 1, maxLength: 8 })) }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  );
}

/** `input` with `mutations` applied in order (positions taken modulo the current length). */
export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(input);
  for (const change of mutations) {
    const at = bytes.length === 0 ? 0 : change.at % bytes.length;
    switch (change.kind) {
      case 'replace':
        if (bytes.length > 0) bytes[at] = change.value;
        break;
      case 'flip':
        if (bytes.length > 0) bytes[at]! ^= 1 << change.bit;
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + change.length)]);
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), change.bytes, bytes.subarray(at)]);
        break;
      case 'duplicate':
        bytes = Buffer.concat([bytes.subarray(0, at + change.length), bytes.subarray(at)]);
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
    }
  }
  return bytes;
}

/** Latin1 strings as byte arrays, for `mutation()`'s dictionary. */
export function tokens(...texts: string[]): Uint8Array[] {
  return texts.map((text) => Buffer.from(text, 'latin1'));
}

/**
 * A round of an asynchronous property: runs `body` on `runs` generated
 * values and returns how many inputs they fed (what `body` returns).
 */
export function asyncRound<T>(arbitrary: fc.Arbitrary<T>, body: (value: T) => Promise<number>): (seed: number, runs: number) => Promise<number> {
  return async (seed, runs) => {
    let fed = 0;
    await fc.assert(
      fc.asyncProperty(arbitrary, async (value) => {
        fed += await body(value);
      }),
      roundParameters(seed, runs),
    );
    return fed;
  };
}

/** The same for a synchronous property. */
export function syncRound<T>(arbitrary: fc.Arbitrary<T>, body: (value: T) => number): (seed: number, runs: number) => number {
  return (seed, runs) => {
    let fed = 0;
    fc.assert(
      fc.property(arbitrary, (value) => {
        fed += body(value);
      }),
      roundParameters(seed, runs),
    );
    return fed;
  };
}
