/**
 * Costs that must stay linear in the input, in interleaved rounds of one run:
 *
 * - 200,000 blank lines sent at once on a text-monitor (HMP) socket, each
 *   answered with a prompt: `qmpx serve` (its own process, on a QMP
 *   upstream) against QEMU's own HMP socket; the figure is each process's
 *   CPU time (from /proc) from the first line sent to the last prompt read.
 *   A queue whose cost grows with its length makes the daemon's figure
 *   quadratic, and every other client of the daemon waits meanwhile.
 * - A 32 MiB HMP output fed in 64 KiB pieces to the HMP reader, against
 *   keeping the pieces in an array and joining them at the prompt.
 *
 *   node dist/bench/queues.bench.js
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HmpReader } from '../lib/hmp/reader.js';
import { startQemu } from '../spec/helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../spec/helpers/temp-dir.js';
import { interleaved, progress, reportResults, type BenchResult } from './measure.js';
import { cpuSeconds } from './proc.js';

const ROUNDS = 3;
const BLANK_LINES = 200_000;
const PROMPT = '(qemu) ';
const MAIN = fileURLToPath(new URL('../lib/cli/main.js', import.meta.url));
const OUTPUT_PIECE = `${'0'.repeat(78)}\r\n`.repeat(829);
const OUTPUT_PIECES = 512;
const ECHO = '\x1b[D\x1b[Kinfo big\x1b[K\r\n';


/** `qmpx serve` on `upstream` with an HMP socket; resolves once the upstream link is up. */
async function startServe(upstream: string, hmpPath: string, qmpPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--log-level', 'info', '--upstream', upstream, '--qmp', qmpPath, '--hmp', hmpPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.setEncoding('utf8');
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not come up: ${log}`)), 60_000);
    child.stderr!.on('data', (text: string) => {
      log += text;
      if (log.includes('"msg":"upstream monitor connected"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${log}`)));
  });
  return child;
}

/**
 * Connects to `path`, waits for the first prompt, sends BLANK_LINES blank
 * lines in one write and waits for as many more prompts; returns the CPU
 * seconds process `pid` used meanwhile.
 */
async function blankLinesCpuSeconds(path: string, pid: number): Promise<number> {
  const socket = net.createConnection(path);
  socket.setEncoding('latin1');
  let tail = '';
  let prompts = 0;
  let onPrompts: (() => void) | undefined;
  socket.on('data', (text: string) => {
    // A prompt may be split across reads: search the end of the previous read too.
    const searched = tail + text;
    for (let at = searched.indexOf(PROMPT); at !== -1; at = searched.indexOf(PROMPT, at + PROMPT.length)) prompts++;
    tail = searched.slice(-(PROMPT.length - 1));
    if (searched.endsWith(PROMPT)) tail = '';
    onPrompts?.();
  });
  const until = (count: number): Promise<void> =>
    new Promise((resolve) => {
      onPrompts = () => {
        if (prompts >= count) resolve();
      };
      onPrompts();
    });
  await until(1);
  const before = cpuSeconds(pid);
  socket.write('\n'.repeat(BLANK_LINES));
  await until(1 + BLANK_LINES);
  const used = cpuSeconds(pid) - before;
  socket.destroy();
  return used;
}

/** Milliseconds for the HMP reader to take a 32 MiB output in 64 KiB pieces. */
function readerMs(): number {
  let outputBytes = 0;
  const reader = new HmpReader(
    {
      banner: () => undefined,
      notBanner: () => undefined,
      reply: (output) => (outputBytes = output.length),
      unexpected: () => undefined,
      oversize: () => undefined,
    },
    { maxOutputBytes: 64 * 1024 * 1024 },
  );
  reader.push(`QEMU 7.2.22 monitor - type 'help' for more information\r\n${PROMPT}`);
  reader.expectReply(false);
  const started = performance.now();
  reader.push(ECHO);
  for (let i = 0; i < OUTPUT_PIECES; i++) reader.push(OUTPUT_PIECE);
  reader.push(PROMPT);
  const elapsed = performance.now() - started;
  if (outputBytes !== OUTPUT_PIECE.length * OUTPUT_PIECES) throw new Error(`the reader gave ${outputBytes} bytes`);
  return elapsed;
}

/** The reference: keep the pieces, join them once the last one ends with the prompt, cut the echo off. */
function joinedPiecesMs(): number {
  const started = performance.now();
  const pieces: string[] = [];
  for (const piece of [ECHO, ...Array<string>(OUTPUT_PIECES).fill(OUTPUT_PIECE), PROMPT]) {
    pieces.push(piece);
    if (!piece.endsWith(PROMPT)) continue;
    const text = pieces.join('');
    const output = text.slice(text.indexOf('\r\n') + 2, -PROMPT.length);
    if (output.length !== OUTPUT_PIECE.length * OUTPUT_PIECES) throw new Error(`the reference gave ${output.length} bytes`);
  }
  return performance.now() - started;
}

export async function run(): Promise<BenchResult[]> {
  const reader = await interleaved(
    ROUNDS,
    async () => readerMs(),
    async () => joinedPiecesMs(),
  );
  const readerResult: BenchResult = {
    name: 'HMP reader, 32 MiB output in 64 KiB pieces',
    qmpx: reader.qmpx,
    raw: reader.raw,
    unit: 'ms',
    ratio: reader.qmpx / reader.raw,
    note: `lower is better; raw joins the pieces at the prompt; median of ${ROUNDS} interleaved rounds; qmpx rounds ${reader.qmpxRounds
      .map((ms) => Math.round(ms))
      .join(' ')} ms`,
  };
  const qemu = await startQemu();
  const dir = createTempDir('bench-queues');
  let serve: ChildProcess | undefined;
  try {
    const hmpPath = socketPathIn(dir, 'hmp.sock');
    serve = await startServe(qemu.qmpPath, hmpPath, socketPathIn(dir, 'qmp.sock'));
    const servePid = serve.pid!;
    let round = 0;
    const measured = await interleaved(
      ROUNDS,
      async () => {
        progress(`qmpx serve, round ${++round}`);
        return (await blankLinesCpuSeconds(hmpPath, servePid)) * 1000;
      },
      () => blankLinesCpuSeconds(qemu.hmpPath, qemu.pid).then((seconds) => seconds * 1000),
      1,
    );
    return [
      readerResult,
      {
        name: `HMP ${BLANK_LINES.toLocaleString('en-US')} blank lines at once, CPU`,
        qmpx: measured.qmpx,
        raw: measured.raw,
        unit: 'ms',
        ratio: measured.qmpx / measured.raw,
        note: `lower is better; raw is QEMU's own HMP socket; median of ${ROUNDS} interleaved rounds; qmpx rounds ${measured.qmpxRounds
          .map((ms) => Math.round(ms))
          .join(' ')} ms`,
      },
    ];
  } finally {
    if (serve && serve.exitCode === null) {
      const exited = new Promise((resolve) => serve!.once('exit', resolve));
      serve.kill('SIGTERM');
      await exited;
    }
    await qemu.stop();
    await removeTempDir(dir);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await reportResults('Input queues', await run());
}
