#!/usr/bin/env node
/**
 * Runs the compiled uvu spec files, each in its own node process (the unit
 * tier: each in a worker process that runs one file after another).
 *
 *   node scripts/run-specs.mjs [--unit] [FILTER...]     (after `npm run build`)
 *
 * - With --unit, runs only the unit tier: the specs listed in UNIT_SPECS
 *   below, which need nothing but Node (no QEMU, qemu-ga, virsh, python3,
 *   go, socat or tmux). Each runs with scripts/unit-tier-guard.mjs
 *   preloaded, which makes starting any program but Node throw, so a unit
 *   spec that starts needing QEMU fails loudly. A listed file that does not
 *   exist is an error (a moved spec must be moved in the list too). The
 *   files run in worker processes, one per core (scripts/unit-worker.mjs),
 *   each file on its own in turn; what follows about process groups and
 *   TMPDIR holds per worker. QMPX_SPEC_TIER=unit tells the property tests
 *   to try fewer cases (spec/helpers/property-runs.ts).
 * - Finds dist/spec/**\/*.spec.js; with FILTERs, keeps files whose dist path
 *   or source path (spec/...spec.ts) contains any of them. A compiled spec
 *   whose .ts source is gone is stale output and is not run.
 * - Runs QMPX_SPEC_JOBS files at a time (default 2; with --unit, one per
 *   core). Each runs in its own process group, so everything it spawned
 *   (QEMU, qemu-ga, socat...) can be killed with it.
 * - A file still running after QMPX_SPEC_TIMEOUT_S seconds (default 180)
 *   has its process group SIGKILLed and counts as failed.
 * - Each file gets a private TMPDIR, removed when the file ends: a file
 *   killed on its deadline cannot run its own cleanup, and leaves nothing.
 * - A file counts its failures from uvu's summary (Total - Passed). It has
 *   at least one failure if it exits non-zero, dies of a signal, prints no
 *   summary, or leaves processes of its group running after it exits.
 * - Each file's output is printed whole when the file ends (never
 *   interleaved), followed by a result line. The last line printed is always
 *   `N passed, N failed` (`, N skipped` when any were skipped). The exit
 *   code is 1 if anything failed or no spec file was found.
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const unitTier = process.argv.includes('--unit');
/** Where the compiled specs are: tsc's build, or the unit tier's transpiled copy (scripts/transpile-unit.mjs). */
const BUILD_DIR = join(ROOT, unitTier ? 'dist-unit' : 'dist');
const COMPILED_SPEC_DIR = join(BUILD_DIR, 'spec');
const UNIT_TIER_GUARD = join(ROOT, 'scripts', 'unit-tier-guard.mjs');
const UNIT_WORKER = join(ROOT, 'scripts', 'unit-worker.mjs');

/**
 * The unit tier (`npm run test:unit`): specs of pure parts that need only
 * Node: framers, readers and scanners, XDR, RPC framing, window and
 * dispatch, the FIFO, config parsing, the error tree. A spec belongs here
 * when it talks to nothing but in-process code, a fake peer or a Node child;
 * everything else (QEMU, the agent, virsh, python3, go, socat, tmux) stays
 * in the full suite, which runs these too. Listed in the order they start,
 * the longest-running first, so the workers finish at about the same time.
 */
