/**
 * File descriptors through the libvirt endpoint, sent by virsh
 * `qemu-monitor-command --pass-fds` and libvirt-python's
 * `qemuMonitorCommandWithFiles`, to a real QEMU 7.2: the fd reaches QEMU
 * with getfd / add-fd, never with another command, and the endpoint keeps
 * none of them.
 */
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { AuditRecord, AuditSink } from '../../lib/audit-sink.js';
import { connect, silentLogger, type Monitor } from '../../lib/index.js';
import { startLibvirtEndpoint, type LibvirtDomain, type LibvirtEndpoint } from '../../lib/rpc/server.js';
import { fdsOn, openTestFile } from '../fd/files.js';
import { startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { openFdCount } from '../proxy/fds-client.js';
import { eventually } from '../proxy/harness.js';
import { COMMAND_DEADLINE_MS, DOMAIN_ID, DOMAIN_NAME, DOMAIN_UUID, SYSTEM_PYTHON, type CommandResult } from './endpoint-harness.js';

const NO_FD = 'No file descriptor supplied via SCM_RIGHTS';

interface Context {
  qemu: QemuInstance;
  dir: string;
  monitor: Monitor;
  other: Monitor;
  endpoint: LibvirtEndpoint;
  readOnly: LibvirtEndpoint;
  uri: string;
  readOnlyUri: string;
  audited: AuditRecord[];
}

const test = suite<Context>('file descriptors through the libvirt endpoint, virsh and libvirt-python, real QEMU');

test.before(async (context) => {
  context.qemu = await startQemu({ extraQmpSockets: 1 });
  context.dir = createTempDir('rpc-fds');
  context.monitor = await connect(context.qemu.qmpPath, { fdPassing: true, logger: silentLogger });
  context.other = await connect(context.qemu.extraQmpPaths[0]!, { logger: silentLogger });
  const domain: LibvirtDomain = { name: DOMAIN_NAME, uuid: DOMAIN_UUID, id: DOMAIN_ID, monitor: context.monitor };
  const path = socketPathIn(context.dir, 'libvirt.sock');
  const readOnlyPath = socketPathIn(context.dir, 'libvirt-ro.sock');
  context.audited = [];
  const audit: AuditSink = { recordsArguments: false, record: (entry) => context.audited.push(entry), close: async () => undefined };
  context.endpoint = await startLibvirtEndpoint({ path, domains: () => [domain], logger: silentLogger, audit });
  context.readOnly = await startLibvirtEndpoint({ path: readOnlyPath, domains: () => [domain], logger: silentLogger, readOnly: true });
  context.uri = `qemu+unix:///system?socket=${path}`;
  context.readOnlyUri = `qemu+unix:///system?socket=${readOnlyPath}`;
});

test.after(async (context) => {
  await context.endpoint.close();
  await context.readOnly.close();
  await context.monitor.close();
  await context.other.close();
  await context.qemu.stop();
  await removeTempDir(context.dir);
});

/** `virsh -c URI ARGS...` with `fds` open in it as 3, 4, ... */
function virshWithFds(uri: string, fds: readonly number[], ...args: string[]): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('virsh', ['-c', uri, ...args], { stdio: ['ignore', 'pipe', 'pipe', ...fds], env: { ...process.env, LC_ALL: 'C' }, timeout: COMMAND_DEADLINE_MS });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const passFds = (fds: readonly number[]): string => fds.map((_, index) => String(3 + index)).join(',');

test('virsh --pass-fds with add-fd: QEMU holds the file, the reply is libvirt\'s, the audit counts the fd', async ({ uri, dir, qemu, other, audited }) => {
  const baseline = openFdCount(process.pid);
  const file = openTestFile(dir, 'virsh-add-fd.img');
  const result = await virshWithFds(uri, [file.fd], 'qemu-monitor-command', DOMAIN_NAME, '--pass-fds', passFds([file.fd]), '{"execute":"add-fd","arguments":{"fdset-id":3}}');
  closeSync(file.fd);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, /^\{"return":\{"fd":\d+,"fdset-id":3\},"id":"libvirt-\d+"\}\n\n$/);
  assert.is(fdsOn(qemu.pid, file.path), 1, 'QEMU holds the file');
  const sets = await other.execute<Array<{ 'fdset-id': number; fds: unknown[] }>>('query-fdsets');
  assert.is(sets.find((set) => set['fdset-id'] === 3)?.fds.length, 1);
  const record = audited.find((entry) => entry.command === 'add-fd');
  assert.equal([record?.procedure, record?.outcome, record?.fds], ['virDomainQemuMonitorCommandWithFiles', 'ok', 1]);
  // The fd set serves a block node opened by virsh's next command, as it would under libvirtd.
  const add = await virshWithFds(uri, [], 'qemu-monitor-command', DOMAIN_NAME,
    '{"execute":"blockdev-add","arguments":{"driver":"file","node-name":"virsh-fdset","filename":"/dev/fdset/3"}}');
  assert.is(add.code, 0, add.stderr);
  assert.match(add.stdout, /^\{"return":\{\},"id":"libvirt-\d+"\}\n\n$/);
  const nodes = await virshWithFds(uri, [], 'qemu-monitor-command', DOMAIN_NAME, '{"execute":"query-named-block-nodes"}');
  const named = (JSON.parse(nodes.stdout) as { return: Array<{ 'node-name': string; file: string }> }).return;
  assert.equal(named.filter((node) => node['node-name'] === 'virsh-fdset').map((node) => node.file), ['/dev/fdset/3']);
  await other.execute('blockdev-del', { 'node-name': 'virsh-fdset' });
  await other.execute('remove-fd', { 'fdset-id': 3 });
  await eventually(() => openFdCount(process.pid) === baseline, "the endpoint's fd count back at its baseline");
});

