/**
 * One libvirt socket for a whole `serve` (three real QEMUs), against the
 * clients people use: virsh 9.0 prints for `list`, `dominfo`, `domstate
 * --reason`, `domid`, `domuuid`, `resume`, `reset`, `suspend`,
 * `domblklist`, `domiflist` what it printed against libvirtd for the same
 * facts (fixtures/libvirtd-9.0/virsh-lifecycle-basics.txt: lab1 is a 64 MiB,
 * one-vCPU pc started paused, with the same uuid); libvirt-python's
 * listAllDomains / state / info / isActive and lifecycle callbacks print
 * what python-libvirt-lifecycle.txt holds; `virsh event` sees what a QMP
 * client on another socket does; unsupported calls name their API; every
 * call is in the audit file.
 *
 * Where qmpx's facts differ from that libvirtd's, the expected text is
 * changed and the test says why: no domain is persistent (qmpx keeps no
 * definition), there are no taint messages, and CPU time is the live
 * process's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MonitorConfig } from '../../lib/proxy/config.js';
import { startServe, type ServeHandle } from '../../lib/proxy/daemon.js';
import { rawQmp, startQemu, type QemuInstance } from '../helpers/qemu.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { RecordingLogger, eventually } from '../proxy/harness.js';
import { SYSTEM_PYTHON, run, type CommandResult } from './endpoint-harness.js';

const FIXTURES = new URL('../../../spec/rpc/fixtures/', import.meta.url);
const LIBVIRTD_UUID = 'e0eb7c91-66c5-4bd2-8005-e1a952246e1c';
const NIC_MAC = '52:54:00:12:34:56';

let dir: string;
let qemus: QemuInstance[] = [];
let handle: ServeHandle;
let socket: string;
let auditPath: string;
let diskPath: string;
const logger = new RecordingLogger();

/** The uuid qmpx gives a VM without -uuid: SHA-1 of `qmpx:NAME` shaped as a name-based (version 5) uuid. */
function nameUuid(name: string): string {
  const bytes = createHash('sha1').update(`qmpx:${name}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

test.before(async () => {
  dir = createTempDir('serve-domains');
  diskPath = join(dir, 'disk.img');
  writeFileSync(diskPath, Buffer.alloc(1024 * 1024));
  qemus = await Promise.all([
    startQemu({ machine: 'pc', args: ['-uuid', LIBVIRTD_UUID] }),
    startQemu({
      machine: 'pc',
      args: [
        '-drive',
        `file=${diskPath},if=none,id=drive0,format=raw`,
        '-device',
        'virtio-blk-pci,drive=drive0,id=disk0',
        '-netdev',
        'user,id=net0',
        '-device',
        `e1000,netdev=net0,id=nic0,mac=${NIC_MAC}`,
      ],
    }),
    startQemu(),
  ]);
  socket = socketPathIn(dir, 'libvirt.sock');
  auditPath = join(dir, 'audit.ndjson');
  const monitors: MonitorConfig[] = qemus.map((qemu, index) => ({
    name: `lab${index + 1}`,
    upstream: qemu.qmpPath,
    qmp: socketPathIn(dir, `qmp${index + 1}.sock`),
    socketMode: 0o600,
    maxClientBufferBytes: 8 * 1024 * 1024,
  }));
  handle = await startServe(
    { logLevel: 'debug', monitors, libvirt: { path: socket, socketMode: 0o600 }, audit: { path: auditPath, arguments: false } },
    { logger, proxy: { upstream: { initialBackoffMs: 10, maxBackoffMs: 100 } } },
  );
  for (const proxy of handle.proxies) await proxy.upstream.whenUp();
  // QEMU's -uuid is looked up once the link is up.
  await eventually(() => {
    const first = handle.proxies[0]!.libvirtDomain(1);
    return 'active' in first && first.active.uuid === LIBVIRTD_UUID;
  }, 'lab1 to carry its -uuid');
});

test.after(async () => {
  await handle?.stop();
  await Promise.all(qemus.map((qemu) => qemu.stop()));
  await removeTempDir(dir);
});

function virsh(...args: string[]): Promise<CommandResult> {
  return run('virsh', ['-c', `qemu+unix:///system?socket=${socket}`, ...args], { ...process.env, LC_ALL: 'C' });
}

/** libvirtd's output of `virsh ARGS` in the fixture (stdout, or the error for a failing command). */
function libvirtdOutput(args: string): { text: string; code: number } {
  const fixture = readFileSync(new URL('libvirtd-9.0/virsh-lifecycle-basics.txt', FIXTURES), 'utf8');
  const start = fixture.indexOf(`$ virsh ${args}\n`);
  assert.ok(start >= 0, `no "virsh ${args}" in the fixture`);
  const body = fixture.slice(start + `$ virsh ${args}\n`.length);
  const end = /\[rc (\d+)\]\n/.exec(body)!;
  return { text: body.slice(0, end.index), code: Number(end[1]) };
}

async function expectLikeLibvirtd(args: string[], expected: string = libvirtdOutput(args.join(' ')).text): Promise<void> {
  const result = await virsh(...args);
  assert.is(result.code, 0, `virsh ${args.join(' ')}: ${result.stderr}`);
  assert.is(result.stdout, expected, `virsh ${args.join(' ')}`);
}

test('virsh list [--all] lists the three monitors in config order, as libvirtd lists lab1', async () => {
  for (const args of [['list', '--all'], ['list']]) {
    const [header, rule, row, blank] = libvirtdOutput(args.join(' ')).text.split('\n');
    const rows = [row!, row!.replace(' 1    lab1', ' 2    lab2'), row!.replace(' 1    lab1', ' 3    lab3')];
    await expectLikeLibvirtd(args, [header, rule, ...rows, blank, ''].join('\n'));
  }
});

test('dominfo, domstate [--reason], domid, domuuid of lab1 print what libvirtd printed', async () => {
  const dominfo = await virsh('dominfo', 'lab1');
  assert.is(dominfo.code, 0, dominfo.stderr);
  const expected = libvirtdOutput('dominfo lab1')
    .text.replace('Persistent:     yes', 'Persistent:     no') // qmpx keeps no definition of its own
    .replace(/Messages: .*\n.*\n/, ''); // no taint: qmpx's monitor commands do not taint
  const cpuTime = /^CPU time:\s+(\d+\.\d)s$/m.exec(dominfo.stdout);
  assert.ok(cpuTime, dominfo.stdout);
  assert.is(dominfo.stdout, expected.replace(/^CPU time:\s+\S+$/m, `CPU time:       ${cpuTime[1]}s`));
  for (const args of [['domstate', 'lab1'], ['domstate', 'lab1', '--reason'], ['domid', 'lab1'], ['domuuid', 'lab1']]) await expectLikeLibvirtd(args);
});

test('resume, reset and suspend through virsh, with the states and reasons libvirtd reports between them', async () => {
  const fixture = readFileSync(new URL('libvirtd-9.0/virsh-lifecycle-basics.txt', FIXTURES), 'utf8');
  const afterResume = fixture.indexOf('$ virsh resume lab1');
  const sequence = [...fixture.slice(afterResume).matchAll(/^\$ virsh (.*)\n([\s\S]*?)\[rc 0\]\n/gm)].slice(0, 5);
  assert.equal(
    sequence.map((step) => step[1]),
    ['resume lab1', 'domstate lab1 --reason', 'reset lab1', 'suspend lab1', 'domstate lab1 --reason'],
  );
  for (const step of sequence) await expectLikeLibvirtd(step[1]!.split(' '), step[2]!);
});

test('domblklist and domiflist: empty for lab1 as for libvirtd; lab2 its disk and NIC', async () => {
  await expectLikeLibvirtd(['domblklist', 'lab1']);
  await expectLikeLibvirtd(['domiflist', 'lab1']);
  const disks = await virsh('domblklist', 'lab2');
  const [header, rule, row, ...rest] = disks.stdout.split('\n');
  assert.equal([header!.trimEnd(), row, rest], [' Target   Source', ` drive0   ${diskPath}`, ['', '']]);
  assert.match(rule!, /^-{20,}$/);
  const nics = await virsh('domiflist', 'lab2');
  assert.is(
    nics.stdout,
    ' Interface   Type   Source   Model   MAC\n' +
      `${'-'.repeat(56)}\n` +
      ` -           user   -        e1000   ${NIC_MAC}\n\n`,
  );
  const xml = await virsh('dumpxml', 'lab2');
  assert.is(xml.code, 0, xml.stderr);
  assert.is(
    xml.stdout,
    [
      "<domain type='qemu' id='2'>",
      '  <name>lab2</name>',
      `  <uuid>${nameUuid('lab2')}</uuid>`,
      "  <memory unit='KiB'>65536</memory>",
      "  <currentMemory unit='KiB'>65536</currentMemory>",
      "  <vcpu placement='static'>1</vcpu>",
      '  <os>',
      "    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>",
      '  </os>',
      '  <devices>',
      "    <disk type='file' device='disk'>",
      "      <driver name='qemu' type='raw'/>",
      `      <source file='${diskPath}'/>`,
      "      <target dev='drive0'/>",
      '    </disk>',
      "    <interface type='user'>",
      `      <mac address='${NIC_MAC}'/>`,
      "      <model type='e1000'/>",
      '    </interface>',
      '  </devices>',
      '</domain>',
      '',
      '',
    ].join('\n'),
  );
});

test('domname / domid / domuuid of the others: ids from config order, uuids from the name', async () => {
  assert.is((await virsh('domname', '3')).stdout, 'lab3\n\n');
  assert.is((await virsh('domid', 'lab2')).stdout, '2\n\n');
  assert.is((await virsh('domuuid', 'lab3')).stdout, `${nameUuid('lab3')}\n\n`);
  assert.is((await virsh('domname', nameUuid('lab2'))).stdout, 'lab2\n\n');
});

test('an unsupported call fails as libvirtd fails it, naming the API', async () => {
  const result = await virsh('domtime', 'lab1');
  assert.is(result.code, 1);
  assert.is(result.stderr, 'error: this function is not supported by the connection driver: virDomainGetTime\n');
  const memstat = await virsh('dommemstat', 'lab1');
  assert.is(memstat.code, 1);
  assert.match(memstat.stderr, 'this function is not supported by the connection driver: virDomainMemoryStats');
});

test('libvirt-python: listAllDomains, state, info, isActive, lookups and lifecycle callbacks as against libvirtd', async () => {
  const client = fileURLToPath(new URL('libvirt_domains_client.py', FIXTURES));
  const result = await run(SYSTEM_PYTHON, [client, `qemu+unix:///system?socket=${socket}`, 'lab1']);
  assert.is(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  const expected = readFileSync(new URL('libvirtd-9.0/python-libvirt-lifecycle.txt', FIXTURES), 'utf8').trimEnd().split('\n');
  assert.is(lines[0], "listAllDomains ['lab1', 'lab2', 'lab3']");
  // info's last field is the CPU time in ns, the live process's.
  const cpuTime = /info \[3, 65536, 65536, 1, (\d+)\]/.exec(lines[1]!)?.[1];
  assert.ok(cpuTime !== undefined && cpuTime !== '0', lines[1]);
  assert.is(lines[1], expected[1]!.replace('430000000', cpuTime));
  assert.equal(lines.slice(2, 4), expected.slice(2, 4));
  assert.equal(lines.slice(4), [
    'lookupByID lab1 lookupByUUIDString lab1',
    'getTime 3 20 this function is not supported by the connection driver: virDomainGetTime',
  ]);
});

/** Collects a child's stdout; `waitFor` resolves once `count` lines match. */
function watch(child: ChildProcess): { text: () => string; waitFor: (pattern: RegExp, count: number) => Promise<void> } {
  let text = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const waiter of waiters) waiter();
  });
  return {
    text: () => text,
    waitFor: (pattern, count) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`virsh event printed only: ${text}`)), 20_000);
        const check = (): void => {
          if ((text.match(new RegExp(pattern.source, 'gm')) ?? []).length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
  };
}