const UNIT_SPECS = [
  'spec/qemu-json/strict-scan.spec.ts',
  'spec/qmp/faults.spec.ts',
  'spec/rpc/xdr.spec.ts',
  'spec/passthrough/filter.spec.ts',
  'spec/hmp/faults.spec.ts',
  'spec/helpers/fake-peer.spec.ts',
  'spec/qmp/window.spec.ts',
  'spec/rpc/fuzz.spec.ts',
  'spec/qemu-json/readers-agree.spec.ts',
  'spec/qemu-json/output-reader.spec.ts',
  'spec/proxy/qmp-request.spec.ts',
  'spec/qmp/framer.spec.ts',
  'spec/proxy/config.spec.ts',
  'spec/net/listen.spec.ts',
  'spec/rpc/replay.spec.ts',
  'spec/rpc/limits.spec.ts',
  'spec/qemu-json/streamer-limits.spec.ts',
  'spec/hmp/detect.spec.ts',
  'spec/rpc/framing.spec.ts',
  'spec/qmp/unreadable-reply.spec.ts',
  'spec/qemu-json/streamer.spec.ts',
  'spec/qemu-json/replies.spec.ts',
  'spec/proxy/input-pacer.spec.ts',
  'spec/proxy/event-rate.spec.ts',
  'spec/proxy/watchdog-timer.spec.ts',
  'spec/ops/exposition.spec.ts',
  'spec/hmp/reader.spec.ts',
  'spec/fifo.spec.ts',
  'spec/rpc/messages.spec.ts',
  'spec/rpc/libvirt-result.spec.ts',
  'spec/qga/reader.spec.ts',
  'spec/rpc/dispatch.spec.ts',
  'spec/rpc/connection.spec.ts',
  'spec/qmp/pending-request.spec.ts',
  'spec/hmp/command-line.spec.ts',
  'spec/errors.spec.ts',
  'spec/cli/xml.spec.ts',
  'spec/cli/libvirt-xml.spec.ts',
  'spec/cli/json-text.spec.ts',
  'spec/cli/command-line.spec.ts',
  'spec/fd/fd-writer.spec.ts',
  'spec/bench/compare.spec.ts',
  'spec/nats/command-responder.spec.ts',
];
// Unit specs mostly compute: one worker per core.
const jobs = positiveIntegerFromEnv('QMPX_SPEC_JOBS', unitTier ? availableParallelism() : 2);
const timeoutSeconds = positiveIntegerFromEnv('QMPX_SPEC_TIMEOUT_S', 180);
/** After a file's main process exits, how long its leftover children get to finish dying on their own. */
const LEFTOVER_GRACE_MS = 2000;
const LEFTOVER_POLL_MS = 50;
// uvu prints colours only to a TTY; keep them when we print to one.
const keepColours = process.stdout.isTTY && process.env.FORCE_COLOR === undefined && process.env.NO_COLOR === undefined;
const baseEnv = keepColours ? { ...process.env, FORCE_COLOR: '1' } : process.env;

/** Spec processes now running, each with its private TMPDIR. */
const running = new Map();

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const [child, fileTmpDir] of running) {
      killGroup(child.pid);
      rmSync(fileTmpDir, { recursive: true, force: true });
    }
    console.log(`\ninterrupted by ${signal}`);
    process.exit(1);
  });
}

const filterArgs = process.argv.slice(2).filter((arg) => arg !== '--unit');
if (unitTier) checkUnitList();
const specFiles = unitTier ? inUnitOrder(findSpecFiles(filterArgs)) : findSpecFiles(filterArgs);
const totals = { passed: 0, failed: 0, skipped: 0 };
if (specFiles.length === 0) {
  const filters = filterArgs;
  const which = filters.length > 0 ? ` matching ${filters.join(', ')}` : ' (did `npm run build` run?)';
  console.log(`no spec files found under ${relative(ROOT, COMPILED_SPEC_DIR)}${which}`);
} else {
  await (unitTier ? runInWorkers(specFiles) : runAll(specFiles));
}
const skippedNote = totals.skipped > 0 ? `, ${totals.skipped} skipped` : '';
console.log(`${totals.passed} passed, ${totals.failed} failed${skippedNote}`);
process.exit(totals.failed > 0 || specFiles.length === 0 ? 1 : 0);

// ---------------------------------------------------------------------------------------------

function positiveIntegerFromEnv(name, fallback) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    console.log(`${name} must be a positive integer, not ${JSON.stringify(text)}`);
    console.log('0 passed, 0 failed');
    process.exit(2);
  }
  return value;
}