test('virsh --pass-fds with query-status: answered as libvirtd answers it, and the fd never reaches QEMU', async ({ uri, dir }) => {
  const baseline = openFdCount(process.pid);
  const file = openTestFile(dir, 'virsh-stray.img');
  const status = await virshWithFds(uri, [file.fd], 'qemu-monitor-command', DOMAIN_NAME, '--pass-fds', passFds([file.fd]), '{"execute":"query-status"}');
  closeSync(file.fd);
  assert.is(status.code, 0, status.stderr);
  assert.match(status.stdout, /^\{"return":\{"status":"[a-z-]+","singlestep":false,"running":(true|false)\},"id":"libvirt-\d+"\}\n\n$/);
  // The same upstream connection's next getfd finds no fd waiting for it.
  const getfd = await virshWithFds(uri, [], 'qemu-monitor-command', DOMAIN_NAME, '{"execute":"getfd","arguments":{"fdname":"stray"}}');
  assert.is(getfd.code, 0, getfd.stderr);
  assert.match(getfd.stdout, new RegExp(`^\\{"id":"libvirt-\\d+","error":\\{"class":"GenericError","desc":"${NO_FD}"\\}\\}\\n\\n$`));
  await eventually(() => openFdCount(process.pid) === baseline, "the endpoint's fd count back at its baseline");
});

test('virsh --pass-fds with getfd, then closefd: QEMU holds the file while it is named and lets it go after', async ({ uri, dir, qemu }) => {
  const baseline = openFdCount(process.pid);
  const file = openTestFile(dir, 'virsh-getfd.img');
  const getfd = await virshWithFds(uri, [file.fd], 'qemu-monitor-command', DOMAIN_NAME, '--pass-fds', passFds([file.fd]), '{"execute":"getfd","arguments":{"fdname":"virshfd"}}');
  closeSync(file.fd);
  assert.is(getfd.code, 0, getfd.stderr);
  assert.match(getfd.stdout, /^\{"return":\{\},"id":"libvirt-\d+"\}\n\n$/);
  assert.is(fdsOn(qemu.pid, file.path), 1, 'QEMU holds the file while it is named');
  const closefd = await virshWithFds(uri, [], 'qemu-monitor-command', DOMAIN_NAME, '{"execute":"closefd","arguments":{"fdname":"virshfd"}}');
  assert.is(closefd.code, 0, closefd.stderr);
  assert.match(closefd.stdout, /^\{"return":\{\},"id":"libvirt-\d+"\}\n\n$/);
  await eventually(() => fdsOn(qemu.pid, file.path) === 0, 'QEMU letting the file go');
  await eventually(() => openFdCount(process.pid) === baseline, "the endpoint's fd count back at its baseline");
});

test('virsh --pass-fds with two fds: libvirtd\'s refusal, nothing sent', async ({ uri, dir }) => {
  const baseline = openFdCount(process.pid);
  const first = openTestFile(dir, 'two-a.img');
  const second = openTestFile(dir, 'two-b.img');
  const result = await virshWithFds(uri, [first.fd, second.fd], 'qemu-monitor-command', DOMAIN_NAME, '--pass-fds', passFds([first.fd, second.fd]), '{"execute":"getfd","arguments":{"fdname":"two"}}');
  closeSync(first.fd);
  closeSync(second.fd);
  assert.is(result.code, 1);
  assert.match(result.stderr, /error: invalid argument: at most 1 fd can be passed to qemu along with a command/);
  await eventually(() => openFdCount(process.pid) === baseline, "the endpoint's fd count back at its baseline");
});

