/**
 * The `qmpx` program itself: --version, help for the program and for each
 * command, usage errors, and a reader that goes away mid-stream.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '../../lib/index.js';
import { startQemu } from '../helpers/qemu.js';
import { REPO_ROOT, runQmpx, startQmpx } from './cli-process.js';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('--version and -V print the package version', async () => {
  for (const flag of ['--version', '-V']) {
    const result = await runQmpx([flag]);
    assert.is(result.stdout, `${VERSION}\n`);
    assert.is(result.code, 0);
  }
});

test('--help lists every command', async () => {
  const result = await runQmpx(['--help']);
  assert.is(result.code, 0);
  for (const command of ['exec', 'events', 'shell', 'serve', 'launch']) assert.match(result.stdout, new RegExp(`^  ${command} `, 'm'));
});

const OPTIONS: Record<string, string[]> = {
  exec: ['--hmp', '--pretty', '--return-value', '--timeout <seconds>'],
  events: ['--event <name>', '--regex', '--no-case', '--loop', '--timeout <seconds>', '--timestamp', '--pretty', '--json'],
  shell: ['--hmp', '--pretty', '--history <file>'],
  launch: ['--qmp <path>', '--hmp <path>', '--arg <arg>', '--env <name=value>', '--libvirt-xml <file>', '--qemu-binary <path>'],
};

for (const [command, options] of Object.entries(OPTIONS)) {
  test(`help for ${command}: "qmpx ${command} --help" and "qmpx help ${command}" agree and list its options`, async () => {
    const viaFlag = await runQmpx([command, '--help']);
    const viaHelp = await runQmpx(['help', command]);
    assert.is(viaFlag.code, 0);
    assert.is(viaHelp.stdout, viaFlag.stdout);
    assert.match(viaFlag.stdout, new RegExp(`^Usage: qmpx ${command} `, 'm'));
    for (const option of options) assert.ok(viaFlag.stdout.includes(`  ${option}`), `${command} --help shows ${option}:\n${viaFlag.stdout}`);
  });
}

test('an unknown command or option is a usage error (exit 1) with a hint', async () => {
  const command = await runQmpx(['frobnicate']);
  assert.is(command.code, 1);
  assert.match(command.stderr, /error: unknown command 'frobnicate'/);
  const option = await runQmpx(['exec', '/tmp/x.sock', '--nope', 'query-status']);
  assert.is(option.code, 1);
  assert.match(option.stderr, /error: unknown option '--nope'\n\(add --help for usage\)/);
});

test('a reader that goes away (events | head -1) ends qmpx quietly with exit 0', async () => {
  const qemu = await startQemu({ extraQmpSockets: 1 });
  const trigger = await connect(qemu.extraQmpPaths[0]!);
  const cli = startQmpx(['events', qemu.qmpPath, '--loop', '--json']);
  try {
    await cli.waitForStderr(/watching events/);
    await trigger.execute('cont');
    await cli.waitForStdout(/"RESUME"/);
    cli.child.stdout!.destroy();
    await trigger.execute('stop');
    await trigger.execute('cont');
    const result = await cli.finish();
    assert.is(result.code, 0);
    assert.not.match(result.stderr, /EPIPE|Error/);
  } finally {
    cli.kill('SIGKILL');
    await trigger.close();
    await qemu.stop();
  }
});

test.run();