/** Compiled spec files (absolute paths), sorted, filtered, stale ones skipped with a note. */
function findSpecFiles(filters) {
  if (!existsSync(COMPILED_SPEC_DIR)) return [];
  const found = [];
  for (const entry of readdirSync(COMPILED_SPEC_DIR, { recursive: true }).sort()) {
    if (!entry.endsWith('.spec.js')) continue;
    const compiled = join(COMPILED_SPEC_DIR, entry);
    const source = sourceOf(compiled);
    const names = [relative(ROOT, compiled), relative(ROOT, source)].map((name) => name.split(sep).join('/'));
    if (filters.length > 0 && !filters.some((filter) => names.some((name) => name.includes(filter)))) continue;
    if (!existsSync(source)) {
      console.log(`skipping ${names[0]}: its source ${names[1]} no longer exists (stale build output)`);
      continue;
    }
    found.push(compiled);
  }
  return found;
}

/** Exits if UNIT_SPECS names a spec source that does not exist. */
function checkUnitList() {
  const missing = UNIT_SPECS.filter((name) => !existsSync(join(ROOT, name)));
  if (missing.length === 0) return;
  console.log(`UNIT_SPECS in scripts/run-specs.mjs names specs that do not exist: ${missing.join(', ')}`);
  console.log('0 passed, 0 failed');
  process.exit(2);
}

/** The unit specs among `files`, in the order of UNIT_SPECS. */
function inUnitOrder(files) {
  const bySource = new Map(files.map((file) => [sourceName(file), file]));
  return UNIT_SPECS.filter((name) => bySource.has(name)).map((name) => bySource.get(name));
}

/** dist/spec/a/b.spec.js → 'spec/a/b.spec.ts' (relative, with forward slashes) */
function sourceName(compiled) {
  return relative(ROOT, sourceOf(compiled)).split(sep).join('/');
}

/** dist/spec/a/b.spec.js → spec/a/b.spec.ts */
function sourceOf(compiled) {
  return join(ROOT, relative(BUILD_DIR, compiled)).replace(/\.js$/, '.ts');
}

async function runAll(files) {
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const result = await runSpecFile(file);
      report(file, result);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));
}

/**
 * The unit tier: `jobs` worker processes (scripts/unit-worker.mjs), each
 * taking the next file of UNIT_SPECS as it finishes the last, so Node and
 * the modules the specs share load once per worker, not once per file.
 * Each file is still reported on its own, with its own output and uvu
 * summary. A worker that dies or overruns the deadline fails the file it
 * was running (and is killed with its process group); a fresh one takes
 * the next file. Leftover processes are looked for when a worker ends.
 */
