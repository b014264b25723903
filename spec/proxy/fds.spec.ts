/**
 * File descriptors through `qmpx serve --accept-fds`, sent by Python's own
 * `socket.send_fds` to a real QEMU 7.2: they reach QEMU with the getfd /
 * add-fd they came with and with nothing else; every other fd is closed in
 * qmpx, and each client sees exactly what QEMU alone answers (compared
 * with the same script run straight on a second monitor of the same QEMU).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FDS_OVER_CAP_DESC } from '../../lib/proxy/client-fds.js';
import { fdsOn, openTestFile } from '../fd/files.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { eventually, serveQemu, type ServedQemu } from './harness.js';
import { openFdCount, pythonClient } from './fds-client.js';

const NO_FD = 'No file descriptor supplied via SCM_RIGHTS';

const test = suite<{ served: ServedQemu; direct: string; auditDir: string; auditPath: string }>('file descriptors through serve, Python clients, real QEMU');

test.before(async (context) => {
  context.auditDir = createTempDir('fds-audit');
  context.auditPath = join(context.auditDir, 'audit.ndjson');
  context.served = await serveQemu({ acceptFds: true, readOnly: true, audit: { path: context.auditPath, arguments: false }, qemu: { extraQmpSockets: 1 } });
  context.direct = context.served.qemu.extraQmpPaths[0]!;
  // The audit file is opened with the first record: opened here, so that fd counts below start after it.
  await pythonClient(context.served.qmpPath, "cmd({'execute': 'query-status'})");
  await eventually(() => existsSync(context.auditPath) && readFileSync(context.auditPath, 'utf8') !== '', 'the audit file');
});

test.after(async (context) => {
  await context.served.stop();
  await removeTempDir(context.auditDir);
});

/** query-fdsets as QEMU answers it now, asked on the direct monitor. */
async function fdsets(path: string): Promise<unknown> {
  const [answer] = await pythonClient(path, "out(cmd({'execute': 'query-fdsets'}))");
  return answer;
}

test('add-fd of a file, blockdev-add on /dev/fdset/N, query-named-block-nodes shows it; the audit counts the fd', async ({ served, direct, auditPath }) => {
  const file = openTestFile(served.dir, 'disk.img', 'x'.repeat(4096));
  const baseline = openFdCount(process.pid);
  const script = `
fd = os.open(sys.argv[2], os.O_RDWR)
out(cmd({'execute': 'add-fd', 'arguments': {'fdset-id': 7}}, [fd]))
os.close(fd)
out(cmd({'execute': 'blockdev-add', 'arguments': {'driver': 'file', 'node-name': 'fdnode', 'filename': '/dev/fdset/7'}}))
out([node['node-name'] for node in cmd({'execute': 'query-named-block-nodes'})['return']])
out(cmd({'execute': 'query-fdsets'})['return'])
`;
  const [added, blockdev, nodes, sets] = (await pythonClient(served.qmpPath, script, file.path)) as [
    { return: { fd: number; 'fdset-id': number } },
    unknown,
    string[],
    Array<{ 'fdset-id': number; fds: unknown[] }>,
  ];
  assert.is(added.return['fdset-id'], 7);
  assert.equal(blockdev, { return: {} });
  assert.ok(nodes.includes('fdnode'), JSON.stringify(nodes));
  assert.ok(fdsOn(served.qemu.pid, file.path) >= 1, 'QEMU holds the file');
  assert.equal(sets.find((set) => set['fdset-id'] === 7)?.fds.length, 1);
  await eventually(() => openFdCount(process.pid) === baseline, "serve's fd count back at its baseline");
  await pythonClient(direct, "cmd({'execute': 'blockdev-del', 'arguments': {'node-name': 'fdnode'}})\ncmd({'execute': 'remove-fd', 'arguments': {'fdset-id': 7}})");
  await eventually(() => readFileSync(auditPath, 'utf8').includes('"command":"add-fd"'), 'the audit line');
  const line = readFileSync(auditPath, 'utf8').split('\n').find((entry) => entry.includes('"command":"add-fd"'))!;
  assert.match(line, /"outcome":"ok".*"fds":1/);
});

