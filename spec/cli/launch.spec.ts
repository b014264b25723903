/**
 * `qmpx launch`, run as a child process against the real QEMU binary: the
 * argv QEMU receives (read back from /proc/PID/cmdline), --env, a libvirt
 * domain XML's <qemu:commandline>, signals, and QEMU never outliving launch.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from '../../lib/index.js';
import { isProcessAlive } from '../helpers/daemon.js';
import { createTempDir, removeTempDir, socketPathIn } from '../helpers/temp-dir.js';
import { REPO_ROOT, runQmpx, startQmpx, type CliProcess } from './cli-process.js';

const GUESTLESS = ['-machine', 'none', '-nodefaults', '-display', 'none', '-S'];
const FIXTURE = join(REPO_ROOT, 'spec/cli/fixtures/domain-lab1.xml');

function cmdlineOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

/** The value of a `name: value` line launch printed. */
function field(stdout: string, name: string): string {
  const match = new RegExp(`^${name}: (.*)$`, 'm').exec(stdout);
  if (!match) throw new Error(`no "${name}:" line in:\n${stdout}`);
  return match[1]!;
}

async function waitUntilGone(pid: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still alive`);
    await delay(10);
  }
}

/** Starts launch, waits for its argv line, runs `body`, and makes sure nothing is left running. */
async function withLaunch(args: (dir: string) => string[], body: (cli: CliProcess, pid: number, dir: string) => Promise<void>): Promise<void> {
  const dir = createTempDir('cli-launch');
  const cli = startQmpx(['launch', ...args(dir)]);
  let pid = 0;
  try {
    const stdout = await cli.waitForStdout(/^argv: .*\n/m);
    pid = Number(field(stdout, 'pid'));
    await body(cli, pid, dir);
  } finally {
    cli.kill('SIGKILL');
    if (pid && isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    await cli.done;
    await removeTempDir(dir);
  }
}

test('with no QEMU arguments it starts the guest-less QEMU, prints sockets, pid and argv, and SIGTERM ends both', () =>
  withLaunch(
    (dir) => ['--qmp', join(dir, 'qmp.sock'), '--hmp', join(dir, 'hmp.sock')],
    async (cli, pid, dir) => {
      const stdout = cli.stdout();
      assert.is(field(stdout, 'qmp'), join(dir, 'qmp.sock'));
      assert.is(field(stdout, 'hmp'), join(dir, 'hmp.sock'));
      const cmdline = cmdlineOf(pid);
      assert.equal(cmdline.slice(1), [
        '-qmp',
        `unix:${join(dir, 'qmp.sock')},server=on,wait=off`,
        '-monitor',
        `unix:${join(dir, 'hmp.sock')},server=on,wait=off`,
        ...GUESTLESS,
      ]);
      const monitor = await connect(join(dir, 'qmp.sock'));
      assert.equal(await monitor.execute('query-status'), { status: 'prelaunch', singlestep: false, running: false });
      await monitor.close();
      cli.kill('SIGTERM');
      const result = await cli.finish();
      assert.is(result.code, 0);
      assert.match(result.stderr, `qmpx launch: QEMU (pid ${pid}) exited with code 0`);
      assert.not.ok(isProcessAlive(pid));
    },
  ),
);

test('argv elements with spaces, commas, quotes and = reach QEMU unchanged, from --arg, --arg= and after --', () => {
  const name = `guest=lab one,,two "three" 'four'=5`;
  const secret = `secret,id=sec0,data=x y=z "q" 'r',format=raw`;
  return withLaunch(
    (dir) => ['--qmp', join(dir, 'qmp.sock'), '--arg', '-name', '--arg', name, '--arg=-object', `--arg=${secret}`, '--', ...GUESTLESS],
    async (cli, pid, dir) => {
      const expected = ['-name', name, '-object', secret, ...GUESTLESS];
      const cmdline = cmdlineOf(pid);
      assert.equal(cmdline.slice(-expected.length), expected);
      // The printed argv line, read back by a POSIX shell, is exactly the cmdline.
      const reparsed = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${field(cli.stdout(), 'argv')}`], { encoding: 'utf8' });
      assert.equal(reparsed.split('\0').slice(0, -1), cmdline);
      // QEMU parsed the elements itself: the doubled comma is one comma in the name.
      const monitor = await connect(join(dir, 'qmp.sock'));
      assert.equal(await monitor.execute('query-name'), { name: `lab one,two "three" 'four'=5` });
      const objects = await monitor.execute<Array<{ name: string; type: string }>>('qom-list', { path: '/objects' });
      assert.ok(objects.some((entry) => entry.name === 'sec0' && entry.type === 'child<secret>'), JSON.stringify(objects));
      await monitor.close();
    },
  );
});

test('--env adds variables to QEMU\'s environment and is printed', () =>
  withLaunch(
    (dir) => ['--qmp', join(dir, 'qmp.sock'), '--env', 'QMPX_A=one two', '--env', 'QMPX_B=x=y'],
    async (cli, pid) => {
      const environ = environOf(pid);
      assert.ok(environ.includes('QMPX_A=one two'));
      assert.ok(environ.includes('QMPX_B=x=y'));
      assert.match(cli.stdout(), /^env: 'QMPX_A=one two'$/m);
      assert.match(cli.stdout(), /^env: QMPX_B=x=y$/m);
    },
  ),
);

