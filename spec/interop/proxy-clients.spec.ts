/**
 * Clients qmpx's authors did not write, through the proxy:
 * - go-qemu's `qmp` package (spec/interop/go-qmp, built offline) runs
 *   commands and receives events while three other clients are connected,
 *   one of them pipelining its own commands the whole time, one greeted but
 *   never negotiated; its output must equal what it prints on a direct
 *   connection to the same QEMU.
 * - socat drives the HMP socket the way a shell user would.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawQmp, type RawClient } from '../helpers/qemu.js';
import { serveQemu, type ServedQemu } from '../proxy/harness.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
let goQmp: string;
let served: ServedQemu;

test.before(async () => {
  const built = await run('sh', [`${REPO}spec/interop/go-qmp/build.sh`]);
  goQmp = built.stdout.trim();
  served = await serveQemu({ hmp: true, qemu: { extraQmpSockets: 1 } });
});

test.after(async () => {
  await served?.stop();
});

async function goClient(socket: string, args: string[]): Promise<string> {
  const { stdout } = await run(goQmp, ['-socket', socket, '-timeout', '20s', ...args], { timeout: 60_000 });
  return stdout;
}

test('go-qemu: same greeting and replies as on a direct connection', async () => {
  const commands = ['{"execute":"query-status"}', '{"execute":"query-name"}', '{"execute":"human-monitor-command","arguments":{"command-line":"info version"}}'];
  const direct = await goClient(served.qemu.extraQmpPaths[0]!, ['-allow-errors', ...commands, '{"execute":"no-such-command"}']);
  const proxied = await goClient(served.qmpPath, ['-allow-errors', ...commands, '{"execute":"no-such-command"}']);
  assert.is(proxied, direct);
  assert.match(proxied, /^greeting \{"capabilities":\["oob"\]/);
  assert.match(proxied, /error The command no-such-command has not been found\n$/);
});

test('go-qemu: commands and events through the proxy while three other clients are connected', async () => {
  const watcher = await served.negotiatedClient();
  const busy = await served.negotiatedClient();
  const greetedOnly: RawClient = await rawQmp(served.qmpPath);
  await greetedOnly.waitForLines(1);
  let busyBatch = '';
  for (let i = 0; i < 3000; i++) busyBatch += `{"execute":"query-status","id":"busy${i}"}\n`;
  const busyDone = busy.send(busyBatch).then(() => busy.waitForLine((line) => line.endsWith('"id": "busy2999"}'), 60_000));
  const output = await goClient(served.qmpPath, [
    '-events',
    '2',
    '-event-data',
    '{"execute":"cont"}',
    '{"execute":"query-status"}',
    '{"execute":"stop"}',
    '{"execute":"query-status"}',
  ]);
  const lines = output.trim().split('\n');
  assert.match(lines[0]!, /^greeting /);
  assert.equal(lines.slice(1), [
    'reply {"return": {}}',
    'reply {"return": {"status": "running", "singlestep": false, "running": true}}',
    'reply {"return": {}}',
    'reply {"return": {"status": "paused", "singlestep": false, "running": false}}',
    'event RESUME null',
    'event STOP null',
  ]);
  await busyDone;
  const busyReplies = busy.lines().slice(2).filter((line) => line.includes('"id": "busy'));
  assert.is(busyReplies.length, 3000);
  busyReplies.forEach((line, index) => assert.ok(line.endsWith(`"id": "busy${index}"}`), line));
  await watcher.waitForLine((line) => line.includes('"event": "STOP"'));
  assert.equal(
    watcher.lines().slice(2).map((line) => (JSON.parse(line) as { event: string }).event),
    ['RESUME', 'STOP'],
  );
  assert.is(greetedOnly.lines().length, 1, 'no event before negotiation');
  for (const client of [watcher, busy, greetedOnly]) await client.close();
});

test('socat on the HMP socket: banner, outputs and prompts, nothing echoed', async () => {
  const { stdout } = await run('sh', ['-c', `printf 'info status\\ninfo name\\nfrobnicate\\n' | socat -t 30 - UNIX-CONNECT:${served.hmpPath}`], {
    timeout: 60_000,
  });
  assert.is(
    stdout,
    "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) " +
      // The go-qemu test above ran cont, then stop.
      'VM status: paused\r\n(qemu) ' +
      '(qemu) ' +
      "unknown command: 'frobnicate'\r\n(qemu) ",
  );
});

test('socat on the QMP socket: a script piped in gets QEMU’s replies', async () => {
  const script = '{"execute":"qmp_capabilities"}\\n{"execute":"query-status","id":"s"}\\n';
  const { stdout } = await run('sh', ['-c', `printf '${script}' | socat -t 30 - UNIX-CONNECT:${served.qmpPath}`], { timeout: 60_000 });
  const lines = stdout.split('\r\n');
  assert.match(lines[0]!, /^\{"QMP": /);
  assert.equal(lines.slice(1), ['{"return": {}}', '{"return": {"status": "paused", "singlestep": false, "running": false}, "id": "s"}', '']);
});

test.run();