test('getfd + closefd, and getfd without an fd, answer exactly as QEMU alone', async ({ served, direct }) => {
  const script = `
r, w = os.pipe()
out(cmd({'execute': 'getfd', 'arguments': {'fdname': 'pyfd'}}, [r]))
out(cmd({'execute': 'closefd', 'arguments': {'fdname': 'pyfd'}}))
out(cmd({'execute': 'getfd', 'arguments': {'fdname': 'nofd'}}))
out(cmd({'execute': 'closefd', 'arguments': {'fdname': 'pyfd'}}))
`;
  const through = await pythonClient(served.qmpPath, script);
  const alone = await pythonClient(direct, script);
  assert.equal(through, alone);
  assert.equal(through[0], { return: {} });
  assert.equal(through[1], { return: {} });
  assert.equal(through[2], { error: { class: 'GenericError', desc: NO_FD } });
});

test("an fd sent with query-status never reaches QEMU: another client's getfd without an fd still fails", async ({ served, direct }) => {
  const baseline = openFdCount(process.pid);
  const setsBefore = await fdsets(direct);
  const straySender = `
r, w = os.pipe()
out(cmd({'execute': 'query-status'}, [r]))
out(cmd({'execute': 'query-version'}, [w]))
`;
  const withStray = await pythonClient(served.qmpPath, straySender);
  const plain = await pythonClient(direct, "out(cmd({'execute': 'query-status'}))\nout(cmd({'execute': 'query-version'}))");
  assert.equal(withStray, plain, 'the client sees what QEMU answers those commands');
  const getfd = "out(cmd({'execute': 'getfd', 'arguments': {'fdname': 'stolen'}}))";
  const [through] = await pythonClient(served.qmpPath, getfd);
  const [alone] = await pythonClient(direct, getfd);
  assert.equal(through, { error: { class: 'GenericError', desc: NO_FD } });
  assert.equal(through, alone);
  assert.equal(await fdsets(direct), setsBefore);
  await eventually(() => openFdCount(process.pid) === baseline, "the stray fds closed in serve");
});

test('fds sent with a message QEMU refuses unread, or with a command answered in qmpx, are closed too', async ({ served, direct }) => {
  const baseline = openFdCount(process.pid);
  // Sent with fds through serve, without them straight to QEMU: a not-JSON message, then qmp_capabilities again.
  const script = `
r, w = os.pipe()
fds = [r] if sys.argv[2] == 'fds' else []
raw(b'{"execute": }\\n', fds)
out(reply())
out(cmd({'execute': 'qmp_capabilities'}, [w] if fds else []))
out(cmd({'execute': 'getfd', 'arguments': {'fdname': 'after-error'}}))
`;
  const through = await pythonClient(served.qmpPath, script, 'fds');
  const alone = await pythonClient(direct, script, 'none');
  assert.equal(through, alone);
  assert.equal(through[2], { error: { class: 'GenericError', desc: NO_FD } });
  await eventually(() => openFdCount(process.pid) === baseline, 'the fds closed in serve');
});

test('the read-only socket takes no fds: getfd is refused by its policy, nothing reaches QEMU', async ({ served, direct }) => {
  const baseline = openFdCount(process.pid);
  const setsBefore = await fdsets(direct);
  const script = `
r, w = os.pipe()
out(cmd({'execute': 'query-status'}, [r]))
out(cmd({'execute': 'getfd', 'arguments': {'fdname': 'ro'}}, [w]))
out(cmd({'execute': 'add-fd'}, [w]))
`;
  const [status, getfd, addFd] = (await pythonClient(served.readOnlyPath, script)) as [{ return: unknown }, { error: { desc: string } }, { error: { desc: string } }];
  assert.ok('return' in status);
  assert.match(getfd.error.desc, /command 'getfd' is not allowed by the qmpx read-only policy/);
  assert.match(addFd.error.desc, /command 'add-fd' is not allowed by the qmpx read-only policy/);
  const [after] = await pythonClient(served.qmpPath, "out(cmd({'execute': 'getfd', 'arguments': {'fdname': 'ro'}}))");
  assert.equal(after, { error: { class: 'GenericError', desc: NO_FD } });
  assert.equal(await fdsets(direct), setsBefore);
  await eventually(() => openFdCount(process.pid) === baseline, "serve's fd count back at its baseline");
});