async function runInWorkers(files) {
  const queue = [...files];
  const lane = async () => {
    let worker;
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      worker ??= await startUnitWorker();
      const result = await worker.run(file);
      report(file, result);
      if (!worker.alive) {
        await worker.stop();
        worker = undefined;
      }
    }
    if (worker !== undefined) {
      const leftovers = await worker.stop();
      if (leftovers.length > 0) {
        totals.failed += 1;
        console.log(`FAIL a unit worker left processes running after its last file (killed them): ${leftovers.join(', ')}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, lane));
}

/** Starts a unit worker; resolves once it is ready for files (or has died: then its run() fails the file). */
async function startUnitWorker() {
  const tmpDir = mkdtempSync(join(tmpdir(), 'qmpx-spec-'));
  const child = spawn(process.execPath, ['--import', UNIT_TIER_GUARD, '--enable-source-maps', UNIT_WORKER], {
    cwd: ROOT,
    env: { ...baseEnv, TMPDIR: tmpDir, QMPX_SPEC_TIER: 'unit' },
    detached: true, // its own process group: one kill reaches everything it spawned
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  running.set(child, tmpDir);
  let alive = true;
  /** What the worker wrote outside a file's captured output (a crash's report). */
  let stray = [];
  const takeStray = () => {
    const text = Buffer.concat(stray).toString('utf8');
    stray = [];
    return text;
  };
  child.stdout.on('data', (chunk) => stray.push(chunk));
  child.stderr.on('data', (chunk) => stray.push(chunk));
  // Its output pipes closing, not the child's 'close': that one never comes once the runner has disconnected IPC.
  const closed = Promise.all([child.stdout, child.stderr].map((stream) => new Promise((resolve) => stream.once('close', resolve))));
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      alive = false;
      stray.push(Buffer.from(`cannot start ${UNIT_WORKER}: ${error.message}\n`));
      resolve({ code: null, signal: null });
    });
  });
  await new Promise((resolve) => {
    child.once('message', resolve);
    exited.then(resolve);
  });

  return {
    get alive() {
      return alive;
    },

    /** Runs one file in this worker. Resolves with a result for report(); never rejects. */
    async run(file) {
      const startedAt = Date.now();
      let timedOut = false;
      let deadline;
      const answered = new Promise((resolve) => child.once('message', resolve));
      const overrun = new Promise((resolve) => {
        deadline = setTimeout(() => {
          timedOut = true;
          killGroup(child.pid);
          resolve(undefined);
        }, timeoutSeconds * 1000);
      });
      if (alive) child.send({ file, name: sourceName(file) });
      const answer = await Promise.race([answered, exited.then(() => undefined), overrun]);
      clearTimeout(deadline);
      if (answer === undefined) {
        alive = false;
        const exitStatus = timedOut ? { code: null, signal: 'SIGKILL' } : await exited;
        await closed;
        return { output: takeStray(), summary: undefined, exitStatus, timedOut, leftovers: [], durationMs: Date.now() - startedAt };
      }
      return {
        output: takeStray() + answer.output,
        summary: parseUvuSummary(answer.output),
        exitStatus: { code: answer.code ?? 0, signal: null },
        timedOut,
        leftovers: [],
        durationMs: Date.now() - startedAt,
      };
    },

    /** Ends the worker; resolves with the processes of its group still running after it (killed). */
    async stop() {
      if (alive && child.connected) child.disconnect();
      await exited;
      const leftovers = child.pid === undefined ? [] : await leftoverProcesses(child.pid);
      if (child.pid !== undefined) killGroup(child.pid);
      await closed;
      running.delete(child);
      rmSync(tmpDir, { recursive: true, force: true });
      return leftovers;
    },
  };
}

/**
 * Runs one spec file to completion. Resolves with its output and verdict;
 * never rejects.
 */
async function runSpecFile(file) {
  const startedAt = Date.now();
  const fileTmpDir = mkdtempSync(join(tmpdir(), 'qmpx-spec-'));
  const nodeOptions = unitTier ? ['--import', UNIT_TIER_GUARD] : [];
  const child = spawn(process.execPath, [...nodeOptions, '--enable-source-maps', file], {
    cwd: ROOT,
    env: { ...baseEnv, TMPDIR: fileTmpDir },
    detached: true, // its own process group: one kill reaches everything it spawned
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.set(child, fileTmpDir);
  const output = [];
  const stdout = [];
  child.stdout.on('data', (chunk) => {
    output.push(chunk);
    stdout.push(chunk);
  });
  child.stderr.on('data', (chunk) => output.push(chunk));
  const closed = new Promise((resolve) => child.once('close', resolve));

  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, timeoutSeconds * 1000);
  const exitStatus = await new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => {
      output.push(Buffer.from(`cannot run ${file}: ${error.message}\n`));
      resolve({ code: null, signal: null });
    });
  });
  clearTimeout(deadline);

  let leftovers = [];
  if (child.pid !== undefined) {
    if (!timedOut) leftovers = await leftoverProcesses(child.pid);
    killGroup(child.pid); // also frees the output pipes if a leftover still holds them
  }
  await closed;
  running.delete(child);
  rmSync(fileTmpDir, { recursive: true, force: true });
  return {
    output: Buffer.concat(output).toString('utf8'),
    summary: parseUvuSummary(Buffer.concat(stdout).toString('utf8')),
    exitStatus,
    timedOut,
    leftovers,
    durationMs: Date.now() - startedAt,
  };
}

/**
 * uvu 0.5.6 ends a run with (colours aside):
 *   \n  Total:     N\n  Passed:    N\n  Skipped:   N\n  Duration:  Xms\n\n
 * Returns the last such summary, or undefined if there is none (crash, or
 * the process exited before uvu finished: "Exiting early before testing is
 * finished.").
 */
function parseUvuSummary(text) {
  const plain = stripAnsi(text);
  const summaries = [...plain.matchAll(/^\s*Total:\s+(\d+)\s*\n\s*Passed:\s+(\d+)\s*\n\s*Skipped:\s+(\d+)\s*$/gm)];
  const last = summaries.at(-1);
  if (last === undefined) return undefined;
  return { total: Number(last[1]), passed: Number(last[2]), skipped: Number(last[3]) };
}

function stripAnsi(text) {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '');
}

/** Prints one file's output and result line, and adds it to the totals. */
function report(file, result) {
  const { summary, exitStatus, timedOut, leftovers } = result;
  const problems = [];
  if (timedOut) problems.push(`killed after the ${timeoutSeconds} s deadline`);
  else if (exitStatus.signal !== null) problems.push(`died of ${exitStatus.signal}`);
  else if (exitStatus.code !== 0) problems.push(`exit code ${exitStatus.code}`);
  if (summary === undefined && !timedOut) problems.push('printed no uvu summary');
  if (leftovers.length > 0) problems.push(`left processes running after it exited (killed them): ${leftovers.join(', ')}`);

  const passed = summary?.passed ?? 0;
  const skipped = summary?.skipped ?? 0;
  let failed = summary === undefined ? 0 : summary.total - summary.passed;
  if (problems.length > 0) failed = Math.max(failed, 1);
  totals.passed += passed;
  totals.failed += failed;
  totals.skipped += skipped;

  const name = relative(ROOT, sourceOf(file)).split(sep).join('/');
  const counts = [`${passed} passed`, `${failed} failed`, ...(skipped > 0 ? [`${skipped} skipped`] : [])].join(', ');
  const verdict = failed > 0 ? 'FAIL' : 'ok  ';
  const why = problems.length > 0 ? `: ${problems.join('; ')}` : '';
  const seconds = (result.durationMs / 1000).toFixed(1);
  process.stdout.write(`\n===== ${name}\n${result.output.trimEnd()}\n`);
  console.log(`${verdict} ${name}: ${counts} (${seconds} s)${why}`);
}

function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is already gone
  }
}

/**
 * Members of process group `pgid` that are still alive (zombies, dead but
 * not yet reaped, do not count), given a short grace period to exit on their
 * own: a test may have signalled a child just before it ended. Linux only
 * (reads /proc); elsewhere it finds nothing.
 */
async function leftoverProcesses(pgid) {
  const graceEndsAt = Date.now() + LEFTOVER_GRACE_MS;
  for (;;) {
    const alive = liveGroupMembers(pgid);
    if (alive.length === 0 || Date.now() >= graceEndsAt) return alive;
    await new Promise((resolve) => setTimeout(resolve, LEFTOVER_POLL_MS));
  }
}

function liveGroupMembers(pgid) {
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const members = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
    const commEnd = stat.lastIndexOf(')');
    const [state, , processGroup] = stat.slice(commEnd + 2).split(' ');
    if (Number(processGroup) !== pgid || state === 'Z' || state === 'X') continue;
    members.push(`${stat.slice(stat.indexOf('(') + 1, commEnd)} (pid ${entry})`);
  }
  return members;
}