test('libvirt-python qemuMonitorCommandWithFiles: getfd takes the fd, closefd lets it go', async ({ uri, dir, qemu }) => {
  const baseline = openFdCount(process.pid);
  const file = openTestFile(dir, 'python-getfd.img');
  closeSync(file.fd);
  const script = `
import json, os, sys, libvirt, libvirt_qemu
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName(sys.argv[2])
fd = os.open(sys.argv[3], os.O_RDWR)
result, files = libvirt_qemu.qemuMonitorCommandWithFiles(dom, '{"execute":"getfd","arguments":{"fdname":"pyfd"}}', [fd], 0)
os.close(fd)
print(json.dumps([json.loads(result), files]), flush=True)
sys.stdin.readline()
result, files = libvirt_qemu.qemuMonitorCommandWithFiles(dom, '{"execute":"closefd","arguments":{"fdname":"pyfd"}}', [], 0)
print(json.dumps([json.loads(result), files]), flush=True)
`;
  const child = spawn(SYSTEM_PYTHON, ['-c', script, uri, DOMAIN_NAME, file.path], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await eventually(() => output.includes('\n'), 'the getfd reply', COMMAND_DEADLINE_MS);
  const [getfd, outFiles] = JSON.parse(output.split('\n')[0]!) as [{ return?: unknown; id?: string }, unknown[]];
  assert.equal(getfd.return, {});
  assert.match(getfd.id ?? '', /^libvirt-\d+$/);
  assert.equal(outFiles, []);
  assert.is(fdsOn(qemu.pid, file.path), 1, 'QEMU holds the file while it is named');
  child.stdin!.write('\n');
  await new Promise((resolve) => child.once('exit', resolve));
  const [closefd] = JSON.parse(output.split('\n')[1]!) as [{ return?: unknown }];
  assert.equal(closefd.return, {});
  await eventually(() => fdsOn(qemu.pid, file.path) === 0, 'QEMU letting the file go');
  await eventually(() => openFdCount(process.pid) === baseline, "the endpoint's fd count back at its baseline");
});

test('libvirt-python qemuMonitorCommandWithFiles: add-fd, then blockdev-add on /dev/fdset/N, and getfd without a file fails with QEMU\'s text', async ({ uri, dir, qemu, other }) => {
  const file = openTestFile(dir, 'python-add-fd.img');
  closeSync(file.fd);
  const script = `
import json, os, sys, libvirt, libvirt_qemu
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName(sys.argv[2])
fd = os.open(sys.argv[3], os.O_RDWR)
replies = [libvirt_qemu.qemuMonitorCommandWithFiles(dom, '{"execute":"add-fd","arguments":{"fdset-id":5}}', [fd], 0)[0]]
os.close(fd)
for command in ['{"execute":"blockdev-add","arguments":{"driver":"file","node-name":"python-fdset","filename":"/dev/fdset/5"}}',
                '{"execute":"query-named-block-nodes"}',
                '{"execute":"getfd","arguments":{"fdname":"none"}}']:
    replies.append(libvirt_qemu.qemuMonitorCommandWithFiles(dom, command, [], 0)[0])
print(json.dumps([json.loads(reply) for reply in replies]), flush=True)
`;
  const child = spawn(SYSTEM_PYTHON, ['-c', script, uri, DOMAIN_NAME, file.path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.is(code, 0, output);
  const [added, blockdev, nodes, getfd] = JSON.parse(output) as [
    { return: { 'fdset-id': number } },
    { return?: unknown },
    { return: Array<{ 'node-name': string; file: string }> },
    { error?: { class: string; desc: string } },
  ];
  assert.is(added.return['fdset-id'], 5);
  assert.equal(blockdev.return, {});
  assert.equal(nodes.return.filter((node) => node['node-name'] === 'python-fdset').map((node) => node.file), ['/dev/fdset/5']);
  assert.equal(getfd.error, { class: 'GenericError', desc: NO_FD });
  assert.ok(fdsOn(qemu.pid, file.path) >= 1, 'QEMU holds the file');
  await other.execute('blockdev-del', { 'node-name': 'python-fdset' });
  await other.execute('remove-fd', { 'fdset-id': 5 });
});

test('a read-only endpoint does not offer fd passing: libvirt refuses to send them', async ({ readOnlyUri, dir }) => {
  const file = openTestFile(dir, 'read-only.img');
  const result = await virshWithFds(readOnlyUri, [file.fd], 'qemu-monitor-command', DOMAIN_NAME, '--pass-fds', passFds([file.fd]), '{"execute":"getfd","arguments":{"fdname":"ro"}}');
  closeSync(file.fd);
  assert.is(result.code, 1);
  assert.match(result.stderr, /error: argument unsupported: fd passing is not supported by this connection/);
  assert.not.match(result.stdout, /return/);
});

test.run();
