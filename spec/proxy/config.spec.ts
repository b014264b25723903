/**
 * `serve` configuration: the JSON file (ajv-checked shape and the rules a
 * schema cannot state) and how command-line options merge with it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildServeConfig, serveCommand } from '../../lib/cli/serve.js';
import { configFromJson, loadConfigFile, parseSocketMode } from '../../lib/proxy/config.js';
import { QmpxError } from '../../lib/errors.js';
import { createTempDir, removeTempDir } from '../helpers/temp-dir.js';

function throwsQmpx(run: () => unknown, pattern: RegExp): void {
  try {
    run();
  } catch (error) {
    assert.instance(error, QmpxError);
    assert.match((error as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

test('a full config file gets its defaults', () => {
  const config = configFromJson(
    {
      logLevel: 'debug',
      socketMode: '0660',
      audit: { path: '/var/log/a.ndjson' },
      monitors: [
        { name: 'vm1', upstream: '/run/vm1/qmp.sock', qmp: '/run/q/vm1.qmp', readOnly: '/run/q/vm1.ro' },
        { launch: { args: ['-m', '64'], restart: true }, hmp: '/run/q/lab.hmp', socketMode: '600', maxClientBufferBytes: 65536 },
      ],
    },
    'test.json',
  );
  assert.is(config.logLevel, 'debug');
  assert.equal(config.audit, { path: '/var/log/a.ndjson', arguments: false });
  assert.is(config.monitors[0]!.socketMode, 0o660);
  assert.is(config.monitors[0]!.maxClientBufferBytes, 8 * 1024 * 1024);
  assert.is(config.monitors[1]!.socketMode, 0o600);
  assert.equal(config.monitors[1]!.launch, { args: ['-m', '64'], binary: undefined, env: undefined, restart: true });
});

test('shape errors name the file and the problem', () => {
  throwsQmpx(() => configFromJson({}, 'a.json'), /a\.json: invalid config: .*monitors/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', qmp: '/y', extra: 1 }] }, 'a.json'), /^a\.json: invalid config: \/monitors\/0: unknown key "extra"$/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstrem: '/x', qmp: '/y' }] }, 'a.json'), /^a\.json: invalid config: \/monitors\/0: unknown key "upstrem" \(did you mean "upstream"\?\)$/);
  throwsQmpx(() => configFromJson({ monitors: [{ launch: { restrat: true }, qmp: '/y' }] }, 'a.json'), /\/monitors\/0\/launch: unknown key "restrat" \(did you mean "restart"\?\)/);
  throwsQmpx(() => configFromJson({ audit: { path: '/a', args: true }, monitors: [{ upstream: '/x', qmp: '/y' }] }, 'a.json'), /\/audit: unknown key "args"/);
  throwsQmpx(() => configFromJson({ logLevle: 'info', monitors: [{ upstream: '/x', qmp: '/y' }] }, 'a.json'), /\(top level\): unknown key "logLevle" \(did you mean "logLevel"\?\)/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', launch: {}, qmp: '/y' }] }, 'a.json'), /exactly one of upstream and launch/);
  throwsQmpx(() => configFromJson({ monitors: [{ qmp: '/y' }] }, 'a.json'), /exactly one of upstream and launch/);
  throwsQmpx(() => configFromJson({ socketMode: '999', monitors: [{ upstream: '/x', qmp: '/y' }] }, 'a.json'), /invalid config/);
});

test('rules beyond the schema: a socket per monitor, no path twice, unique names', () => {
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x' }] }, 'a.json'), /no downstream socket/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', qmp: '/y', hmp: '/y' }] }, 'a.json'), /\/y is also/);
  throwsQmpx(
    () => configFromJson({ monitors: [{ upstream: '/a', qmp: '/b' }, { upstream: '/c', qmp: '/a' }] }, 'a.json'),
    /\/a is also monitor 1 upstream/,
  );
  throwsQmpx(
    () => configFromJson({ monitors: [{ name: 'n', upstream: '/a', qmp: '/b' }, { name: 'n', upstream: '/c', qmp: '/d' }] }, 'a.json'),
    /two monitors are named "n"/,
  );
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', qmp: '/y', agent: '/g' }] }, 'a.json'), /agent is used by the libvirt endpoint only/);
  throwsQmpx(() => configFromJson({ monitors: [{ upstream: '/x', libvirt: '/y', agent: '/x' }] }, 'a.json'), /agent path \/x is also/);
  const readOnlyOnly = configFromJson({ monitors: [{ upstream: '/x', libvirtReadOnly: '/r', agent: '/g' }] }, 'a.json');
  assert.equal([readOnlyOnly.monitors[0]!.libvirtReadOnly, readOnlyOnly.monitors[0]!.agent], ['/r', '/g']);
});

test('socket modes: octal text; a JSON number is refused, since it could only be read as decimal', () => {
  assert.is(parseSocketMode('0600'), 0o600);
  assert.is(parseSocketMode('660'), 0o660);
  throwsQmpx(() => parseSocketMode('0800'), /invalid socket mode/);
  throwsQmpx(
    () => configFromJson({ socketMode: 440, monitors: [{ upstream: '/x', qmp: '/y' }] }, 'a.json'),
    /^a\.json: socketMode 440 is a JSON number, which would be read as decimal; write the mode as a string of octal digits, e\.g\. "0440"$/,
  );
  throwsQmpx(
    () => configFromJson({ monitors: [{ name: 'vm1', upstream: '/x', qmp: '/y', socketMode: 288 }] }, 'a.json'),
    /^a\.json: vm1: socketMode 288 is a JSON number.*e\.g\. "0640"$/,
  );
  throwsQmpx(() => configFromJson({ socketMode: '440', monitors: [{ upstream: '/x', qmp: '/y', socketMode: 1.5 }] }, 'a.json'), /monitor 1: socketMode 1\.5 is a JSON number/);
  assert.is(configFromJson({ socketMode: '440', monitors: [{ upstream: '/x', qmp: '/y' }] }, 'a.json').monitors[0]!.socketMode, 0o440);
});

test('a socket path longer than a UNIX socket address holds is refused before anything is created', async () => {
  const long = `/tmp/${'d'.repeat(90)}/${'s'.repeat(20)}.sock`; // 121 bytes
  throwsQmpx(
    () => configFromJson({ monitors: [{ name: 'vm1', upstream: '/x', readOnly: long }] }, 'a.json'),
    /^a\.json: vm1: readOnly socket path \/tmp\/d+\/s+\.sock is 121 bytes, longer than the 107 a UNIX socket address holds: no client could connect; use a shorter path$/,
  );
  const shortNameDeepDir = `/tmp/${'d'.repeat(90)}/q.sock`; // 102 bytes, bound first at 109
  throwsQmpx(
    () => configFromJson({ monitors: [{ upstream: '/x', qmp: shortNameDeepDir }] }, 'a.json'),
    /monitor 1: qmp socket path .* is bound first as \/tmp\/d+\/\.qmpxXXXXXX\/s \(109 bytes\).*use a shorter directory$/,
  );
  const bindFits = `/tmp/${'d'.repeat(85)}/${'s'.repeat(16)}`;
  assert.is(Buffer.byteLength(bindFits), 107);
  assert.is(configFromJson({ monitors: [{ upstream: '/x', libvirt: bindFits }] }, 'a.json').monitors[0]!.libvirt, bindFits);
  await buildServeConfig({ upstream: '/x', hmp: long }, []).then(
    () => assert.unreachable('accepted a long --hmp path'),
    (error: Error) => assert.match(error.message, /^the command line: monitor 1: hmp socket path .* is 121 bytes/),
  );
});

test('config-file top-level socketMode and maxClientBufferBytes are not hidden by the command-line defaults', async () => {
  const dir = createTempDir('config');
  const path = join(dir, 'top.json');
  await writeFile(
    path,
    JSON.stringify({
      socketMode: '0640',
      maxClientBufferBytes: 10_000,
      monitors: [
        { upstream: '/a', qmp: '/b' },
        { upstream: '/c', qmp: '/d', socketMode: '0600', maxClientBufferBytes: 20_000 },
      ],
    }),
  );
  const parsed = async (args: string[]): Promise<Array<[number, number]>> => {
    const command = serveCommand();
    let seen: Awaited<ReturnType<typeof buildServeConfig>> | undefined;
    command.action(async (qemuArgs: string[], options: Record<string, unknown>, self) => {
      seen = await buildServeConfig(options, qemuArgs, self);
    });
    await command.parseAsync(args, { from: 'user' });
    return seen!.monitors.map((monitor) => [monitor.socketMode, monitor.maxClientBufferBytes]);
  };
  assert.equal(await parsed(['--config', path]), [[0o640, 10_000], [0o600, 20_000]], 'top-level keys over the built-in defaults');
  assert.equal(
    await parsed(['--config', path, '--socket-mode', '0660']),
    [[0o660, 10_000], [0o600, 20_000]],
    'an option the user gave wins over the top level, not over a monitor’s own key',
  );
  assert.equal(
    await parsed(['--config', path, '--max-client-buffer', '30000', '--upstream', '/e', '--qmp', '/f']),
    [[0o640, 30_000], [0o600, 20_000], [0o640, 30_000]],
    'the command line’s own monitor: given options, else the file’s top level',
  );
  await removeTempDir(dir);
});

test('loading a file: JSON errors and missing files are reported', async () => {
  const dir = createTempDir('config');
  const bad = join(dir, 'bad.json');
  await writeFile(bad, '{"monitors": [');
  await loadConfigFile(bad).then(
    () => assert.unreachable('accepted'),
    (error: Error) => assert.match(error.message, /bad\.json: not valid JSON/),
  );
  await loadConfigFile(join(dir, 'missing.json')).then(
    () => assert.unreachable('accepted'),
    (error: Error) => assert.match(error.message, /cannot read config/),
  );
  const good = join(dir, 'good.json');
  await writeFile(good, JSON.stringify({ logLevel: 'warn', monitors: [{ upstream: '/a', qmp: '/b' }] }));
  const config = await buildServeConfig({ config: good, upstream: '/c', qmp: '/d', name: 'extra' }, []);
  assert.equal(config.monitors.map((monitor) => monitor.upstream), ['/a', '/c']);
  assert.is(config.logLevel, 'info', 'the command line default applies when no command object says otherwise');
  const layered = join(dir, 'layered.json');
  await writeFile(
    layered,
    JSON.stringify({
      socketMode: '0640',
      maxClientBufferBytes: 10_000,
      monitors: [
        { upstream: '/a', qmp: '/b' },
        { upstream: '/c', qmp: '/d', socketMode: '0600', maxClientBufferBytes: 20_000 },
      ],
    }),
  );
  const fileOnly = await buildServeConfig({ config: layered }, []);
  assert.equal(fileOnly.monitors.map((monitor) => [monitor.socketMode, monitor.maxClientBufferBytes]), [[0o640, 10_000], [0o600, 20_000]]);
  const flagged = await buildServeConfig({ config: layered, socketMode: 0o660, maxClientBuffer: 30_000 }, []);
  assert.equal(
    flagged.monitors.map((monitor) => [monitor.socketMode, monitor.maxClientBufferBytes]),
    [[0o660, 30_000], [0o600, 20_000]],
    '--socket-mode and --max-client-buffer win over the top level, not over a monitor’s own',
  );
  await removeTempDir(dir);
});

test('command-line options: one monitor, --launch takes the QEMU arguments after --', async () => {
  const command = serveCommand();
  let seen: unknown;
  command.action(async (qemuArgs: string[], options: Record<string, unknown>, self) => {
    seen = await buildServeConfig(options, qemuArgs, self);
  });
  await command.parseAsync(
    ['--launch', '--qmp', '/tmp/q.sock', '--socket-mode', '0640', '--max-client-buffer', '2MiB', '--env', 'TMPDIR=/var/tmp', '--env', 'A=b=c', '--', '-m', '64', '-name', 'x'],
    { from: 'user' },
  );
  const config = seen as Awaited<ReturnType<typeof buildServeConfig>>;
  assert.equal(config.monitors[0]!.launch, { args: ['-m', '64', '-name', 'x'], binary: undefined, env: { TMPDIR: '/var/tmp', A: 'b=c' }, restart: false });
  assert.is(config.monitors[0]!.socketMode, 0o640);
  assert.is(config.monitors[0]!.maxClientBufferBytes, 2 * 1024 * 1024);
  await buildServeConfig({ upstream: '/a', launch: true, qmp: '/b' }, []).then(
    () => assert.unreachable('accepted both'),
    (error: Error) => assert.match(error.message, /either --upstream or --launch/),
  );
  await buildServeConfig({ upstream: '/a', qmp: '/b', env: { A: 'b' } }, []).then(
    () => assert.unreachable('accepted --env without --launch'),
    (error: Error) => assert.match(error.message, /--env go with --launch/),
  );
  await buildServeConfig({ upstream: '/a', qmp: '/b' }, ['-m', '64']).then(
    () => assert.unreachable('accepted QEMU arguments without --launch'),
    (error: Error) => assert.match(error.message, /only taken with --launch/),
  );
  await buildServeConfig({ qmp: '/b' }, []).then(
    () => assert.unreachable('accepted nothing to serve'),
    (error: Error) => assert.match(error.message, /nothing to serve/),
  );
  await buildServeConfig({ upstream: '/a' }, []).then(
    () => assert.unreachable('accepted a monitor without sockets'),
    (error: Error) => assert.match(error.message, /no downstream socket/),
  );
});

test.run();
