/**
 * What a program loads is what it uses: `import('qmpx')` loads neither
 * rxjs nor node:net nor a monitor client; connect() with the default
 * `protocol: 'auto'` to a QMP socket loads the QMP client and not the HMP
 * one; to a text monitor, the HMP client. Checked in fresh Node processes
 * with a module resolve hook that reports every module resolved.
 */
import { pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runModuleText } from './helpers/node-script.js';
import { startQemu, type QemuInstance } from './helpers/qemu.js';

const test = suite<{ qemu: QemuInstance }>('modules load when used');
const LIBRARY = pathToFileURL(new URL('../lib/index.js', import.meta.url).pathname).href;

/**
 * A resolve hook (it runs on the loader's own thread) that posts each
 * resolved URL to the main thread, and answers a `flush` once everything
 * posted before it has been sent: a port delivers in order, so when the
 * answer arrives every URL resolved so far has arrived too.
 */
const RECORDER = `
let port;
export function initialize(data) {
  port = data.port;
  port.on('message', (message) => { if (message === 'flush') port.postMessage({ flushed: true }); });
  port.unref();
}
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  port.postMessage({ url: result.url });
  return result;
}`;

/**
 * Runs `body` (ES module text; `qmpx`, `path` and `loaded()`, which
 * resolves with the module URLs resolved so far, in scope) in a fresh Node
 * process; resolves with what it wrote to stdout.
 */
function runScript(body: string, path: string): Promise<string> {
  const script = `import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(RECORDER)}`)}, { data: { port: port2 }, transferList: [port2] });
const urls = [];
let flushed;
port1.on('message', (message) => { if (message.url) urls.push(message.url); else flushed?.(); });
port1.unref();
const loaded = () => new Promise((done) => {
  port1.ref();
  flushed = () => { port1.unref(); done([...urls]); };
  port1.postMessage('flush');
});
const before = await loaded();
const qmpx = await import(${JSON.stringify(LIBRARY)});
const path = ${JSON.stringify(path)};
${body}`;
  return runModuleText(script);
}

/** The module URLs the script resolved, as `lib/...` names for qmpx's own and bare names for the rest. */
function names(urls: string[]): string[] {
  return urls.map((url) => url.replace(/^file:.*?\/lib\//, 'lib/').replace(/^file:.*\/node_modules\/([^/]+)\/.*$/, '$1'));
}

test.before(async (context) => {
  context.qemu = await startQemu();
});

test.after(async (context) => {
  await context.qemu.stop();
});

test('the import loads no rxjs, no node:net and no monitor client', async ({ qemu }) => {
  const output = await runScript(`process.stdout.write(JSON.stringify(await loaded()));`, qemu.qmpPath);
  const loaded = names(JSON.parse(output) as string[]);
  assert.ok(loaded.includes('lib/index.js'), `the recorder saw the import: ${loaded.join(', ')}`);
  for (const absent of ['rxjs', 'node:net', 'lib/qmp/client.js', 'lib/hmp/client.js', 'lib/qga/client.js']) {
    assert.not.ok(loaded.includes(absent), `${absent} is loaded by the import alone`);
  }
});

test("connect() with protocol 'auto' to a QMP socket loads the QMP client and not the HMP one", async ({ qemu }) => {
  const output = await runScript(
    `const monitor = await qmpx.connect(path, { logger: qmpx.silentLogger });
const status = await monitor.execute('query-status');
await monitor.close();
process.stdout.write(JSON.stringify({ protocol: monitor.protocol, status: status.status, loaded: await loaded() }));`,
    qemu.qmpPath,
  );
  const result = JSON.parse(output) as { protocol: string; status: string; loaded: string[] };
  const loaded = names(result.loaded);
  assert.equal(result.protocol, 'qmp');
  assert.match(result.status, /^[a-z-]+$/, 'QEMU answered query-status');
  assert.ok(loaded.includes('lib/qmp/client.js'), loaded.join(', '));
  assert.not.ok(loaded.includes('lib/hmp/client.js'), 'the HMP client was loaded for a QMP socket');
});

test("connect() with protocol 'auto' to a text monitor loads the HMP client once it sees the banner", async ({ qemu }) => {
  const output = await runScript(
    `const monitor = await qmpx.connect(path, { logger: qmpx.silentLogger });
const reply = await monitor.hmp('info status');
await monitor.close();
process.stdout.write(JSON.stringify({ protocol: monitor.protocol, reply, loaded: await loaded() }));`,
    qemu.hmpPath,
  );
  const result = JSON.parse(output) as { protocol: string; reply: string; loaded: string[] };
  assert.equal(result.protocol, 'hmp');
  assert.match(result.reply, /^VM status: /);
  assert.ok(names(result.loaded).includes('lib/hmp/client.js'));
});

test.run();