test('virsh event --all --loop sees suspend, resume and reset done by a QMP client on another socket', async () => {
  const registered = (): number => logger.entries.filter((entry) => entry.message === 'domain event callback registered').length;
  const before = registered();
  const child = spawn('virsh', ['-c', `qemu+unix:///system?socket=${socket}`, 'event', '--all', '--loop'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  const output = watch(child);
  try {
    // virsh registers every event id libvirt 9.0 has, one call each.
    await eventually(() => registered() - before === 27, 'virsh to register its 27 callbacks', 20_000);
    const qmp = await rawQmp(socketPathIn(dir, 'qmp2.sock'));
    await qmp.waitForLines(1);
    await qmp.send('{"execute":"qmp_capabilities"}\n{"execute":"cont"}\n{"execute":"stop"}\n{"execute":"system_reset","id":"r"}\n');
    await qmp.waitForLine((line) => line.includes('"id": "r"'));
    await qmp.close();
    await output.waitFor(/^event /, 3);
    assert.is(
      output.text(),
      "event 'lifecycle' for domain 'lab2': Resumed Unpaused\n" +
        "event 'lifecycle' for domain 'lab2': Suspended Paused\n" +
        "event 'reboot' for domain 'lab2'\n",
    );
  } finally {
    child.kill();
  }
});

test('suspend on a paused domain sends nothing, so another client\'s later stop is not labelled as the user\'s', async () => {
  // The events test left lab2 paused by another client's stop: reason unknown.
  assert.is((await virsh('domstate', 'lab2', '--reason')).stdout, 'paused (unknown)\n\n');
  assert.is((await virsh('suspend', 'lab2')).stdout, "Domain 'lab2' suspended\n\n");
  const qmp = await rawQmp(socketPathIn(dir, 'qmp2.sock'));
  await qmp.waitForLines(1);
  await qmp.send('{"execute":"qmp_capabilities"}\n{"execute":"cont"}\n{"execute":"stop","id":"s"}\n');
  await qmp.waitForLine((line) => line.includes('"id": "s"'));
  await qmp.close();
  assert.is((await virsh('domstate', 'lab2', '--reason')).stdout, 'paused (unknown)\n\n');
  assert.is((await virsh('resume', 'lab2')).stdout, "Domain 'lab2' resumed\n\n");
  assert.is((await virsh('resume', 'lab2')).stdout, "Domain 'lab2' resumed\n\n");
  assert.is((await virsh('domstate', 'lab2', '--reason')).stdout, 'running (unpaused)\n\n');
  assert.is((await virsh('suspend', 'lab2')).stdout, "Domain 'lab2' suspended\n\n");
  assert.is((await virsh('domstate', 'lab2', '--reason')).stdout, 'paused (user)\n\n');
});

test('shutdown and reboot press the power button; destroy quits QEMU and leaves lab3 shut off (destroyed)', async () => {
  const child = spawn('virsh', ['-c', `qemu+unix:///system?socket=${socket}`, 'event', 'lab3', '--event', 'lifecycle', '--loop'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  const output = watch(child);
  try {
    const before = logger.entries.filter((entry) => entry.message === 'domain event callback registered').length;
    await eventually(() => logger.entries.filter((entry) => entry.message === 'domain event callback registered').length > before, 'the lifecycle callback', 20_000);
    assert.is((await virsh('shutdown', 'lab3')).stdout, "Domain 'lab3' is being shutdown\n\n");
    assert.is((await virsh('reboot', 'lab3')).stdout, "Domain 'lab3' is being rebooted\n\n");
    assert.is((await virsh('destroy', 'lab3')).stdout, "Domain 'lab3' destroyed\n\n");
    await output.waitFor(/^event /, 1);
    assert.is(output.text(), "event 'lifecycle' for domain 'lab3': Stopped Destroyed\n");
  } finally {
    child.kill();
  }
  assert.is((await virsh('domstate', 'lab3', '--reason')).stdout, 'shut off (destroyed)\n\n');
  assert.is((await virsh('domid', 'lab3')).stdout, '-\n\n');
  assert.is(
    (await virsh('list', '--all')).stdout,
    ' Id   Name   State\n' + '-----------------------\n' + ' 1    lab1   paused\n' + ' 2    lab2   paused\n' + ' -    lab3   shut off\n\n',
  );
  assert.is((await virsh('list')).stdout, ' Id   Name   State\n' + '---------------------\n' + ' 1    lab1   paused\n' + ' 2    lab2   paused\n\n');
  const suspend = await virsh('suspend', 'lab3');
  assert.is(suspend.code, 1);
  assert.match(suspend.stderr, 'error: Requested operation is not valid: domain is not running');
});

test('every call through the socket is audited: origin libvirt, client, procedure, outcome; HMP as its line', async () => {
  assert.is((await virsh('qemu-monitor-command', 'lab1', '--hmp', 'info', 'status')).code, 0);
  assert.is((await virsh('qemu-monitor-command', 'lab1', '{"execute":"query-name"}')).code, 0);
  assert.is((await virsh('qemu-monitor-command', 'lab1', '{"execute":"no-such-command"}')).code, 0);
  await eventually(() => readFileSync(auditPath, 'utf8').includes('no-such-command'), 'the audit lines', 10_000);
  const records = readFileSync(auditPath, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => record.socket === socket);
  assert.ok(records.length > 0);
  assert.ok(records.every((record) => record.origin === 'libvirt' && record.socket === socket && typeof record.client === 'number'));
  const find = (fields: Record<string, unknown>): Record<string, unknown> | undefined =>
    records.find((record) => Object.entries(fields).every(([key, value]) => record[key] === value));
  // By virsh and by libvirt-python (a second client, the python script's other connection).
  const suspends = records.filter((record) => record.procedure === 'virDomainSuspend' && record.monitor === 'lab1' && record.outcome === 'ok');
  assert.ok(new Set(suspends.map((record) => record.client)).size >= 2, JSON.stringify(suspends));
  assert.ok(find({ procedure: 'virDomainQemuMonitorCommand', command: 'human-monitor-command', line: 'info status', monitor: 'lab1', outcome: 'ok' }));
  assert.ok(find({ procedure: 'virDomainQemuMonitorCommand', command: 'query-name', outcome: 'ok' }));
  assert.ok(find({ procedure: 'virDomainQemuMonitorCommand', command: 'no-such-command', outcome: 'error', errorClass: 'CommandNotFound' }));
  assert.ok(find({ procedure: 'virDomainGetTime', command: 'virDomainGetTime', monitor: '', outcome: 'error', errorClass: 'NO_SUPPORT' }));
  assert.ok(find({ procedure: 'virDomainDestroy', monitor: 'lab3', outcome: 'ok' }));
  assert.ok(find({ procedure: 'virDomainSuspend', monitor: '', outcome: 'error', errorClass: 'OPERATION_INVALID' }));
  assert.ok(find({ procedure: 'virConnectListAllDomains', outcome: 'ok' }));
  assert.not.ok(find({ procedure: 'virConnectOpen' }), 'the handshake is not audited');
});

test.run();
