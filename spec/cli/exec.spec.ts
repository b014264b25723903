/**
 * `qmpx exec` as a child process against real QEMU. Every case of
 * fixtures/libvirt-9.0/virsh-qemu-monitor-command.txt (recorded from
 * virsh 9.0 on QEMU 7.2 with a VM named lab1, running) is run with the same words, and the output must be virsh's
 * without libvirt's id and without virsh's extra blank line, HMP CRLF made
 * LF. The VM here is named lab1 and running too, so the texts are the same.
 * Where qmpx deliberately differs (exit status of error replies, a caller's
 * own id, --pass-fds with a command that takes no fds), the case says so.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startFakePeer } from '../helpers/fake-peer.js';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect } from '../../lib/index.js';
import { rawQmp, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { REPO_ROOT, runQmpx } from './cli-process.js';

const CAPTURE = readFileSync(join(REPO_ROOT, 'spec/cli/fixtures/libvirt-9.0/virsh-qemu-monitor-command.txt'), 'utf8');

/** virsh's stdout for `virsh qemu-monitor-command lab1 <args>`, from the capture (the first block with that line). */
function virshStdout(args: string): string {
  const marker = `$ virsh qemu-monitor-command lab1 ${args}\n`;
  const start = CAPTURE.indexOf(marker);
  if (start === -1) throw new Error(`no capture for ${args}`);
  const body = CAPTURE.slice(start + marker.length);
  return body.slice(0, body.indexOf('[rc='));
}

/** What qmpx prints where virsh printed `stdout`: libvirt's id gone, one final newline, LF line ends. */
function withoutLibvirtId(stdout: string): string {
  const text = stdout
    .replace(/,"id":"libvirt-\d+"/, '')
    .replace(/"id":"libvirt-\d+",/, '')
    .replace(/,\n {2}"id": "libvirt-\d+"/, '')
    .replace(/\n {2}"id": "libvirt-\d+",/, '')
    .replaceAll('\r\n', '\n');
  return `${text.replace(/\n+$/, '')}\n`;
}

interface CaptureCase {
  /** The words after `lab1` on the capture's command line. */
  virsh: string;
  /** The same command as argv elements (the capture does not show virsh's shell quoting). */
  argv: string[];
  exit: number;
  /** Set where qmpx's output deliberately differs from virsh's. */
  stdout?: string;
  stderr?: RegExp;
}

const RUNNING = '{"return":{"status":"running","singlestep":false,"running":true}}\n';

const CASES: CaptureCase[] = [
  { virsh: '{"execute":"query-status"}', argv: ['{"execute":"query-status"}'], exit: 0 },
  { virsh: '--pretty {"execute":"query-status"}', argv: ['--pretty', '{"execute":"query-status"}'], exit: 0 },
  { virsh: '--hmp info status', argv: ['--hmp', 'info', 'status'], exit: 0 },
  { virsh: '--hmp info status', argv: ['--hmp', 'info status'], exit: 0 },
  // virsh exits 0 for every reply; qmpx exits 1 when the reply (or the HMP text) is an error.
  { virsh: '--hmp {"execute":"query-status"}', argv: ['--hmp', '{"execute":"query-status"}'], exit: 1 },
  { virsh: '{"execute":"query-status"', argv: ['{"execute":"query-status"'], exit: 1 },
  { virsh: 'not json at all', argv: ['not json at all'], exit: 1 },
  { virsh: '{"execute":"no-such-command"}', argv: ['{"execute":"no-such-command"}'], exit: 1 },
  { virsh: '--pretty {"execute":"no-such-command"}', argv: ['--pretty', '{"execute":"no-such-command"}'], exit: 1 },
  // virsh refuses a caller's id; qmpx keeps it off the wire and puts it back in the reply.
  {
    virsh: '{"execute":"query-status","id":"myid-42"}',
    argv: ['{"execute":"query-status","id":"myid-42"}'],
    exit: 0,
    stdout: '{"return":{"status":"running","singlestep":false,"running":true},"id":"myid-42"}\n',
  },
  { virsh: '--hmp no-such-hmp', argv: ['--hmp', 'no-such-hmp'], exit: 1 },
  { virsh: '--hmp info name', argv: ['--hmp', 'info', 'name'], exit: 0 },
  {
    virsh: '{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}',
    argv: ['{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}'],
    exit: 0,
  },
  { virsh: '{"execute":"qmp_capabilities"}', argv: ['{"execute":"qmp_capabilities"}'], exit: 1 },
  { virsh: '[1,2]', argv: ['[1,2]'], exit: 1 },
  { virsh: '{"execute":"query-status"} --return-value', argv: ['{"execute":"query-status"}', '--return-value'], exit: 0 },
  { virsh: '--pretty --return-value {"execute":"query-status"}', argv: ['--pretty', '--return-value', '{"execute":"query-status"}'], exit: 0 },
  { virsh: 'query-status', argv: ['query-status'], exit: 0 },
  // virsh sends fds with any command; qmpx only with those that take them (QEMU would keep them for the next getfd).
  {
    virsh: '--pass-fds 0 {"execute":"query-status"}',
    argv: ['--pass-fds', '0', '{"execute":"query-status"}'],
    exit: 1,
    stdout: '',
    stderr: /^qmpx exec: error: query-status: takes no file descriptors; only getfd and add-fd take them/,
  },
  { virsh: '{"execute":"query-name"} {"x":1}', argv: ['{"execute":"query-name"}', '{"x":1}'], exit: 1 },
];

