/**
 * The FFI module (koffi) is loaded only by a connection that asks for fd
 * passing: a fresh process that imports qmpx and talks to QEMU over a plain
 * connection never maps koffi's native library; one that connects with
 * `fdPassing` does. Checked in a child process, whose /proc/self/maps lists
 * every native library it loaded.
 */
import { pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runModuleText } from '../helpers/node-script.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';

const test = suite<{ qemu: QemuInstance }>('the FFI module loads only for fd passing');
const LIBRARY = pathToFileURL(new URL('../../lib/index.js', import.meta.url).pathname).href;

test.before(async (context) => {
  context.qemu = await startQemu({ hmp: false });
});

test.after(async (context) => {
  await context.qemu.stop();
});

/** Runs `body` (ES module text, `qmpx` and `path` in scope) in a fresh Node process; resolves with its stdout. */
function runScript(body: string, path: string): Promise<string> {
  const script = `const qmpx = await import(${JSON.stringify(LIBRARY)}); const path = ${JSON.stringify(path)};
const koffiMapped = () => (require('node:fs').readFileSync('/proc/self/maps', 'utf8').includes('koffi'));
${body}`;
  return runModuleText(`import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); ${script}`);
}

test('a plain connection never loads it; the first fdPassing connection does', async ({ qemu }) => {
  const output = await runScript(
    `const plain = await qmpx.connect(path, { logger: qmpx.silentLogger });
await plain.execute('query-status');
await plain.close();
const afterPlain = koffiMapped();
const capable = await qmpx.connect(path, { logger: qmpx.silentLogger, fdPassing: true });
await capable.execute('query-status');
await capable.close();
process.stdout.write(JSON.stringify({ afterPlain, afterFdPassing: koffiMapped() }));`,
    qemu.qmpPath,
  );
  assert.equal(JSON.parse(output), { afterPlain: false, afterFdPassing: true });
});

test.run();