test('more than 16 fds with one command: refused with a clear error, all closed, nothing sent', async ({ served, direct }) => {
  const baseline = openFdCount(process.pid);
  const setsBefore = await fdsets(direct);
  const script = `
pipes = [os.pipe() for _ in range(9)]
fds = [fd for pair in pipes for fd in pair][:17]
out(cmd({'execute': 'add-fd', 'id': 'many'}, fds))
out(cmd({'execute': 'getfd', 'arguments': {'fdname': 'after-cap'}}))
`;
  const [refused, after] = await pythonClient(served.qmpPath, script);
  assert.equal(refused, { id: 'many', error: { class: 'GenericError', desc: FDS_OVER_CAP_DESC } });
  assert.equal(after, { error: { class: 'GenericError', desc: NO_FD } });
  assert.equal(await fdsets(direct), setsBefore);
  await eventually(() => openFdCount(process.pid) === baseline, "serve's fd count back at its baseline");
});

test('no leaks: 1,000 add-fd from 10 clients, some leaving mid-command; QEMU holds only the fds meant for it', async ({ served, direct }) => {
  // QEMU closes the fds of a removed fdset only while the VM runs.
  await pythonClient(direct, "cmd({'execute': 'cont'})");
  const baseline = openFdCount(process.pid);
  const qemuBaseline = openFdCount(served.qemu.pid);
  const worker = `
set_id = int(sys.argv[2])
for i in range(100):
    r, w = os.pipe()
    answer = cmd({'execute': 'add-fd', 'arguments': {'fdset-id': set_id}}, [r])
    os.close(r); os.close(w)
    assert answer['return']['fdset-id'] == set_id, answer
    assert cmd({'execute': 'remove-fd', 'arguments': {'fdset-id': set_id}}) == {'return': {}}
out('done')
`;
  // Clients that leave: half a command with an fd (never complete), or a whole add-fd whose reply they never read.
  const leaver = `
r, w = os.pipe()
if sys.argv[2] == 'half':
    raw(b'{"execute": "add-fd", "argu', [r])
else:
    raw(json.dumps({'execute': 'add-fd', 'arguments': {'fdset-id': 900}}).encode(), [r])
out('left')
`;
  const runs = [
    ...Array.from({ length: 10 }, (_, index) => pythonClient(served.qmpPath, worker, String(100 + index))),
    ...Array.from({ length: 5 }, () => pythonClient(served.qmpPath, leaver, 'half')),
    ...Array.from({ length: 3 }, () => pythonClient(served.qmpPath, leaver, 'whole')),
  ];
  const outputs = await Promise.all(runs);
  assert.is(outputs.filter((output) => output[0] === 'done').length, 10);
  await eventually(() => served.proxy.sessionCount === 0 && served.proxy.pendingCount === 0, 'every client gone and answered');
  await eventually(() => openFdCount(process.pid) === baseline, "serve's fd count back at its baseline");
  const sets = (await fdsets(direct)) as { return: Array<{ 'fdset-id': number; fds: unknown[] }> };
  assert.equal(
    sets.return.filter((set) => set['fdset-id'] >= 100).map((set) => [set['fdset-id'], set.fds.length]),
    [[900, 3]],
    'only the three whole add-fd of the leaving clients reached QEMU',
  );
  assert.is(openFdCount(served.qemu.pid), qemuBaseline + 3);
  await pythonClient(direct, "cmd({'execute': 'remove-fd', 'arguments': {'fdset-id': 900}})\ncmd({'execute': 'stop'})");
  await eventually(() => openFdCount(served.qemu.pid) === qemuBaseline, "QEMU's fd count back at its baseline");
});

test.run();