let qemu: QemuInstance;

test.before(async () => {
  qemu = await startQemu({ args: ['-name', 'lab1'] });
  const monitor = await connect(qemu.qmpPath);
  await monitor.execute('cont');
  await monitor.close();
});

test.after(async () => {
  await qemu?.stop();
});

for (const [index, testCase] of CASES.entries()) {
  test(`capture #${index + 1}: virsh qemu-monitor-command lab1 ${testCase.virsh}`, async () => {
    const result = await runQmpx(['exec', qemu.qmpPath, ...testCase.argv]);
    assert.is(result.stdout, testCase.stdout ?? withoutLibvirtId(virshStdout(testCase.virsh)), `exit ${result.code}, stderr: ${result.stderr}`);
    assert.is(result.code, testCase.exit, result.stderr);
    if (testCase.stderr) assert.match(result.stderr, testCase.stderr);
    else assert.is(result.stderr, '');
  });
}

test('the capture cases give the compact and pretty shapes verbatim', () => {
  assert.is(withoutLibvirtId(virshStdout('{"execute":"query-status"}')), RUNNING);
  assert.is(withoutLibvirtId(virshStdout('--hmp info status')), 'VM status: running\n');
});

test('qmp-shell key=value: strings, and JSON values', async () => {
  const result = await runQmpx(['exec', qemu.qmpPath, 'qom-get', 'path=/machine', 'property=type']);
  assert.is(result.stdout, '{"return":"none-machine"}\n');
  assert.is(result.code, 0);
  const hmp = await runQmpx(['exec', qemu.qmpPath, 'human-monitor-command', 'command-line=info name', '--return-value']);
  assert.is(hmp.stdout, '"lab1\\r\\n"\n');
});

test('key=value dotted keys nest (blockdev-add file.driver=...)', async () => {
  const add = await runQmpx(['exec', qemu.qmpPath, 'blockdev-add', 'driver=raw', 'node-name=r0', 'file.driver=null-co', 'file.size=1048576']);
  assert.is(add.stdout, '{"return":{}}\n', add.stderr);
  const nodes = await runQmpx(['exec', qemu.qmpPath, 'query-named-block-nodes', 'flat=true', '--return-value']);
  const parsed = JSON.parse(nodes.stdout) as Array<{ 'node-name': string; drv: string; image: { 'virtual-size': number } }>;
  assert.ok(parsed.some((node) => node['node-name'] === 'r0' && node.drv === 'raw' && node.image['virtual-size'] === 1048576), nodes.stdout);
});

test('a uint64 argument reaches QEMU exactly and comes back exactly', async () => {
  const set = await runQmpx(['exec', qemu.qmpPath, 'migrate-set-parameters', 'max-bandwidth=18446744073709551615']);
  assert.is(set.stdout, '{"return":{}}\n', set.stderr);
  const get = await runQmpx(['exec', qemu.qmpPath, 'query-migrate-parameters', '--return-value']);
  assert.match(get.stdout, /"max-bandwidth":18446744073709551615[,}]/);
});

