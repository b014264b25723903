/**
 * One process of the unit tier (scripts/run-specs.mjs --unit): runs the
 * compiled spec files the runner sends it over IPC, one after another, each
 * to its end, so that Node, uvu, fast-check, rxjs and the shared lib/
 * modules are started and loaded once per process instead of once per file.
 *
 * It does what uvu's own command line does with several files (each file's
 * tests are queued under its name while it is imported, then run), one
 * file at a time: for each file the runner gets everything the file wrote
 * and uvu's summary of that file alone, as if the file had run in its own
 * process. A file that throws while it is imported fails with that error.
 *
 *   runner ──{ file, name }──▶ worker ──{ output, code }──▶ runner
 *
 * An uncaught exception or unhandled rejection ends the worker (Node's
 * default); the runner fails the file it was running and starts another
 * worker for the files still to run.
 */
import { pathToFileURL } from 'node:url';

// uvu decides at its first import whether test.run() queues (as under its CLI) or runs at once.
globalThis.UVU_DEFER = 1;
const { exec } = await import('uvu');

const stdoutWrite = process.stdout.write.bind(process.stdout);
const stderrWrite = process.stderr.write.bind(process.stderr);

/** Runs one spec file; resolves with what it wrote and its exit code. */
async function runFile(file, name) {
  const output = [];
  const capture = (chunk, encoding, callback) => {
    output.push(typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : Buffer.from(chunk));
    if (typeof encoding === 'function') encoding();
    else if (typeof callback === 'function') callback();
    return true;
  };
  process.stdout.write = capture;
  process.stderr.write = capture;
  process.exitCode = 0;
  globalThis.UVU_QUEUE = [[name]];
  globalThis.UVU_INDEX = 0;
  try {
    await import(pathToFileURL(file).href);
    await exec();
  } catch (error) {
    capture(`${error?.stack ?? error}\n`);
    process.exitCode = 1;
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
  const code = process.exitCode;
  process.exitCode = 0;
  return { output: Buffer.concat(output).toString('utf8'), code };
}

process.on('message', async ({ file, name }) => {
  const result = await runFile(file, name);
  process.send(result);
});
// The runner hangs up when there is nothing left to run: a handle a spec left open must not keep the worker alive.
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