test('--libvirt-xml applies qemu:arg and qemu:env of a real domain XML', () =>
  withLaunch(
    (dir) => ['--qmp', join(dir, 'qmp.sock'), '--libvirt-xml', FIXTURE, '--', ...GUESTLESS],
    async (_cli, pid, dir) => {
      const expected = [
        '-name',
        'guest=lab1 (qmpx),,test,debug-threads=on',
        '-object',
        `secret,id=sec0,data=s3cr3t "quoted" & 'spaced',format=raw`,
        ...GUESTLESS,
      ];
      const cmdline = cmdlineOf(pid);
      assert.equal(cmdline.slice(-expected.length), expected);
      const environ = environOf(pid);
      assert.ok(environ.includes('QMPX_FIXTURE=a b=c, "d"'));
      assert.ok(environ.includes('QMPX_EMPTY='));
      const monitor = await connect(join(dir, 'qmp.sock'));
      assert.equal(await monitor.execute('query-name'), { name: 'lab1 (qmpx),test' });
      const objects = await monitor.execute<Array<{ name: string; type: string }>>('qom-list', { path: '/objects' });
      assert.ok(objects.some((entry) => entry.name === 'sec0' && entry.type === 'child<secret>'), JSON.stringify(objects));
      await monitor.close();
    },
  ),
);

test('--libvirt-xml refuses malformed XML, unknown elements in the namespace and unprefixed <arg>', async () => {
  const dir = createTempDir('cli-launch-xml');
  try {
    const cases: Array<[string, RegExp]> = [
      [`<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:commandline></domain>`, /not well-formed XML: line 1, column \d+: closing tag <\/domain> does not match <qemu:commandline>/],
      [`<domain xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'>\n<q:commandline>\n  <q:argument value='-S'/>\n</q:commandline></domain>`, /line 3: unknown element <q:argument> in <q:commandline>/],
      [`<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:commandline><arg value='-S'/></qemu:commandline></domain>`, /unknown element <arg> .*did you mean <qemu:arg>\?/],
      [`<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:capabilities><qemu:add capability='blockdev'/></qemu:capabilities></domain>`, /<qemu:capabilities> configures libvirt itself/],
      [`<domain><qemu:commandline/></domain>`, /namespace prefix "qemu" of qemu:commandline .* is not declared/],
    ];
    for (const [xml, expected] of cases) {
      const file = join(dir, 'domain.xml');
      writeFileSync(file, xml);
      const result = await runQmpx(['launch', '--qmp', socketPathIn(dir, 'qmp.sock'), '--libvirt-xml', file]);
      assert.is(result.code, 1, xml);
      assert.match(result.stderr, expected);
      assert.is(result.stdout, '', 'QEMU was not started');
    }
  } finally {
    await removeTempDir(dir);
  }
});

test('SIGINT is passed on to QEMU and waited for', () =>
  withLaunch(
    (dir) => ['--qmp', join(dir, 'qmp.sock')],
    async (cli, pid) => {
      cli.kill('SIGINT');
      const result = await cli.finish();
      assert.is(result.code, 0);
      assert.not.ok(isProcessAlive(pid));
    },
  ),
);

test('QEMU does not outlive a launch that is SIGKILLed', () =>
  withLaunch(
    (dir) => ['--qmp', join(dir, 'qmp.sock')],
    async (cli, pid) => {
      assert.ok(isProcessAlive(pid));
      cli.kill('SIGKILL');
      await cli.done;
      await waitUntilGone(pid);
    },
  ),
);

test('when QEMU quits by itself, launch ends with its exit status', () =>
  withLaunch(
    (dir) => ['--qmp', join(dir, 'qmp.sock')],
    async (cli, pid, dir) => {
      const monitor = await connect(join(dir, 'qmp.sock'));
      await monitor.execute('quit');
      await monitor.close();
      const result = await cli.finish();
      assert.is(result.code, 0);
      assert.match(result.stderr, `QEMU (pid ${pid}) exited with code 0`);
    },
  ),
);

test('a QEMU that fails to start: exit 1 with QEMU\'s own error', async () => {
  const dir = createTempDir('cli-launch-fail');
  try {
    const result = await runQmpx(['launch', '--qmp', socketPathIn(dir, 'qmp.sock'), '--', '-machine', 'no-such-machine']);
    assert.is(result.code, 1);
    assert.match(result.stderr, /qmpx launch: error: QEMU exited with code 1 before serving .*qmp\.sock:\nqemu-system-x86_64: unsupported machine type/);
  } finally {
    await removeTempDir(dir);
  }
});

test('-daemonize is refused with the reason: QEMU would outlive launch', async () => {
  const dir = createTempDir('cli-launch-daemonize');
  try {
    for (const flag of ['-daemonize', '--daemonize']) {
      const result = await runQmpx(['launch', '--qmp', socketPathIn(dir, 'qmp.sock'), '--', '-machine', 'none', '-display', 'none', flag]);
      assert.is(result.code, 1);
      assert.match(result.stderr, new RegExp(`qmpx launch: error: ${flag} is refused: QEMU would detach and outlive qmpx, which stops the QEMU it started when it ends`));
    }
  } finally {
    await removeTempDir(dir);
  }
});

test('usage errors: --arg without a value, --env without =, no --qmp', async () => {
  const missingValue = await runQmpx(['launch', '--qmp', '/tmp/x.sock', '--arg']);
  assert.is(missingValue.code, 1);
  assert.match(missingValue.stderr, /option '--arg <arg>' argument missing/);
  const badEnv = await runQmpx(['launch', '--qmp', '/tmp/x.sock', '--env', 'NOVALUE']);
  assert.is(badEnv.code, 1);
  assert.match(badEnv.stderr, /expected NAME=VALUE, got "NOVALUE"/);
  const noQmp = await runQmpx(['launch']);
  assert.is(noQmp.code, 1);
  assert.match(noQmp.stderr, /required option '--qmp <path>' not specified/);
});

test.run();