test('virsh NAME JSON-ARGS and NAME "k":v forms', async () => {
  const json = await runQmpx(['exec', qemu.qmpPath, 'qom-get', '{"path":"/machine",', '"property":"type"}']);
  assert.is(json.stdout, '{"return":"none-machine"}\n');
  const pairs = await runQmpx(['exec', qemu.qmpPath, 'qom-get', '"path":"/machine"', '"property":"type"']);
  assert.is(pairs.stdout, '{"return":"none-machine"}\n');
});

test('words that make no command: exit 1, one stderr line, nothing on stdout', async () => {
  const result = await runQmpx(['exec', qemu.qmpPath, 'device_add', 'driver=usb-kbd', 'oops']);
  assert.is(result.code, 1);
  assert.is(result.stdout, '');
  assert.is(result.stderr, 'qmpx exec: error: cannot make arguments of "driver=usb-kbd oops": expected a JSON object or key=value pairs, got "oops"\n');
});

test('--hmp with --pretty or --return-value is a usage error', async () => {
  for (const flag of ['--pretty', '--return-value']) {
    const result = await runQmpx(['exec', qemu.qmpPath, '--hmp', flag, 'info', 'status']);
    assert.is(result.code, 1);
    assert.match(result.stderr, `--hmp cannot be combined with ${flag}`);
  }
});

test('on an HMP socket: --hmp lines run as they are; mapped QMP commands work', async () => {
  const text = await runQmpx(['exec', qemu.hmpPath, '--hmp', 'info', 'status']);
  assert.is(text.stdout, 'VM status: running\n');
  assert.is(text.code, 0);
  const mapped = await runQmpx(['exec', qemu.hmpPath, 'query-status']);
  assert.is(mapped.stdout, RUNNING);
});

test('no such socket: exit 2 with one line on stderr', async () => {
  const dir = createTempDir('cli-exec');
  try {
    const path = join(dir, 'missing.sock');
    const result = await runQmpx(['exec', path, 'query-status']);
    assert.is(result.code, 2);
    assert.is(result.stdout, '');
    assert.is(result.stderr, `qmpx exec: error: cannot connect to ${path}: connect ENOENT ${path}\n`);
    const tcp = await runQmpx(['exec', 'tcp:nonsense', 'query-status']);
    assert.is(tcp.code, 2);
    assert.match(tcp.stderr, /^qmpx exec: error: .*expected tcp:HOST:PORT\n$/);
  } finally {
    await removeTempDir(dir);
  }
});

test('a monitor held by another client: --timeout gives up with exit 2 and says why', async () => {
  const holder = await rawQmp(qemu.qmpPath);
  try {
    await holder.waitForLines(1);
    const result = await runQmpx(['exec', qemu.qmpPath, '--timeout', '0.3', 'query-status']);
    assert.is(result.code, 2);
    assert.is(result.stdout, '');
    assert.ok(result.stderr.startsWith(`qmpx exec: error: ${qemu.qmpPath}: no greeting from the monitor within `), result.stderr);
    assert.match(result.stderr, /another client may be holding the monitor[^\n]*\n$/);
  } finally {
    await holder.close();
  }
});

test('a command left unanswered: --timeout gives up with exit 2, naming the timeout given', async () => {
  const peer = await startFakePeer();
  try {
    peer.expect('qmp_capabilities').reply({ return: {} }).expect('query-status').expectClose();
    const result = await runQmpx(['exec', peer.path, '--timeout', '0.5', 'query-status']);
    assert.is(result.code, 2);
    assert.is(result.stdout, '');
    assert.is(result.stderr, `qmpx exec: error: ${peer.path}: no reply within --timeout 0.5 s\n`);
    await peer.done();
  } finally {
    await peer.close();
  }
});

test('a peer that is not a monitor: exit 2, one line quoting what it sent', async () => {
  const dir = createTempDir('cli-exec');
  const path = socketPathIn(dir, 'web.sock');
  const server = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    const result = await runQmpx(['exec', path, 'query-status']);
    assert.is(result.code, 2);
    assert.match(result.stderr, /^qmpx exec: error: .*does not speak a QEMU monitor protocol.*HTTP\/1\.1 400[^\n]*\n$/);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await removeTempDir(dir);
  }
});

test.run();
